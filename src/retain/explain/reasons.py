"""Reason texts: the top SHAP contributions of each customer in plain language.

:func:`reason_texts` turns the top contributions of each customer (from
:func:`retain.explain.treeshap.shap_contributions`) into plain language with the feature
catalogue (:mod:`retain.features.catalogue`), e.g. ``"no purchase for 143 days (usual gap 35
days): raises churn risk compared with a typical customer (+0.42)"``. The number is the
feature's contribution in log-odds of the uncalibrated booster.

What "a typical customer" means
    SHAP contributions add up from the model's expected value (the average raw score over its
    training rows) to the customer's own score. A positive contribution moves this customer's
    churn risk above that average, a negative one below it. So a factor that "lowers churn
    risk" can sit beside a high churn probability: it only says this factor is better than
    average for the customer.

Risk first
    For customers whose stage is about risk (at risk, dormant, ...), the reasons a CRM user
    needs are the ones that raise the risk. With ``risk_first`` a row lists its contributions
    > 0 first (largest first) and, only when fewer than ``k`` raise the risk, the protective
    ones after them (largest first), each marked with :data:`PROTECTIVE`. Other rows keep the
    order by absolute contribution. The choice needs only the top ``k`` contributions by
    absolute value and the top ``k`` positive ones (:class:`ReasonCandidates`), so callers that
    know the stage only later keep those instead of the whole contribution matrix.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retain.features.catalogue import FeatureInfo, feature_info

__all__ = [
    "LOWERS",
    "PROTECTIVE",
    "RAISES",
    "REASON_COLUMNS",
    "VALUE_LOWERS",
    "VALUE_RAISES",
    "VALUE_REASON_COLUMNS",
    "ReasonCandidates",
    "reason_texts",
    "render_reasons",
    "top_contributions",
    "top_positive_contributions",
]

REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")

RAISES = "raises churn risk compared with a typical customer"
"""Direction text of a contribution > 0 (above the model's average score)."""
LOWERS = "lowers churn risk compared with a typical customer"
"""Direction text of a contribution < 0 (below the model's average score)."""
PROTECTIVE = "(protective) "
"""Prefix of a protective reason listed after the risk-raising ones of a risk-first row."""

VALUE_REASON_COLUMNS = ("value_reason_1", "value_reason_2", "value_reason_3")
"""Why a customer's predicted value is what it is (the value model, :mod:`retain.clv.ml`)."""
VALUE_RAISES = "raises predicted value compared with a typical customer"
"""Direction text of a value contribution > 0 (in the log of the predicted value)."""
VALUE_LOWERS = "lowers predicted value compared with a typical customer"
"""Direction text of a value contribution < 0."""


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
    return _top_k(phi, np.abs(phi), phi != 0.0, k)


def top_positive_contributions(contrib: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest contributions > 0 per row.

    Parameters
    ----------
    contrib : ndarray, shape (n_rows, n_features + 1)
        Output of :func:`shap_contributions` (the expected-value column is ignored).
    k : int
        Number of contributions to keep.

    Returns
    -------
    index : ndarray of int, shape (n_rows, k)
        Feature positions, largest contribution first; -1 where a row has fewer than ``k``
        contributions > 0.
    value : ndarray of float, shape (n_rows, k)
        The contributions (0 where ``index`` is -1).
    """
    phi = contrib[:, :-1]
    return _top_k(phi, phi, phi > 0.0, k)


def _top_k(
    phi: np.ndarray, rank: np.ndarray, keep: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` entries of largest ``rank`` per row, of those where ``keep`` (others -1/0)."""
    k_eff = min(k, phi.shape[1])
    if k_eff < phi.shape[1]:
        part = np.argpartition(-rank, k_eff - 1, axis=1)[:, :k_eff]
    else:
        part = np.tile(np.arange(phi.shape[1]), (phi.shape[0], 1))
    order = np.argsort(-np.take_along_axis(rank, part, axis=1), axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    value = np.take_along_axis(phi, index, axis=1)
    index = np.where(np.take_along_axis(keep, index, axis=1), index, -1)
    value = np.where(index >= 0, value, 0.0)
    if k_eff < k:
        pad = k - k_eff
        index = np.hstack([index, np.full((len(index), pad), -1)])
        value = np.hstack([value, np.zeros((len(value), pad))])
    return index, value


@dataclass(frozen=True)
class ReasonCandidates:
    """What is needed to choose each row's reasons later, in either order.

    The top ``k`` contributions by absolute value hold every protective contribution a
    risk-first row can need (a row with ``p < k`` contributions > 0 has at least ``k - p``
    negative ones among its top ``k`` by absolute value, and they are its largest); the top
    ``k`` positive ones hold the risk-raising ones. Four ``(n_rows, k)`` arrays, so memory is
    bounded by ``k``, not by the number of features.

    Attributes
    ----------
    abs_index, abs_value : ndarray
        :func:`top_contributions`.
    pos_index, pos_value : ndarray
        :func:`top_positive_contributions`.
    """

    abs_index: np.ndarray
    abs_value: np.ndarray
    pos_index: np.ndarray
    pos_value: np.ndarray

    @classmethod
    def from_contributions(cls, contrib: np.ndarray, k: int = 3) -> ReasonCandidates:
        """The candidates of every row of a :func:`shap_contributions` matrix."""
        return cls(*top_contributions(contrib, k), *top_positive_contributions(contrib, k))

    @classmethod
    def concat(cls, parts: Sequence[ReasonCandidates], k: int = 3) -> ReasonCandidates:
        """The rows of ``parts`` one after the other (an empty ``(0, k)`` set without parts)."""
        if not parts:
            empty_i, empty_v = np.empty((0, k), dtype=np.int64), np.empty((0, k))
            return cls(empty_i, empty_v, empty_i, empty_v)
        return cls(
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in ("abs_index", "abs_value", "pos_index", "pos_value")
            )
        )

    def __len__(self) -> int:
        return len(self.abs_index)

    def take(self, rows: slice | np.ndarray) -> ReasonCandidates:
        """The candidates of some rows."""
        return ReasonCandidates(
            self.abs_index[rows], self.abs_value[rows], self.pos_index[rows], self.pos_value[rows]
        )

    def choose(
        self, risk_first: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reasons of each row, in order.

        Parameters
        ----------
        risk_first : ndarray of bool, optional
            Rows whose reasons list the contributions > 0 first, then the protective ones
            (module docstring). None: every row is ordered by absolute contribution.

        Returns
        -------
        index, value : ndarray, shape (n_rows, k)
            Feature positions (-1: no reason) and contributions.
        protective : ndarray of bool, shape (n_rows, k)
            The protective reasons of risk-first rows (to be marked as such).
        """
        index = self.abs_index.copy()
        value = self.abs_value.copy()
        protective = np.zeros(index.shape, dtype=bool)
        if risk_first is None or not np.any(risk_first):
            return index, value, protective
        rows = np.flatnonzero(np.asarray(risk_first, dtype=bool))
        k = index.shape[1]
        neg = self.abs_value[rows] < 0.0
        cand_i = np.hstack([self.pos_index[rows], np.where(neg, self.abs_index[rows], -1)])
        cand_v = np.hstack([self.pos_value[rows], np.where(neg, self.abs_value[rows], 0.0)])
        cand_p = np.hstack([np.zeros(self.pos_index[rows].shape, dtype=bool), neg])
        # move the valid candidates left, keeping their order: raising first, then protective
        order = np.argsort(cand_i < 0, axis=1, kind="stable")[:, :k]
        index[rows] = np.take_along_axis(cand_i, order, axis=1)
        value[rows] = np.take_along_axis(cand_v, order, axis=1)
        protective[rows] = np.take_along_axis(cand_p, order, axis=1) & (index[rows] >= 0)
        return index, value, protective


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


def _format_each(fmt: Callable[..., str], columns: list[np.ndarray]) -> np.ndarray:
    """``fmt(*row)`` for every row of ``columns``, each distinct row formatted once.

    Rows are told apart by their values' bits (so ``-0.0`` and ``0.0`` stay distinct, as
    their texts may be), and each distinct row is formatted from its first occurrence as a
    Python scalar, as ``to_numpy(dtype=object)`` would give it: the texts are those of a
    per-row loop. Counts, days and scores repeat a lot, so most texts are made once.
    """
    n = len(columns[0])
    codes = np.zeros(n, dtype=np.int64)
    for col in columns:
        key = col.astype(np.float64).view(np.int64) if col.dtype.kind == "f" else col
        part, uniques = pd.factorize(key)
        codes = codes * max(len(uniques), 1) + part
        codes, _ = pd.factorize(codes)
    n_distinct = int(codes.max()) + 1 if n else 0
    first = np.full(n_distinct, n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
    rows = zip(*(col[first].tolist() for col in columns), strict=True)
    texts = np.array([fmt(*row) for row in rows], dtype=object)
    return texts[codes]


def _render_feature(name: str, frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Catalogue text of feature ``name`` for rows ``rows`` of ``frame``.

    As :meth:`FeatureInfo.render` gives it, vectorised: the reason template when every value
    it names is present, else the fallback template when the feature's own value is present,
    else the entry's text for a missing value.
    """
    info = _info(name)
    others = [
        f for f in dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(info.reason) if f)
    ]
    others = [f for f in others if f != "value"]
    value = frame[name].to_numpy()[rows]
    value_ok = ~pd.isna(value)
    ok = value_ok.copy()
    cols: dict[str, np.ndarray] = {}
    for f in others:
        if f not in frame.columns:
            ok[:] = False
            break
        cols[f] = frame[f].to_numpy()[rows]
        ok &= ~pd.isna(cols[f])
    missing = info.missing or f"{info.meaning.rstrip('.')}: not available"
    out = np.full(len(rows), missing, dtype=object)
    idx = np.flatnonzero(ok)
    if len(idx):
        fmt = _positional(info.reason, ["value", *others]).format
        out[idx] = _format_each(fmt, [value[idx], *(cols[f][idx] for f in others)])
    if info.fallback is not None:
        fb = np.flatnonzero(~ok & value_ok)
        if len(fb):
            fallback = info.fallback
            out[fb] = _format_each(lambda v: fallback.format(value=v), [value[fb]])
    return out


def render_reasons(
    index: np.ndarray,
    value: np.ndarray,
    features: pd.DataFrame,
    feature_names: Sequence[str],
    protective: np.ndarray | None = None,
    *,
    directions: tuple[str, str] = (RAISES, LOWERS),
    prefix: str = "reason_",
) -> pd.DataFrame:
    """Reason texts of chosen contributions (:meth:`ReasonCandidates.choose`).

    Parameters
    ----------
    index, value : ndarray, shape (n_rows, k)
        Feature positions (-1: no reason) and contributions, one row per row of ``features``.
    features : DataFrame
        The customers' feature values, including the columns the catalogue templates
        reference (e.g. ``mean_gap_days``).
    feature_names : sequence of str
        The model's feature columns, in model order.
    protective : ndarray of bool, optional
        Reasons to mark with :data:`PROTECTIVE`.
    directions : (str, str)
        Texts of a contribution > 0 and < 0 (churn risk by default; :data:`VALUE_RAISES` and
        :data:`VALUE_LOWERS` for the value model).
    prefix : str
        Column name prefix (``reason_``; ``value_reason_`` for the value model).

    Returns
    -------
    DataFrame
        Same index as ``features``; columns ``<prefix>1`` .. ``<prefix>k`` (string).
    """
    n, k = index.shape
    if n != len(features):
        raise ValueError("index must have one row per customer")
    out = {}
    for r in range(k):
        body = np.full(n, None, dtype=object)
        idx_r = index[:, r]
        val_r = value[:, r]
        for f in np.unique(idx_r[idx_r >= 0]):
            rows = np.flatnonzero(idx_r == f)
            body[rows] = _render_feature(feature_names[f], features, rows)
        # vectorised: "<text>: raises churn risk compared with a typical customer (+0.42)"
        direction = np.where(val_r > 0, f": {directions[0]} (", f": {directions[1]} (")
        cents = np.round(np.abs(val_r) * 100.0).astype(np.int64)
        whole = pd.Series(cents // 100).astype("string")
        frac = pd.Series(cents % 100).astype("string").str.zfill(2)
        sign = np.where(val_r < 0, "-", "+")
        text = pd.Series(body, dtype="string") + direction + sign + whole + "." + frac + ")"
        if protective is not None:
            text = pd.Series(np.where(protective[:, r], PROTECTIVE, ""), dtype="string") + text
        out[f"{prefix}{r + 1}"] = text.array
    return pd.DataFrame(out, index=features.index)


def reason_texts(
    contrib: np.ndarray,
    features: pd.DataFrame,
    feature_names: Sequence[str],
    k: int = 3,
    risk_first: np.ndarray | None = None,
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
    risk_first : ndarray of bool, optional
        Rows (e.g. at-risk customers) whose reasons list the risk-raising contributions first
        and the protective ones after, marked (module docstring). None: every row in order of
        absolute contribution.

    Returns
    -------
    DataFrame
        Same index as ``features``; columns ``reason_1`` .. ``reason_k`` (string), each like
        ``"no purchase for 143 days (usual gap 35 days): raises churn risk compared with a
        typical customer (+0.42)"``: the catalogue text with the customer's values, the
        direction against the model's average score, and the contribution in log-odds of the
        uncalibrated model. Missing when the customer has fewer non-zero contributions (or,
        in a risk-first row, fewer reasons to give).
    """
    if contrib.shape != (len(features), len(feature_names) + 1):
        raise ValueError("contrib must have one row per customer and one column per feature + 1")
    index, value, protective = ReasonCandidates.from_contributions(contrib, k).choose(risk_first)
    return render_reasons(index, value, features, feature_names, protective)
