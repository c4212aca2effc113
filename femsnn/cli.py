"""The femsnn command line: thin wrappers; every command's work lives in its own package home."""

from __future__ import annotations

from pathlib import Path

import typer

from femsnn.config import ConfigError

app = typer.Typer(help="femsnn: reference and spiking materials for dolfinx.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    """Print a user-facing error and exit non-zero (no traceback for expected errors)."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def simulate(config: Path = typer.Argument(..., help="simulation TOML (problem, mesh, material, loading, output)")) -> None:
    """Run a quasi-static FE simulation and write the CSV table, JSON report, ParaView fields and plot."""
    from femsnn.fem.simulate import run_simulation_from_file

    try:
        run_simulation_from_file(config)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
