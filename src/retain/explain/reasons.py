"""Reason texts: the top SHAP contributions of each customer in plain language.

:func:`reason_texts` turns the top contributions of each customer (from
:func:`retain.explain.treeshap.shap_contributions`) into plain language with the feature
catalogue (:mod:`retain.features.catalogue`), e.g. ``"no purchase for 143 days (usual gap 35
days): raises churn risk (+0.42)"``. The number is the feature's contribution in log-odds of the
uncalibrated booster.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
import pandas as pd

from retain.features.catalogue import FeatureInfo, feature_info

__all__ = ["REASON_COLUMNS", "reason_texts", "top_contributions"]

REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")


def top_contributions(contrib: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest absolute contributions per row.

    Parameters
    ----------
    contrib : ndarray, shape (n_rows, n_features + 1)
        Output of :func:`shap_contributions` (the expected-value column is ignored).
    k : int
        Number of contributions to keep.

    Returns
    -------
    index : ndarray of int, shape (n_rows, k)
        Feature positions, largest absolute contribution first; -1 where a row has fewer than
        ``k`` non-zero contributions.
    value : ndarray of float, shape (n_rows, k)
        The contributions (0 where ``index`` is -1).
    """
    phi = contrib[:, :-1]
    k_eff = min(k, phi.shape[1])
    absphi = np.abs(phi)
    if k_eff < phi.shape[1]:
        part = np.argpartition(-absphi, k_eff - 1, axis=1)[:, :k_eff]
    else:
        part = np.tile(np.arange(phi.shape[1]), (phi.shape[0], 1))
    order = np.argsort(-np.take_along_axis(absphi, part, axis=1), axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    value = np.take_along_axis(phi, index, axis=1)
    index = np.where(value != 0.0, index, -1)
    value = np.where(index >= 0, value, 0.0)
    if k_eff < k:
        pad = k - k_eff
        index = np.hstack([index, np.full((len(index), pad), -1)])
        value = np.hstack([value, np.zeros((len(value), pad))])
    return index, value


def _info(name: str) -> FeatureInfo:
    """Catalogue entry of a model feature, else a plain ``"<name> <value>"`` text."""
    try:
        return feature_info(name)
    except KeyError:
        return FeatureInfo(name.replace("_", " "), "", name.replace("_", " ") + " {value:.3g}")


def _positional(template: str, names: list[str]) -> str:
    """``template`` with its named fields replaced by positions in ``names`` (faster format)."""
    parts = []
    for literal, fname, spec, conv in string.Formatter().parse(template):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if fname is not None:
            conv_part = f"!{conv}" if conv else ""
            spec_part = f":{spec}" if spec else ""
            parts.append(f"{{{names.index(fname)}{conv_part}{spec_part}}}")
    return "".join(parts)


def _render_feature(name: str, rows: pd.DataFrame) -> np.ndarray:
    """Catalogue text of feature ``name`` for each row, as :meth:`FeatureInfo.render` gives it.

    The same rules, vectorised: the reason template when every value it names is present, else
    the fallback template when the feature's own value is present, else the entry's text for a
    missing value.
    """
    info = _info(name)
    others = [
        f for f in dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(info.reason) if f)
    ]
    others = [f for f in others if f != "value"]
    value = rows[name].to_numpy(dtype=object)
    value_ok = ~pd.isna(value)
    ok = value_ok.copy()
    cols: dict[str, np.ndarray] = {}
    for f in others:
        if f not in rows.columns:
            ok[:] = False
            break
        cols[f] = rows[f].to_numpy(dtype=object)
        ok &= ~pd.isna(cols[f])
    missing = info.missing or f"{info.meaning.rstrip('.')}: not available"
    out = np.full(len(rows), missing, dtype=object)
    idx = np.flatnonzero(ok)
    if len(idx):
        fmt = _positional(info.reason, ["value", *others]).format
        columns = [value[idx], *(cols[f][idx] for f in others)]
        out[idx] = [fmt(*args) for args in zip(*columns, strict=True)]
    if info.fallback is not None:
        fb = np.flatnonzero(~ok & value_ok)
        out[fb] = [info.fallback.format(value=v) for v in value[fb]]
    return out


def reason_texts(
    contrib: np.ndarray,
    features: pd.DataFrame,
    feature_names: Sequence[str],
    k: int = 3,
) -> pd.DataFrame:
    """Plain-language reasons from the top SHAP contributions of each customer.

    Parameters
    ----------
    contrib : ndarray, shape (n_rows, n_features + 1)
        Output of :func:`shap_contributions` for the rows of ``features``.
    features : DataFrame
        The customers' feature values (row order of ``contrib``), including the columns the
        catalogue templates reference (e.g. ``mean_gap_days``).
    feature_names : sequence of str
        The model's feature columns, in model order.
    k : int
        Number of reasons.

    Returns
    -------
    DataFrame
        Same index as ``features``; columns ``reason_1`` .. ``reason_k`` (string), each like
        ``"no purchase for 143 days (usual gap 35 days): raises churn risk (+0.42)"``: the
        catalogue text with the customer's values, the direction, and the contribution in
        log-odds of the uncalibrated model. Missing when the customer has fewer non-zero
        contributions.
    """
    if contrib.shape != (len(features), len(feature_names) + 1):
        raise ValueError("contrib must have one row per customer and one column per feature + 1")
    index, value = top_contributions(contrib, k)
    out = {}
    for r in range(k):
        body = np.full(len(features), None, dtype=object)
        idx_r = index[:, r]
        val_r = value[:, r]
        for f in np.unique(idx_r[idx_r >= 0]):
            rows = np.flatnonzero(idx_r == f)
            body[rows] = _render_feature(feature_names[f], features.iloc[rows])
        # vectorised: "<text>: raises churn risk (+0.42)"
        direction = np.where(val_r > 0, ": raises churn risk (", ": lowers churn risk (")
        cents = np.round(np.abs(val_r) * 100.0).astype(np.int64)
        whole = pd.Series(cents // 100).astype("string")
        frac = pd.Series(cents % 100).astype("string").str.zfill(2)
        sign = np.where(val_r < 0, "-", "+")
        text = pd.Series(body, dtype="string") + direction + sign + whole + "." + frac + ")"
        out[f"reason_{r + 1}"] = text.array
    return pd.DataFrame(out, index=features.index)
