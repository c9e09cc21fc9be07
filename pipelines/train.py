"""Training pipeline: train the CLV and churn models (and the value model when ``clv.method``
is ``ml`` or ``auto``), then try to promote each.

Usage: ``python pipelines/train.py --config configs/cdnow.yaml [--verbose]``
"""

from __future__ import annotations

from steps import run_step

from retain.config import load_config


def train(config: str, experiment_id: str) -> dict[str, str]:
    """Run train_clv, train_churn (and train_value) and the promotions; return their run ids.

    The value model (``retain train-value``) is trained and promoted only when the config's
    ``clv.method`` uses it (``ml`` or ``auto``); with ``btyd`` the scores do not need it.

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
    models = ["clv", "churn"]
    if load_config(config).clv.method != "btyd":
        run = run_step("train_value", {"config": config}, experiment_id)
        runs["train_value"] = run.info.run_id
        models.append("value")
    for model in models:
        run = run_step(
            "promote", {"config": config, "model": model}, experiment_id, allowed_exit=True
        )
        runs[f"promote_{model}"] = run.info.run_id
        runs[f"promote_{model}_accepted"] = run.data.tags.get("promotion.accepted", "false")
    return runs


if __name__ == "__main__":
    from main import run_alone

    raise SystemExit(run_alone(train, "train-pipeline", __doc__))
