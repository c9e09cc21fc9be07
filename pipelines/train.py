"""Training pipeline: train the CLV and churn models, then try to promote each.

Usage: ``python pipelines/train.py --config configs/cdnow.yaml [--verbose]``
"""

from __future__ import annotations

from steps import run_step


def train(config: str, experiment_id: str) -> dict[str, str]:
    """Run train_clv, train_churn and the two promotions; return their run ids.

    Parameters
    ----------
    config : str
        Path of the run config.
    experiment_id : str
        The experiment of the parent run.

    Returns
    -------
    dict
        Step name to run id, plus ``promote_<model>_accepted`` flags.
    """
    runs: dict[str, str] = {}
    runs["train_clv"] = run_step("train_clv", {"config": config}, experiment_id).info.run_id
    runs["train_churn"] = run_step("train_churn", {"config": config}, experiment_id).info.run_id
    for model in ("clv", "churn"):
        run = run_step(
            "promote", {"config": config, "model": model}, experiment_id, allowed_exit=True
        )
        runs[f"promote_{model}"] = run.info.run_id
        runs[f"promote_{model}_accepted"] = run.data.tags.get("promotion.accepted", "false")
    return runs


if __name__ == "__main__":
    from main import run_alone

    raise SystemExit(run_alone(train, "train-pipeline", __doc__))
