"""RFM scores (1-5) and named RFM segments; the rules are data (``configs/segments.yaml``).

Scores
------
Each score is a quintile score computed from ranks with ties kept together::

    score = 1 + floor(5 * (number of customers strictly worse) / n)

i.e. pandas ``rank(method="min")``: a customer's score says which fifth of the customer base
lies strictly below them. Customers with equal values always get equal scores (nothing depends
on row order), and with distinct values each score holds a fifth of the customers (exactly, when
n is a multiple of 5). With heavy ties some scores stay empty: when 60% of customers have no
repeat purchase, they all get F = 1 and the next frequency starts at F = 4.

- ``r_score``: from ``days_since_last_purchase``, reversed (fewer days = more recent = higher);
- ``f_score``: from ``frequency`` (repeat purchase occasions);
- ``m_score``: from ``total_spend`` when present, else from ``monetary_value`` (the mean repeat
  occasion value of :func:`retain.features.rfm.rfm_summary`). :func:`retain.features.build.
  build_features` always has ``total_spend``, the classic RFM "monetary" measure.

When ``days_since_last_purchase`` is absent it is derived from an RFM summary as
``tenure - recency`` (in days, or weeks times 7).

Segments
--------
``rfm_segment``: the 11 classic segments (Champions ... Lost) looked up from (R, F) in the rules;
``rfm_class``: the coarse classes VIP / new / dormant / regular from (R, F, M), first matching
rule wins. Both are pandas categoricals whose categories follow the order of the rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.config import SegmentRules

DEFAULT_SEGMENT_RULES = SegmentRules.model_validate(
    {
        "segments": {
            "Champions": [{"r": [5, 5], "f": [4, 5]}],
            "Loyal": [{"r": [3, 4], "f": [4, 5]}],
            "Potential loyalist": [{"r": [4, 5], "f": [2, 3]}],
            "New": [{"r": [5, 5], "f": [1, 1]}],
            "Promising": [{"r": [4, 4], "f": [1, 1]}],
            "Need attention": [{"r": [3, 3], "f": [3, 3]}],
            "About to sleep": [{"r": [3, 3], "f": [1, 2]}],
            "At risk": [{"r": [1, 2], "f": [3, 4]}],
            "Can't lose them": [{"r": [1, 2], "f": [5, 5]}],
            "Hibernating": [{"r": [2, 2], "f": [1, 2]}],
            "Lost": [{"r": [1, 1], "f": [1, 2]}],
        },
        "classes": [
            {"name": "VIP", "r": [4, 5], "f": [4, 5], "m": [4, 5]},
            {"name": "new", "r": [4, 5], "f": [1, 2], "m": [1, 3]},
            {"name": "dormant", "r": [1, 2], "f": [1, 5], "m": [4, 5]},
        ],
        "default_class": "regular",
    }
)
"""The rules shipped in ``configs/segments.yaml`` (a test keeps the two identical)."""


RFM_SCORE_SOURCES: dict[str, tuple[str, bool]] = {
    "r_score": ("days_since_last_purchase", False),
    "f_score": ("frequency", True),
    "m_score": ("total_spend", True),
}
"""Each RFM score's source column and whether higher values score higher."""


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and how often each occurs (the input of :func:`quintile_cuts`).

    Parameters
    ----------
    values : ndarray
        Numbers (no NaN).

    Returns
    -------
    (ndarray, ndarray)
        Distinct values in increasing order (float64) and their counts (int64).
    """
    v, c = np.unique(np.asarray(values, dtype=float), return_counts=True)
    return v, c.astype(np.int64)


def merge_value_counts(
    parts: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """The value counts of several parts of a population, as one (order of parts irrelevant).

    Parameters
    ----------
    parts : list of (values, counts)
        :func:`value_counts` of each part.

    Returns
    -------
    (ndarray, ndarray)
        Sorted distinct values and their total counts.
    """
    if not parts:
        return np.array([], dtype=float), np.array([], dtype=np.int64)
    values = np.concatenate([np.asarray(v, dtype=float) for v, _ in parts])
    counts = np.concatenate([np.asarray(c, dtype=np.int64) for _, c in parts])
    distinct, inverse = np.unique(values, return_inverse=True)
    total = np.zeros(len(distinct), dtype=np.int64)
    np.add.at(total, inverse.ravel(), counts)
    return distinct, total


def order_statistic(values: np.ndarray, counts: np.ndarray, m: int) -> float:
    """The ``m``-th smallest value (1-based) of a population given as value counts.

    Parameters
    ----------
    values, counts : ndarray
        Sorted distinct values and their counts.
    m : int
        Rank, ``1 <= m <= counts.sum()``.

    Returns
    -------
    float
    """
    cum = np.cumsum(counts)
    if not 1 <= m <= (int(cum[-1]) if len(cum) else 0):
        raise ValueError(f"rank {m} outside 1..{int(cum[-1]) if len(cum) else 0}")
    return float(values[int(np.searchsorted(cum, m, side="left"))])


def quintile_cuts(
    values: np.ndarray, counts: np.ndarray, higher_is_better: bool = True
) -> tuple[float, ...]:
    """The four cut points of a quintile score, from the population's value counts.

    With ``n`` customers and ``m_k = ceil((k - 1) n / 5)``, a customer scores at least ``k``
    when at least ``m_k`` customers are strictly worse: their value exceeds the ``m_k``-th
    smallest value (or, reversed, lies below the ``m_k``-th largest). So the score of any
    customer needs only these four numbers, which is what lets the population be scored a
    part at a time (:func:`score_from_cuts`).

    Parameters
    ----------
    values, counts : ndarray
        :func:`value_counts` (or :func:`merge_value_counts`) of the whole population.
    higher_is_better : bool
        False to reverse the score (days since the last purchase).

    Returns
    -------
    tuple of float
        Cut points for scores 2, 3, 4 and 5 (empty for an empty population).
    """
    n = int(np.sum(counts))
    if n == 0:
        return ()
    cuts = []
    for k in range(2, 6):
        m = ((k - 1) * n + 4) // 5  # ceil((k - 1) n / 5), in integers
        rank = m if higher_is_better else n - m + 1
        cuts.append(order_statistic(values, counts, rank))
    return tuple(cuts)


def score_from_cuts(
    values: np.ndarray, cuts: tuple[float, ...], higher_is_better: bool = True
) -> np.ndarray:
    """Quintile scores 1..5 from the cut points of :func:`quintile_cuts`.

    Parameters
    ----------
    values : ndarray
        Numbers (no NaN).
    cuts : tuple of float
        The population's four cut points.
    higher_is_better : bool
        As given to :func:`quintile_cuts`.

    Returns
    -------
    ndarray of int64
    """
    v = np.asarray(values, dtype=float)
    if np.isnan(v).any():
        raise ValueError("cannot score NaN values")
    score = np.ones(len(v), dtype=np.int64)
    for cut in cuts:
        score += (v > cut) if higher_is_better else (v < cut)
    return score


def quintile_score(values: pd.Series | np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Quintile score 1..5 with ties kept together (see the module docstring).

    Parameters
    ----------
    values : Series or ndarray
        One number per customer (no NaN).
    higher_is_better : bool
        False to reverse the score (e.g. days since the last purchase).

    Returns
    -------
    ndarray of int64
        ``1 + floor(5 * (number strictly worse) / n)``.
    """
    v = np.asarray(values, dtype=float)
    if np.isnan(v).any():
        raise ValueError("cannot score NaN values")
    cuts = quintile_cuts(*value_counts(v), higher_is_better=higher_is_better)
    return score_from_cuts(v, cuts, higher_is_better)


