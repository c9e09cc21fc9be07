"""The main job: train -> promote -> score -> report, each step its own MLflow run.

Usage: ``python pipelines/main.py --config configs/cdnow.yaml`` (what ``make demo`` runs), or
``mlflow run . -e main --env-manager local -P config=configs/cdnow.yaml``.

Each step prints its one summary line (``retain <command>`` does), the pipeline its final
summary, and nothing else: MLflow's INFO logging (``=== Running command ... ===``) and artifact
progress bars are held back unless ``--verbose`` (or ``RETAIN_VERBOSE=1``), which the steps
inherit.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from score import score
from steps import StepFailed
from train import train

from retain.config import load_config
from retain.tracking import configure, start_run

_TRUE = {"1", "true", "yes"}


def quiet_unless_verbose(verbose: bool) -> None:
    """Hold back MLflow's INFO logging and progress bars in this process, unless verbose.

    Verbose is passed on to the steps (each a ``retain`` command in its own process) through
    ``RETAIN_VERBOSE``; quiet steps quieten themselves.
    """
    if verbose or os.environ.get("RETAIN_VERBOSE", "").strip().lower() in _TRUE:
        os.environ["RETAIN_VERBOSE"] = "1"
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # each step runs under an `mlflow run` process of its own ("=== Running command ...",
    # "=== Run (ID ...) succeeded ==="), which reads this when it imports mlflow
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # this process imported mlflow already ("Creating initial MLflow database tables...",
    # "=== Asynchronously launching MLflow run ...")
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="run config, e.g. configs/cdnow.yaml")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let MLflow's INFO logs, progress bars and warnings through (also RETAIN_VERBOSE=1)",
    )
    args = parser.parse_args(argv)
    quiet_unless_verbose(args.verbose)
    return args


@contextmanager
def parent_run(config: str, name: str) -> Iterator[str]:
    """Open the parent MLflow run of a pipeline and yield its experiment id."""
    cfg = load_config(config)
    settings = configure(cfg.tracking)
    with start_run(settings, f"{name}-{cfg.name}", {"step": name}) as run:
        # the steps go where the parent is (`mlflow run` may have chosen the experiment)
        yield run.info.experiment_id


def run_alone(pipeline: Callable[[str, str], dict[str, str]], name: str, doc: str | None) -> int:
    """Run one pipeline (train or score) on its own, under a parent run, and print its runs."""
    args = _arguments((doc or name).splitlines()[0], None)
    try:
        with parent_run(args.config, name) as experiment_id:
            runs = pipeline(args.config, experiment_id)
    except StepFailed as exc:
        print(f"retain: {exc}", file=sys.stderr)
        return 1
    print(f"retain: {name} done. " + ", ".join(f"{k} {v}" for k, v in runs.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the whole path and print where its results are."""
    args = _arguments(__doc__.splitlines()[0], argv)
    try:
        with parent_run(args.config, "main") as experiment_id:
            trained = train(args.config, experiment_id)
            scored = score(args.config, experiment_id)
    except StepFailed as exc:  # the step printed its own error line just above
        print(f"retain: {exc}", file=sys.stderr)
        return 1
    settings = configure(load_config(args.config).tracking)
    print("retain: done.")
    promoted = ", ".join(
        f"{model}: {trained[f'promote_{model}_accepted']}"
        for model in ("clv", "churn", "value")
        if f"promote_{model}_accepted" in trained
    )
    print(f"  promotion      {promoted}")
    print(f"  scores         {scored['output_dir']}")
    print(f"  report         {scored['report_path']}")
    print(f"  MLflow store   {settings.tracking_uri}")
    mlflow_cli = Path(sys.executable).parent / "mlflow"  # this environment's, from any folder
    print(f"  MLflow UI      {mlflow_cli} ui --backend-store-uri {settings.tracking_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
