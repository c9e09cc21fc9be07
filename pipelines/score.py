"""Scoring pipeline: score every customer with the champion models, then write the report.

Usage: ``python pipelines/score.py --config configs/cdnow.yaml [--verbose]``
"""

from __future__ import annotations

from pathlib import Path

from steps import run_step

from retain.config import load_config


def score(config: str, experiment_id: str) -> dict[str, str]:
    """Run the score and report steps; return their run ids and output locations.

    Parameters
    ----------
    config : str
        Path of the run config.
    experiment_id : str
        The experiment of the parent run.

    Returns
    -------
    dict
        Step name to run id, and the ``output_dir`` and ``report`` paths the steps logged.
    """
    # the steps run in the project folder: give them the output root as the caller means it
    cfg = load_config(config)
    root = cfg.scoring.output_dir if cfg.scoring else Path("outputs")
    scored = run_step("score", {"config": config, "output": str(root.resolve())}, experiment_id)
    params = scored.data.params
    out = {"score": scored.info.run_id, "output_dir": params["score.output_dir"]}
    where = {"as_of": params["score.as_of"], "output": params["score.output_root"]}
    reported = run_step("report", {"config": config, **where}, experiment_id)
    out["report"] = reported.info.run_id
    out["report_path"] = reported.data.params["report.path"]
    return out


if __name__ == "__main__":
    from main import run_alone

    raise SystemExit(run_alone(score, "score-pipeline", __doc__))
