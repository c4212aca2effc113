"""Score the random-walk J2 model of train.toml on walks of step counts it was not trained on (20 and 80).

The test walks use the training generator's settings with another step count and seed; prints eq. 14 and
RMSE per step count and writes each evaluation (metrics.json and plots) under runs/j2_walks/.
Run: python examples/j2_walks/unseen_steps.py [--steps 20 80]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from femsnn.train.config import load_train_config
from femsnn.train.data import generate
from femsnn.train.workflow import evaluate_model

HERE = Path(__file__).resolve().parent
RUNS = HERE.parents[1] / "runs" / "j2_walks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 80], help="step counts of the test walks")
    args = parser.parse_args()
    settings = load_train_config(HERE / "train.toml").data
    model = RUNS / "model.pt"
    if not model.is_file():
        parser.error(f"{model} not found: run `femsnn train examples/j2_walks/train.toml` first")
    print(f"model trained on {settings.steps}-step walks")
    for steps in args.steps:
        unseen = settings.model_copy(update={"steps": steps, "seed": settings.seed + steps, "n_train": 1, "n_val": 1, "n_test": 128})
        data = generate(unseen).save(RUNS / f"test_{steps}_steps.npz")
        metrics = evaluate_model(model, data, RUNS / f"evaluate_{steps}_steps")
        print(f"{steps:4d} steps: eq. 14 {metrics['eq14_all']:.2%} all / {metrics['eq14_last']:.2%} last, "
              f"RMSE {metrics['rmse_mpa_all']:.3g} MPa")


if __name__ == "__main__":
    main()
