"""The command-line interface's help pages."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from femsnn.cli import app

COMMANDS = sorted(get_command(app).commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_keeps_toml_section_names(command: str) -> None:
    """Rich markup must not eat bracketed TOML section names ([warm_start], [[family]]) from a help page."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[]" not in result.output
    assert "(, " not in result.output and ", )" not in result.output


def test_help_names_sections() -> None:
    """The two help pages that name TOML sections show them."""
    runner = CliRunner()
    assert "[[family]]" in runner.invoke(app, ["harvest", "--help"], env={"COLUMNS": "200"}).output
    assert "[warm_start]" in runner.invoke(app, ["ensemble", "--help"], env={"COLUMNS": "200"}).output
