"""Reproduce the paper's experiments: train a chosen set of configs over several seeds, tabulate the results.

    python benchmarks/paper/run.py --set reduced                       # every reduced config, seed 42
    python benchmarks/paper/run.py --set reduced --only iso_slstm_recipe --seeds 1 2 3 --jobs 2
    python benchmarks/paper/run.py --set reduced --only iso_slstm_skip_lastw02 iso_slstm_pair_rel --seeds 9 10 --jobs 2
    python benchmarks/paper/run.py --set full --device cuda            # the paper's sizes (GPU)

Each run trains ``<set>/<name>.toml`` with [training] seed replaced by the run's seed (the data seed,
hence the held-out test set, stays the config's) into ``<out>/<set>/<name>/seed<k>``. A config with
[warm_start] fine-tunes the model of another config: ``{out}`` and ``{seed}`` in its model path become the
set's results folder and the run's seed, such configs run after the others, and their training time includes
the warm-start model's. With ``{seeds}`` in that path, the config runs once, on the ensemble of that model over
all the sweep's seeds (output ``seed<a+b>``), after the rest; its training time adds the members' longest when
they trained side by side (``--jobs`` >= seeds), else their sum. Runs resume
from their checkpoints, so a killed sweep continues where it stopped. Writes ``results.json`` (every
run's test metrics and training time, merged with earlier sweeps) and ``results.md`` (mean and spread over seeds next to the
paper's numbers) into ``<out>/<set>``.

``--ensemble`` adds, for every spiking config trained with two or more seeds in the sweep, the ensemble of those seeds'
models (``femsnn ensemble``: the mean of their stress outputs) as the row ``<name>-ensemble``, scored on the same
test set. Its training time is the members' longest when they trained side by side (``--jobs`` >= seeds), else
their sum.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

_PAPER_SLSTM = "9.38e-2 / 4.05e-3 (best of grid: 5.24e-2 all, 2.87e-3 last)"
_PAPER_LSTM = "4.86e-2 / 4.76e-3"
_PAPER_RO = "8.79e-2 / 8.02e-2"
#: the paper's code-metric results (Henkes et al. 2022, sections II-IV) beside the configs that reproduce them
#: (full) or aim at them at a CPU size (reduced)
PAPER = {
    "iso_slstm_256_64": "9.38e-2 / 4.05e-3 (grid run: 5.24e-2 all)",
    "iso_slstm_256_32": "last step 2.87e-3 (best of grid)",
    "iso_lstm_256_64": _PAPER_LSTM,
    "ro_rlif_512": _PAPER_RO,
    "iso_slstm_recipe": _PAPER_SLSTM,
    "iso_slstm_skip": _PAPER_SLSTM,
    "iso_slstm_skip_lastw": _PAPER_SLSTM,
    "iso_slstm_skip_lastw02": _PAPER_SLSTM,
    "iso_slstm_skip_lastw02_rel": _PAPER_SLSTM,
    "iso_slstm_pair_rel": _PAPER_SLSTM,
    "iso_slstm_authors": _PAPER_SLSTM,
    "iso_lstm_recipe": _PAPER_LSTM,
    "ro_rlif": _PAPER_RO,
}
COLUMNS = [
    ("code_all", "code metric all"),
    ("code_last", "code metric last"),
    ("eq14_all", "eq. 14 all"),
    ("eq14_last", "eq. 14 last"),
    ("rmse_mpa_all", "RMSE MPa"),
    ("max_mpa_all", "max MPa"),
    ("median_mpa_all", "median MPa"),
    ("rmse_mpa_last", "RMSE last MPa"),
]


def run_one(config_path: Path, seeds: tuple[int, ...], out_dir: Path, device: str | None, threads: int, side_by_side: bool) -> dict:
    """Train one config with one seed, or an ensemble config (``{seeds}`` in its warm-start path) once for all the
    sweep's seeds, resuming if a checkpoint exists; return its result row."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    from femsnn.train.config import parse_train_config
    from femsnn.train.workflow import run_training

    text = config_path.read_text().replace("{seed}", str(seeds[0])).replace("{out}", out_dir.parents[1].as_posix())
    raw = tomllib.loads(text)
    if _stage(config_path) == 2:
        raw["warm_start"]["model"] = [raw["warm_start"]["model"].replace("{seeds}", str(s)) for s in seeds]
    config = parse_train_config(raw, base_dir=config_path.parent)
    training = {"seed": seeds[0], "threads": threads, "progress": False} | ({"device": device} if device else {})
    config = config.model_copy(
        update={
            "training": config.training.model_copy(update=training),
            "output": config.output.model_copy(update={"dir": out_dir}),
        }
    )
    run = run_training(config)
    return {
        "config": config_path.stem,
        "seed": seeds[0] if len(seeds) == 1 else "+".join(map(str, seeds)),
        "test": run.metrics["test"],
        "train_time_s": _start_time(config.warm_start, side_by_side) + run.metrics["train_time_s"],
        "epochs_run": run.metrics["epochs_run"],
        "best_epoch": run.metrics["best_epoch"],
        "parameters": run.metrics["parameters"],
        "output": str(run.output_dir),
    }


