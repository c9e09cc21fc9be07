"""Optional hyperparameter search with optuna, scored on the validation cutoff only.

Each trial trains the booster on the training cutoffs with early stopping on the validation
cutoff and is scored by the validation ROC AUC; the test cutoff is never looked at. The TPE
sampler is seeded, so the same data, config and trial budget give the same trials (a
``timeout`` can cut the number of trials, which then depends on the machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from retain.churn.dataset import ChurnDataset
from retain.churn.train import train_churn_model

SEARCH_SPACE = {
    "learning_rate": (0.01, 0.2),
    "num_leaves": (7, 127),
    "min_data_in_leaf": (20, 1000),
    "feature_fraction": (0.5, 1.0),
    "bagging_fraction": (0.5, 1.0),
    "lambda_l2": (1e-3, 100.0),
}
"""Ranges searched (log scale for all but the two fractions)."""


@dataclass
class SearchResult:
    """Outcome of :func:`search_params`.

    Attributes
    ----------
    best_params : dict
        LightGBM parameters of the best trial (merge them over the config's ``lightgbm``).
    best_value : float
        Its validation ROC AUC.
    trials : DataFrame
        One row per trial: number, value, state and the parameters.
    """

    best_params: dict[str, Any]
    best_value: float
    trials: pd.DataFrame


def search_params(
    dataset: ChurnDataset,
    churn: Any,
    base_params: dict[str, Any] | None = None,
    seed: int = 0,
) -> SearchResult:
    """Search LightGBM parameters by validation AUC under the config's trial/time budget.

    Parameters
    ----------
    dataset : ChurnDataset
        Snapshots of a checked time split.
    churn : ChurnConfig
        ``optuna.n_trials``, ``optuna.timeout_seconds``, ``num_boost_round``,
        ``early_stopping_rounds``, ``imbalance``, ``calibration``.
    base_params : dict, optional
        Fixed LightGBM parameters (e.g. ``num_threads``) the trial values are merged over.
    seed : int
        Seed of the TPE sampler and of LightGBM.

    Returns
    -------
    SearchResult
        The best parameters, their validation AUC and the trial table.
    """
    import optuna  # (b) optional: only when churn.optuna.n_trials > 0

    base = dict(base_params or {})

    def objective(trial: optuna.Trial) -> float:
        lo, hi = SEARCH_SPACE["learning_rate"]
        params = {
            "learning_rate": trial.suggest_float("learning_rate", lo, hi, log=True),
            "num_leaves": trial.suggest_int("num_leaves", *SEARCH_SPACE["num_leaves"], log=True),
            "min_data_in_leaf": trial.suggest_int(
                "min_data_in_leaf", *SEARCH_SPACE["min_data_in_leaf"], log=True
            ),
            "feature_fraction": trial.suggest_float(
                "feature_fraction", *SEARCH_SPACE["feature_fraction"]
            ),
            "bagging_fraction": trial.suggest_float(
                "bagging_fraction", *SEARCH_SPACE["bagging_fraction"]
            ),
            "lambda_l2": trial.suggest_float("lambda_l2", *SEARCH_SPACE["lambda_l2"], log=True),
        }
        result = train_churn_model(
            dataset,
            params={**base, **params},
            num_boost_round=churn.num_boost_round,
            early_stopping_rounds=churn.early_stopping_rounds,
            calibration=churn.calibration,
            imbalance=churn.imbalance,
            seed=seed,
        )
        trial.set_user_attr("best_iteration", result.metrics["best_iteration"])
        return result.metrics["validation_roc_auc"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=churn.optuna.n_trials, timeout=churn.optuna.timeout_seconds)
    trials = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs"))
    trials["state"] = trials["state"].astype(str)
    return SearchResult(dict(study.best_params), float(study.best_value), trials)
