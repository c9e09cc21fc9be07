"""Run one MLproject entry point as its own MLflow run and hand back that run.

The pattern of MLflow's multistep workflow example: the pipeline is a parent run, each step a
child run launched in the current environment (:func:`retain.tracking.run_entry_point`), and
steps pass run ids and artifact URIs to each other. Nothing is computed here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from retain.tracking import run_entry_point

PROJECT_DIR = Path(__file__).resolve().parent.parent


class StepFailed(RuntimeError):
    """A pipeline step exited with an error."""


def run_step(
    entry_point: str,
    parameters: dict[str, str],
    experiment_id: str,
    allowed_exit: bool = False,
) -> Any:
    """Run an entry point of the MLproject and return its finished MLflow run.

    Parameters
    ----------
    entry_point : str
        Name of the entry point in ``MLproject``.
    parameters : dict
        Its parameters.
    experiment_id : str
        The experiment the parent run lives in.
    allowed_exit : bool
        When true a failed exit is returned (the caller reads the run's tags, e.g. a refused
        promotion) instead of raising.

    Returns
    -------
    mlflow.entities.Run
        The step's run.
    """
    # The step commands call `python`: make it this interpreter (the project's venv).
    bin_dir = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    ok, run = run_entry_point(PROJECT_DIR, entry_point, parameters, experiment_id)
    if not ok and not allowed_exit:
        raise StepFailed(f"step {entry_point!r} failed (run {run.info.run_id}); see its output")
    return run
