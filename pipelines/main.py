"""The main job: train -> promote -> score -> report, each step its own MLflow run.

Usage: ``python pipelines/main.py --config configs/cdnow.yaml`` (what ``make demo`` runs), or
``mlflow run . -e main --env-manager local -P config=configs/cdnow.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from score import score
from train import train

from retain.config import load_config
from retain.tracking import configure, start_run


@contextmanager
def parent_run(config: str, name: str) -> Iterator[str]:
    """Open the parent MLflow run of a pipeline and yield its experiment id."""
    cfg = load_config(config)
    settings = configure(cfg.tracking)
    with start_run(settings, f"{name}-{cfg.name}", {"step": name}) as run:
        # the steps go where the parent is (`mlflow run` may have chosen the experiment)
        yield run.info.experiment_id


def run_alone(pipeline: Callable[[str, str], dict[str, str]], name: str, doc: str | None) -> None:
    """Run one pipeline (train or score) on its own, under a parent run, and print its runs."""
    parser = argparse.ArgumentParser(description=(doc or name).splitlines()[0])
    parser.add_argument("--config", required=True, help="run config, e.g. configs/cdnow.yaml")
    args = parser.parse_args()
    with parent_run(args.config, name) as experiment_id:
        print(pipeline(args.config, experiment_id))


def main(argv: list[str] | None = None) -> int:
    """Run the whole path and print where its results are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="run config, e.g. configs/cdnow.yaml")
    args = parser.parse_args(argv)
    with parent_run(args.config, "main") as experiment_id:
        trained = train(args.config, experiment_id)
        scored = score(args.config, experiment_id)
    settings = configure(load_config(args.config).tracking)
    print("\nretain: done.")
    print(
        f"  promotion      clv: {trained['promote_clv_accepted']}, "
        f"churn: {trained['promote_churn_accepted']}"
    )
    print(f"  scores         {scored['output_dir']}")
    print(f"  report         {scored['report_path']}")
    print(f"  MLflow store   {settings.tracking_uri}")
    print(f"  MLflow UI      .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
