"""The value model as MLflow's ``python_function``, loaded by this module (no pickle, no code).

As :mod:`retain.tracking.pyfunc` for the churn model: a registered value version's ``MLmodel``
names this module as its ``loader_module`` and its saved form, ``data/value_model.json``
(:meth:`retain.clv.ml.ValueModel.to_dict`), as its ``data``. ``pyfunc.load_model(uri)
.predict(features)`` returns each row's expected discounted spend over the CLV horizon, as
scoring computes it (``clv_ml``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # lightgbm only when a model is loaded
    from retain.clv.ml import ValueModel

LOADER_MODULE = "retain.tracking.value_pyfunc"
"""The ``loader_module`` a registered value model's ``python_function`` flavour names."""


class ValuePyfunc:
    """Predicted value of a :class:`retain.clv.ml.ValueModel`, MLflow's way.

    Parameters
    ----------
    model : retain.clv.ml.ValueModel
        The trained model.
    """

    def __init__(self, model: ValueModel) -> None:
        self.model = model

    def predict(
        self, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Expected discounted spend over the horizon of every input row, in input order.

        Raises
        ------
        ValueError
            When a feature column is missing or a parameter is given.
        """
        if params:
            raise ValueError(f"the value model takes no parameters, got {sorted(params)}")
        frame = pd.DataFrame(model_input)
        missing = [c for c in self.model.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(f"the value model input lacks the feature column(s) {missing}")
        return np.asarray(self.model.predict(frame), dtype=np.float64)


def load_value_json(path: str | Path) -> ValueModel:
    """Read a value model's saved form (``value_model.json``) with :mod:`json` only."""
    from retain.clv.ml import ValueModel  # (b) lightgbm only when loading one

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return ValueModel.from_dict(data)


def _load_pyfunc(data_path: str) -> ValuePyfunc:
    """MLflow's entry point: the model of a ``python_function`` flavour naming this module."""
    return ValuePyfunc(load_value_json(data_path))