def _days_since_last(summary: pd.DataFrame) -> pd.Series:
    if "days_since_last_purchase" in summary:
        return summary["days_since_last_purchase"]
    for unit, factor in (("days", 1.0), ("weeks", 7.0)):
        if f"tenure_{unit}" in summary and f"recency_{unit}" in summary:
            return (summary[f"tenure_{unit}"] - summary[f"recency_{unit}"]) * factor
    raise KeyError(
        "rfm_scores needs 'days_since_last_purchase' or a tenure_/recency_ pair in days or weeks"
    )


def rfm_score_inputs(summary: pd.DataFrame) -> dict[str, np.ndarray]:
    """The source values of each RFM score (keys of :data:`RFM_SCORE_SOURCES`).

    Parameters
    ----------
    summary : DataFrame
        As for :func:`rfm_scores`.

    Returns
    -------
    dict
        ``r_score``, ``f_score``, ``m_score`` to float arrays.
    """
    monetary = summary["total_spend"] if "total_spend" in summary else summary["monetary_value"]
    return {
        "r_score": np.asarray(_days_since_last(summary), dtype=float),
        "f_score": summary["frequency"].to_numpy(dtype=float),
        "m_score": np.asarray(monetary, dtype=float),
    }


RfmCuts = dict[str, tuple[float, ...]]
"""Cut points of each RFM score (:func:`quintile_cuts`), keyed ``r_score`` ..."""


