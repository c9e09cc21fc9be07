"""The churn model as MLflow's ``python_function``, loaded by this module (no pickle, no code).

A registered churn version's ``MLmodel`` names this module as its ``loader_module`` and its
saved form, ``data/churn_model.json`` (:meth:`retain.churn.ChurnModel.to_dict`), as its
``data``. MLflow's generic loaders then call :func:`_load_pyfunc`, which reads the JSON with
:mod:`json` and rebuilds the model with :meth:`retain.churn.ChurnModel.from_dict`; nothing is
unpickled and no code is taken from the artifact store. So both of these work on a registered
version (``from mlflow import pyfunc``)::

    model = pyfunc.load_model(uri)  # uri = "models:/cdnow-churn@champion"
    model.predict(features)
    pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")

and return the **calibrated churn probability** of each input row, computed exactly as scoring
does (``booster.predict(X, raw_score=True)``, then
:func:`retain.churn.calibration.apply_calibration`).

MLflow's loaders do not check the ``retain.sha256`` digests of a version; retain's own loader
(:func:`retain.tracking.load_churn_model`) does, and accepts this module as the only loader of a
churn version besides the "model from code" script of versions logged before it existed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # lightgbm and sklearn only when a model is loaded
    from retain.churn import ChurnModel

LOADER_MODULE = "retain.tracking.pyfunc"
"""The ``loader_module`` a registered churn model's ``python_function`` flavour names."""


class ChurnProbabilityPyfunc:
    """Calibrated churn probabilities of a :class:`retain.churn.ChurnModel`, MLflow's way.

    The object :func:`_load_pyfunc` returns; MLflow wraps it in a ``PyFuncModel``.

    Parameters
    ----------
    model : retain.churn.ChurnModel
        The trained, calibrated model.
    """

    def __init__(self, model: ChurnModel) -> None:
        self.model = model

    @property
    def feature_names(self) -> list[str]:
        """The input columns the model needs (any order, other columns are ignored)."""
        return list(self.model.feature_names)

    def predict(
        self, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Calibrated churn probability of every input row, in input order.

        Parameters
        ----------
        model_input : DataFrame
            One row per customer with (at least) the columns :attr:`feature_names`, in any
            order; missing values are NaN, as in scoring.
        params : mapping, optional
            Accepted for MLflow's interface; the model takes no parameters.

        Returns
        -------
        ndarray of float64
            One probability in [0, 1] per row.

        Raises
        ------
        ValueError
            When a feature column is missing (naming them) or a parameter is given.
        """
        if params:
            raise ValueError(f"the churn model takes no parameters, got {sorted(params)}")
        frame = pd.DataFrame(model_input)
        missing = [c for c in self.model.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(
                f"the churn model input lacks the feature column(s) {missing}; it needs "
                f"{self.feature_names} (the columns `retain features` writes)"
            )
        # ChurnModel.predict_proba is the scoring path: feature_matrix, the booster's raw
        # score, apply_calibration
        return np.asarray(self.model.predict_proba(frame), dtype=np.float64)


def load_churn_json(path: str | Path) -> ChurnModel:
    """Read a churn model's saved form (``churn_model.json``) with :mod:`json` only.

    Parameters
    ----------
    path : str or Path
        The JSON file written from :meth:`retain.churn.ChurnModel.to_dict`.

    Returns
    -------
    retain.churn.ChurnModel

    Raises
    ------
    ValueError
        When the file is not a churn model this version of retain reads.
    """
    from retain.churn import ChurnModel  # (b) lightgbm and sklearn only when loading one

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a churn model (a JSON object)")
    return ChurnModel.from_dict(data)


def _load_pyfunc(data_path: str) -> ChurnProbabilityPyfunc:
    """MLflow's entry point: the model of a ``python_function`` flavour naming this module.

    Parameters
    ----------
    data_path : str
        The flavour's ``data`` inside the downloaded model directory (the churn model's JSON).

    Returns
    -------
    ChurnProbabilityPyfunc
    """
    return ChurnProbabilityPyfunc(load_churn_json(data_path))