def _stage(config_path: Path) -> int:
    """0: trains from scratch; 1: fine-tunes the same seed's model; 2: fine-tunes the ensemble of the sweep's seeds."""
    warm_start = tomllib.loads(config_path.read_text()).get("warm_start")
    if warm_start is None:
        return 0
    return 2 if "{seeds}" in warm_start["model"] else 1


def _start_time(warm_start, side_by_side: bool) -> float:
    """Training time of the warm-start model(s) with their own starts; an ensemble's members count once each, or
    as their longest when they trained side by side."""
    from femsnn.train.artifact import load_model, total_train_time

    if warm_start is None:
        return 0.0
    paths = warm_start.model if isinstance(warm_start.model, list) else [warm_start.model]
    return _members_time([total_train_time(load_model(path)[1]) for path in paths], side_by_side)


def _members_time(times: list[float], side_by_side: bool) -> float:
    """Training time of several models: the longest when they trained side by side, else the sum."""
    return max(times) if side_by_side else sum(times)


def ensemble_row(rows: list[dict], side_by_side: bool) -> dict:
    """The ensemble of the models of rows (one config, several seeds), evaluated on their test split."""
    from femsnn.train.artifact import combine_models, save_model
    from femsnn.train.workflow import evaluate_model

    outputs = [Path(r["output"]) for r in rows]
    seeds = "+".join(str(r["seed"]) for r in rows)
    folder = outputs[0].parent / f"ensemble{seeds}"
    model = save_model(folder / "model.pt", *combine_models([o / "model.pt" for o in outputs]))
    metrics = evaluate_model(model, outputs[0] / "dataset.npz", folder)
    return {
        "config": f"{rows[0]['config']}-ensemble",
        "seed": seeds,
        "test": metrics,
        "train_time_s": _members_time([r["train_time_s"] for r in rows], side_by_side),
        "parameters": sum(r["parameters"] for r in rows),
        "output": str(folder),
    }


def merge(path: Path, rows: list[dict]) -> list[dict]:
    """Earlier results in path (other configs or seeds) plus rows, rows replacing runs they repeat."""
    new = {(r["config"], r["seed"]) for r in rows}
    old = json.loads(path.read_text()) if path.is_file() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    return sorted([r for r in old if (r["config"], r["seed"]) not in new] + rows, key=lambda r: (r["config"], isinstance(r["seed"], str), str(r["seed"]).zfill(12)))


def summarise(rows: list[dict]) -> str:
    """Markdown table: per config, mean (min-max) over seeds of each metric, training time, paper numbers."""
    lines = [
        "| config | seeds | " + " | ".join(label for _, label in COLUMNS) + " | train time min | paper (code metric all / last) |",
        "|" + " --- |" * (len(COLUMNS) + 4),
    ]
    for name in dict.fromkeys(r["config"] for r in rows):
        runs = [r for r in rows if r["config"] == name]
        cells = [_spread([r["test"][key] for r in runs]) for key, _ in COLUMNS]
        minutes = _spread([r["train_time_s"] / 60 for r in runs], "{:.1f}")
        paper = PAPER.get(name.removesuffix("-ensemble"), "")
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {minutes} | {paper} |")
    return "\n".join(lines) + "\n"


def _spread(values: list[float], fmt: str = "{:.3g}") -> str:
    """'mean (min-max)' or the single value."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.fmean(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=["reduced", "full"], default="reduced", help="config folder next to this script")
    parser.add_argument("--only", nargs="*", help="config names (file stems) to run; default: all in the set")
    parser.add_argument("--seeds", nargs="*", type=int, default=[42], help="training seeds")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "paper", help="results folder")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="override the configs' device")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--ensemble", action="store_true", help="add each config's ensemble of the sweep's seeds")
    args = parser.parse_args(argv)

    configs = sorted((HERE / args.set).glob("*.toml"))
    if args.only:
        unknown = set(args.only) - {c.stem for c in configs}
        if unknown:
            parser.error(f"unknown configs {sorted(unknown)}; {args.set} has {[c.stem for c in configs]}")
        configs = [c for c in configs if c.stem in args.only]
    out = (args.out / args.set).resolve()
    side_by_side = args.jobs >= len(args.seeds)
    tasks = []
    for c in configs:
        runs = [tuple(args.seeds)] if _stage(c) == 2 else [(seed,) for seed in args.seeds]
        tasks += [(c, seeds, out / c.stem / f"seed{'+'.join(map(str, seeds))}", args.device, args.threads, side_by_side) for seeds in runs]
    rows = []
    for stage in (0, 1, 2):  # warm-start configs after the runs they start from
        batch = [t for t in tasks if _stage(t[0]) == stage]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            rows += list(pool.map(run_one, *zip(*batch))) if batch else []
    if args.ensemble and len(args.seeds) > 1:
        spiking = [c for c in configs if tomllib.loads(c.read_text())["model"]["kind"] == "spiking" and _stage(c) < 2]
        rows += [ensemble_row([r for r in rows if r["config"] == c.stem], side_by_side) for c in spiking]
    rows = merge(out / "results.json", rows)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    table = summarise(rows)
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
