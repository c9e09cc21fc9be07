"""Explaining churn scores: exact SHAP contributions and the reason texts built from them.

:mod:`retain.explain.treeshap`
    The engine: :func:`shap_contributions` returns exactly what LightGBM's
    ``predict(X, pred_contrib=True)`` returns, from per-leaf tables compiled once per model
    (:func:`compile_tree_shap`, :class:`TreeShapTables`).
:mod:`retain.explain.reasons`
    The texts: :func:`reason_texts` turns each customer's top contributions into plain language
    with the feature catalogue (:data:`REASON_COLUMNS`, :func:`top_contributions`).
"""

from __future__ import annotations

from retain.explain.reasons import REASON_COLUMNS, reason_texts, top_contributions
from retain.explain.treeshap import (
    TreeShapTables,
    compile_tree_shap,
    shap_and_raw_scores,
    shap_contributions,
)

__all__ = [
    "REASON_COLUMNS",
    "TreeShapTables",
    "compile_tree_shap",
    "shap_and_raw_scores",
    "reason_texts",
    "shap_contributions",
    "top_contributions",
]
