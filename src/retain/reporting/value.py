"""The report's value section: which CLV the tiers use, how the two CLVs compare, why VIP.

Shown when the scores carry the value model's columns (``clv.method`` ``ml`` or ``auto``,
:data:`retain.scoring.VALUE_COLUMNS`): the method chosen and the test figures it was chosen
on (recorded with the value model version), how much the two CLVs agree on the top 20%, the
mean of each CLV per value tier, and the highest-value customers with the value model's
reasons (exact SHAP contributions, as the churn reasons).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from retain.config import TIERS
from retain.explain.reasons import VALUE_REASON_COLUMNS
from retain.reporting.html import Section
from retain.reporting.summary import format_amount

FIGURES = (
    ("top20_capture", "share of the test value held by the top 20%"),
    ("top5_capture", "share of the test value held by the top 5%"),
    ("gini", "normalised Gini (1 = perfect ranking)"),
    ("total_error", "relative error of the total (+ = over)"),
)
"""The recorded test figures shown per method, with their labels."""


def holdout_table(holdout: Mapping[str, float]) -> pd.DataFrame:
    """The value model's recorded test figures, ML beside BTYD.

    Parameters
    ----------
    holdout : mapping
        :attr:`retain.clv.ml.ValueModel.holdout` (``ml_top20_capture``, ...).

    Returns
    -------
    DataFrame
        One row per figure of :data:`FIGURES`, columns ``ML value model`` and ``BTYD``.
    """
    rows = {
        label: {
            "ML value model": holdout.get(f"ml_{key}", np.nan),
            "BTYD": holdout.get(f"btyd_{key}", np.nan),
        }
        for key, label in FIGURES
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def top_membership(values: np.ndarray, k: int) -> np.ndarray:
    """Each customer's chance of being among the ``k`` highest values, ties in random order.

    Customers above the ``k``-th value are in (1), below it out (0); those tied with it share
    the places left, ``places / group size`` each: the tie rule of
    :mod:`retain.clv.value_metrics` (a tie group is taken at its mean, whatever the row order).

    Parameters
    ----------
    values : array of float
        One finite value per customer.
    k : int
        Places, 0 to ``len(values)``.

    Returns
    -------
    ndarray of float
        Sums to ``k``.
    """
    v = np.asarray(values, dtype=float)
    if k <= 0:
        return np.zeros(v.size)
    if k >= v.size:
        return np.ones(v.size)
    cut = np.sort(v)[::-1][k - 1]
    above, tied = v > cut, v == cut
    out = above.astype(float)
    out[tied] = (k - above.sum()) / tied.sum()
    return out


def top_overlap(scores: pd.DataFrame, fraction: float = 0.2) -> float:
    """Share of the top ``fraction`` by ``clv_ml`` also in the top ``fraction`` by ``clv_btyd``.

    Customers without both values are left out; NaN when none has both. Customers tied at the
    edge of a top share its last places (:func:`top_membership`): the result is the expected
    overlap over random orders within ties, so it does not depend on the row order.
    """
    both = scores[["clv_ml", "clv_btyd"]].dropna()
    if both.empty:
        return float("nan")
    k = max(1, math.ceil(fraction * len(both) - 1e-9))  # as retain.clv.value_metrics
    ml = top_membership(both["clv_ml"].to_numpy(dtype=float), k)
    btyd = top_membership(both["clv_btyd"].to_numpy(dtype=float), k)
    return float(np.sum(ml * btyd) / k)


def value_section(
    sec: Section,
    scores: pd.DataFrame,
    holdout: Mapping[str, float],
    kind: str,
    currency: str = "$",
    top_n: int = 5,
) -> Section:
    """Fill the value section (module notes).

    Parameters
    ----------
    sec : Section
        The report section.
    scores : DataFrame
        Scores with :data:`retain.scoring.VALUE_COLUMNS`.
    holdout : mapping
        The value model's recorded test figures.
    kind : str
        The value model's loss (``tweedie`` or ``hurdle``).
    currency : str
        Written with every amount.
    top_n : int
        Highest-value customers listed with their reasons.

    Returns
    -------
    Section
    """
    known = scores["clv_method"].dropna()
    method = str(known.iloc[0]) if len(known) else "?"
    name = "ML value model" if method == "ml" else "BTYD + Gamma-Gamma"
    sec.text(
        f"The clv column and the value tiers use the {name} CLV ({method}); both are kept "
        f"(clv_ml, clv_btyd). The ML value model ({kind}) is "
        "LightGBM on the churn model's features, trained on the discounted spend of the CLV "
        "horizon after past cutoffs; the figures below come from its test cutoff, where both "
        "were compared on the same customers."
    )
    sec.table(holdout_table(holdout).map(lambda v: "" if pd.isna(v) else f"{v:.3f}"))
    overlap = top_overlap(scores)
    if np.isfinite(overlap):
        sec.text(
            f"Today, {overlap:.0%} of the top 20% customers by ML CLV are also in the top 20% "
            "by BTYD CLV."
        )
    tiers = [t for t in TIERS if t in set(scores["value_tier"].dropna())]
    if tiers:
        means = scores.groupby("value_tier", observed=True)[["clv_ml", "clv_btyd"]].mean()
        means = means.reindex(tiers)
        means.index.name = "value tier"
        means.columns = ["mean ML CLV", "mean BTYD CLV"]
        sec.howto("the mean of each CLV per value tier (the tiers come from the chosen clv).")
        sec.table(means.map(lambda v: format_amount(v, currency, 0)))
    top = scores.dropna(subset=["clv"]).sort_values("clv", ascending=False, kind="stable")
    sec.howto(
        "the value reasons are the value model's exact SHAP contributions in the log of the "
        "predicted value: a positive one raises it above a typical customer's."
    )
    for _, row in top.head(top_n).iterrows():
        sec.text(
            f"Customer {row['customer_id']}: tier {row['value_tier']}; ML CLV "
            f"{format_amount(row['clv_ml'], currency)}, BTYD CLV "
            f"{format_amount(row['clv_btyd'], currency)}."
        )
        reasons = [str(row[c]) for c in VALUE_REASON_COLUMNS if pd.notna(row[c])]
        sec.blocks.append("<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in reasons) + "</ul>")
    return sec