def rfm_cuts(counts: dict[str, tuple[np.ndarray, np.ndarray]]) -> RfmCuts:
    """The RFM cut points of a population from the value counts of its score inputs.

    Parameters
    ----------
    counts : dict
        Per score name, :func:`value_counts` of :func:`rfm_score_inputs` over the population.

    Returns
    -------
    RfmCuts
    """
    return {
        name: quintile_cuts(*counts[name], higher_is_better=RFM_SCORE_SOURCES[name][1])
        for name in RFM_SCORE_SOURCES
    }


def rfm_scores(summary: pd.DataFrame, cuts: RfmCuts | None = None) -> pd.DataFrame:
    """R, F and M quintile scores (1-5) per customer.

    Parameters
    ----------
    summary : DataFrame
        Indexed by ``customer_id`` with ``frequency``, ``days_since_last_purchase`` (or
        ``tenure_<unit>`` and ``recency_<unit>``), and ``total_spend`` or ``monetary_value``.
    cuts : RfmCuts, optional
        The population's cut points (:func:`rfm_cuts`) when ``summary`` is a part of it;
        default: those of ``summary`` itself.

    Returns
    -------
    DataFrame
        Same index, int64 columns ``r_score``, ``f_score``, ``m_score``.
    """
    inputs = rfm_score_inputs(summary)
    if cuts is None:
        cuts = rfm_cuts({name: value_counts(v) for name, v in inputs.items()})
    return pd.DataFrame(
        {
            name: score_from_cuts(inputs[name], cuts[name], RFM_SCORE_SOURCES[name][1])
            for name in RFM_SCORE_SOURCES
        },
        index=summary.index,
        copy=False,
    )


def _in(score: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    return (score >= bounds[0]) & (score <= bounds[1])


def rfm_segments(scores: pd.DataFrame, rules: SegmentRules | None = None) -> pd.DataFrame:
    """Named segment and coarse class per customer from their R, F, M scores.

    Parameters
    ----------
    scores : DataFrame
        Columns ``r_score``, ``f_score``, ``m_score`` (1..5), as from :func:`rfm_scores`.
    rules : SegmentRules, optional
        Validated rules (:func:`retain.config.load_segments`); default
        :data:`DEFAULT_SEGMENT_RULES`.

    Returns
    -------
    DataFrame
        Same index, categorical columns ``rfm_segment`` and ``rfm_class``.
    """
    rules = DEFAULT_SEGMENT_RULES if rules is None else rules
    r = scores["r_score"].to_numpy(np.int64)
    f = scores["f_score"].to_numpy(np.int64)
    m = scores["m_score"].to_numpy(np.int64)
    for name, s in (("r_score", r), ("f_score", f), ("m_score", m)):
        if len(s) and (s.min() < 1 or s.max() > 5):
            raise ValueError(f"{name} must lie in 1..5")
    names = list(rules.segments)
    table = np.full((5, 5), -1, dtype=np.int64)
    for i, boxes in enumerate(rules.segments.values()):
        for box in boxes:
            table[box.r[0] - 1 : box.r[1], box.f[0] - 1 : box.f[1]] = i
    segment = pd.Categorical.from_codes(table[r - 1, f - 1], categories=names)
    class_names = [c.name for c in rules.classes] + [rules.default_class]
    cls = np.full(len(r), len(rules.classes), dtype=np.int64)
    for i in range(len(rules.classes) - 1, -1, -1):  # reversed so that the first match wins
        rule = rules.classes[i]
        cls[_in(r, rule.r) & _in(f, rule.f) & _in(m, rule.m)] = i
    rfm_class = pd.Categorical.from_codes(cls, categories=class_names)
    return pd.DataFrame({"rfm_segment": segment, "rfm_class": rfm_class}, index=scores.index)
