"""The feature catalogue: meaning, unit and a plain-language reason template per feature column.

It is the single source for reason texts (churn explanations) and for the feature table in the
report. A reason template is a :meth:`str.format` string; ``{value}`` is the customer's value of
the feature itself and any other ``{name}`` is the customer's value of that column, e.g.
``"no purchase for {value:.0f} days (usual gap {mean_gap_days:.0f} days)"``. When a referenced
value is missing or NaN, the shorter ``fallback`` template (which uses ``{value}`` only) is used.

:data:`FEATURE_CATALOGUE` holds every column :func:`retain.features.build.build_features` makes
with the default windows (30, 90, 180, 365 days) and no generic event types; :func:`feature_info`
also resolves the windowed columns of any other window length and the generic per-type event
columns of any type (``events_<type>_<w>d``, ``days_since_<type>``; see
:mod:`retain.features.engagement`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from retain.contracts import EVENT_ROLES
from retain.features.behaviour import DEFAULT_WINDOWS_DAYS
from retain.features.engagement import (
    GENERIC_COUNT_PREFIX,
    generic_column_names,
    generic_event_types,
)

__all__ = ["FEATURE_CATALOGUE", "FeatureInfo", "build_catalogue", "feature_info", "reason_text"]


@dataclass(frozen=True)
class FeatureInfo:
    """Catalogue entry of one feature column.

    Attributes
    ----------
    meaning : str
        One sentence: what the column measures.
    unit : str
        Unit of the values (``days``, ``currency``, ``count``, ``ratio``, ``score 1-5``, ...).
    reason : str
        Reason template (see the module docstring).
    fallback : str or None
        Template used when a value referenced by ``reason`` other than ``{value}`` is missing;
        None when ``reason`` references only ``{value}``.
    missing : str or None
        Text used when the customer's value itself is missing (NaN), e.g. "no survey answer";
        None for features that are never missing.
    """

    meaning: str
    unit: str
    reason: str
    fallback: str | None = None
    missing: str | None = None

    def fields(self) -> set[str]:
        """Names referenced by the reason template (``value`` included)."""
        return {f for _, f, _, _ in string.Formatter().parse(self.reason) if f}

    def render(self, value: Any, row: Mapping[str, Any] | None = None) -> str:
        """The reason text for one customer.

        Parameters
        ----------
        value : Any
            The customer's value of this feature.
        row : Mapping, optional
            The customer's other feature values (e.g. a row of the feature table).

        Returns
        -------
        str
            The filled-in reason template, or the fallback when a referenced value is missing.
        """
        if not _present(value):
            return self.missing if self.missing is not None else "value not available"
        values = {} if row is None else dict(row)
        values["value"] = value
        if all(_present(values.get(name)) for name in self.fields()):
            return self.reason.format(**values)
        if self.fallback is not None:
            return self.fallback.format(value=value)
        return "value not available"


def _present(v: Any) -> bool:
    if v is None:
        return False
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


_STATIC: dict[str, FeatureInfo] = {
    # RFM (BTYD) summary in days
    "frequency": FeatureInfo(
        "Number of repeat purchase occasions (purchase days after the first) by the cutoff.",
        "count",
        "{value:.0f} repeat purchases so far",
    ),
    "recency_days": FeatureInfo(
        "Days from the first to the last purchase occasion (BTYD recency).",
        "days",
        "bought over a span of {value:.0f} days",
    ),
    "tenure_days": FeatureInfo(
        "Days from the first purchase occasion to the cutoff (customer age, BTYD T).",
        "days",
        "customer for {value:.0f} days",
    ),
    "monetary_value": FeatureInfo(
        "Mean value of the repeat purchase occasions (0 without repeat purchases).",
        "currency",
        "average repeat purchase of {value:,.2f}",
    ),
    # behaviour
    "days_since_last_purchase": FeatureInfo(
        "Days from the last purchase occasion to the cutoff.",
        "days",
        "no purchase for {value:.0f} days (usual gap {mean_gap_days:.0f} days)",
        "no purchase for {value:.0f} days",
    ),
    "n_occasions": FeatureInfo(
        "Number of purchase occasions (days with a purchase) by the cutoff.",
        "count",
        "{value:.0f} purchase days so far",
    ),
    "mean_gap_days": FeatureInfo(
        "Mean number of days between consecutive purchase occasions (NaN with one occasion).",
        "days",
        "usually buys every {value:.0f} days",
        missing="only one purchase so far, no usual gap yet",
    ),
    "std_gap_days": FeatureInfo(
        "Sample standard deviation of the days between purchase occasions (NaN below 3 occasions).",
        "days",
        "irregular buying rhythm (gaps vary by {value:.0f} days)",
        missing="fewer than three purchases, no gap spread yet",
    ),
    "gap_ratio": FeatureInfo(
        "Days since the last purchase divided by the customer's mean gap between purchases.",
        "ratio",
        "{value:.1f} times their usual gap since the last purchase "
        "({days_since_last_purchase:.0f} vs {mean_gap_days:.0f} days)",
        "{value:.1f} times their usual gap since the last purchase",
        missing="only one purchase so far, no usual gap yet",
    ),
    "spend_trend": FeatureInfo(
        "Spend in the recent trend window against the window before it: "
        "(recent - earlier) / (recent + earlier), -1 = stopped, +1 = all recent.",
        "ratio -1..1",
        "spending trend {value:+.2f} (-1 stopped, +1 all recent)",
        missing="no purchase in the two latest trend windows",
    ),
    "frequency_trend": FeatureInfo(
        "Purchase occasions in the recent trend window against the window before it: "
        "(recent - earlier) / (recent + earlier).",
        "ratio -1..1",
        "purchase frequency trend {value:+.2f} (-1 stopped, +1 all recent)",
        missing="no purchase in the two latest trend windows",
    ),
    "mean_basket_size": FeatureInfo(
        "Mean quantity (items) per purchase occasion.",
        "items",
        "buys {value:.1f} items per purchase",
    ),
    "total_spend": FeatureInfo(
        "Total amount spent by the cutoff, first purchase included.",
        "currency",
        "spent {value:,.2f} in total",
    ),
    "avg_occasion_value": FeatureInfo(
        "Total spend divided by the number of purchase occasions.",
        "currency",
        "spends {value:,.2f} per purchase on average",
    ),
    # scores and segments
    "r_score": FeatureInfo(
        "Recency quintile score 1-5 from days since the last purchase (5 = most recent).",
        "score 1-5",
        "recency score {value:.0f} of 5",
    ),
    "f_score": FeatureInfo(
        "Frequency quintile score 1-5 from repeat purchases (5 = most frequent).",
        "score 1-5",
        "frequency score {value:.0f} of 5",
    ),
    "m_score": FeatureInfo(
        "Monetary quintile score 1-5 from total spend (5 = highest).",
        "score 1-5",
        "spend score {value:.0f} of 5",
    ),
    "rfm_segment": FeatureInfo(
        "Named RFM segment from the R and F scores (configs/segments.yaml).",
        "category",
        "RFM segment '{value}'",
    ),
    "rfm_class": FeatureInfo(
        "Coarse RFM class VIP / new / dormant / regular (configs/segments.yaml).",
        "category",
        "RFM class '{value}'",
    ),
    # purchase-model (BTYD) outputs used by the churn model, fitted on data up to the cutoff
    "p_alive": FeatureInfo(
        "Probability that the customer is still active at the cutoff (BTYD model fitted on the "
        "history up to the cutoff).",
        "probability",
        "{value:.0%} chance of still being an active customer",
    ),
    "expected_purchases_horizon": FeatureInfo(
        "Repeat purchases the BTYD model expects in the churn horizon after the cutoff.",
        "count",
        "expected to buy {value:.2f} times in the coming churn horizon",
    ),
    "p_no_purchase_horizon": FeatureInfo(
        "Probability of no purchase in the churn horizon under the BTYD model.",
        "probability",
        "{value:.0%} BTYD chance of no purchase in the coming churn horizon",
    ),
    # engagement
    "email_click_rate": FeatureInfo(
        "E-mail clicks per e-mail sent over the longest trailing window.",
        "ratio",
        "clicks {value:.0%} of the e-mails sent",
        missing="no e-mails sent to them in the longest window",
    ),
    "email_open_rate": FeatureInfo(
        "E-mail opens per e-mail sent over the longest trailing window.",
        "ratio",
        "opens {value:.0%} of the e-mails sent",
        missing="no e-mails sent to them in the longest window",
    ),
    "last_satisfaction": FeatureInfo(
        "Satisfaction score (1-5) of the latest support ticket.",
        "score 1-5",
        "last support satisfaction {value:.0f} of 5",
        missing="no rated support ticket",
    ),
    "last_nps": FeatureInfo(
        "Latest survey answer on the 0-10 recommendation (NPS) scale.",
        "score 0-10",
        "last NPS answer {value:.0f} of 10",
        missing="no survey answer",
    ),
    "referrals_total": FeatureInfo(
        "Number of referrals made by the cutoff.",
        "count",
        "{value:.0f} referrals made",
    ),
    "engagement_trend": FeatureInfo(
        "Web sessions in the recent trend window against the window before it: "
        "(recent - earlier) / (recent + earlier).",
        "ratio -1..1",
        "site visits trend {value:+.2f} (-1 stopped, +1 all recent)",
        missing="no web sessions in the two latest trend windows",
    ),
}

_EVENT_WORDS = {
    "session": "web sessions",
    "email_sent": "e-mails sent to them",
    "email_open": "e-mails opened",
    "email_click": "e-mail clicks",
    "support_ticket": "support tickets",
    "survey": "survey answers",
    "referral": "referrals",
}

_WINDOWED = re.compile(r"^(spend|occasions|(?P<event>[a-z_]+)_count)_(?P<w>\d+)d$")


def _windowed(name: str) -> FeatureInfo | None:
    match = _WINDOWED.match(name)
    if match is None:
        return None
    w = int(match.group("w"))
    event = match.group("event")
    if name.startswith("spend_"):
        return FeatureInfo(
            f"Amount spent in the last {w} days (cutoff day included).",
            "currency",
            f"spent {{value:,.2f}} in the last {w} days",
        )
    if name.startswith("occasions_"):
        return FeatureInfo(
            f"Purchase occasions in the last {w} days (cutoff day included).",
            "count",
            f"{{value:.0f}} purchases in the last {w} days",
        )
    if event in EVENT_ROLES:
        return FeatureInfo(
            f"Number of {event} events in the last {w} days (cutoff day included).",
            "count",
            f"{{value:.0f}} {_EVENT_WORDS[event]} in the last {w} days",
        )
    return None


def _days_since(t: str) -> FeatureInfo:
    return FeatureInfo(
        f"Days from the latest {t} event to the cutoff (NaN when there is none).",
        "days",
        f"last of the {_EVENT_WORDS[t]} {{value:.0f}} days ago",
        missing=f"no {_EVENT_WORDS[t]} recorded",
    )


def _generic(name: str) -> FeatureInfo | None:
    """Entry of a generic per-type event column (``events_<type>_<w>d``, ``days_since_<type>``)."""
    slugs = generic_event_types([name])
    if not slugs:
        return None
    t = slugs[0]
    if name.startswith(GENERIC_COUNT_PREFIX):
        w = int(name[len(GENERIC_COUNT_PREFIX) + len(t) + 1 : -1])
        return FeatureInfo(
            f"Number of {t} events in the last {w} days (cutoff day included).",
            "count",
            f"{{value:.0f}} {t} events in the last {w} days",
        )
    return FeatureInfo(
        f"Days from the latest {t} event to the cutoff (NaN when there is none).",
        "days",
        f"last {t} event {{value:.0f}} days ago",
        missing=f"no {t} events recorded",
    )


def build_catalogue(
    windows_days: Iterable[int] = DEFAULT_WINDOWS_DAYS, event_types: Iterable[str] = ()
) -> dict[str, FeatureInfo]:
    """Catalogue entries for every feature column made with the given windows and types.

    Parameters
    ----------
    windows_days : iterable of int
        Trailing window lengths in days.
    event_types : iterable of str
        Generic event types (names or slugs) whose per-type columns to add.

    Returns
    -------
    dict
        Column name to :class:`FeatureInfo`.
    """
    windows_days = tuple(windows_days)
    out = dict(_STATIC)
    for t in EVENT_ROLES:
        out[f"days_since_last_{t}"] = _days_since(t)
    for w in windows_days:
        for name in (f"spend_{w}d", f"occasions_{w}d", *(f"{t}_count_{w}d" for t in EVENT_ROLES)):
            out[name] = feature_info(name)
    for name in generic_column_names(event_types, windows_days):
        out[name] = feature_info(name)
    return out


def feature_info(name: str) -> FeatureInfo:
    """Catalogue entry of a feature column, including windowed columns of any window length
    and the generic per-type event columns of any event type.

    Parameters
    ----------
    name : str
        Column name.

    Returns
    -------
    FeatureInfo
        The entry.

    Raises
    ------
    KeyError
        When the column is unknown.
    """
    if name in _STATIC:
        return _STATIC[name]
    if name.startswith("days_since_last_") and name[16:] in EVENT_ROLES:
        return _days_since(name[16:])
    info = _windowed(name) or _generic(name)
    if info is not None:
        return info
    raise KeyError(f"feature {name!r} is not in the feature catalogue")


def reason_text(name: str, row: Mapping[str, Any]) -> str:
    """Plain-language reason for feature ``name`` with the customer's own values.

    Parameters
    ----------
    name : str
        Feature column.
    row : Mapping
        The customer's feature values (e.g. ``features.loc[customer_id]``); must hold ``name``.

    Returns
    -------
    str
        E.g. ``"no purchase for 143 days (usual gap 35 days)"``.
    """
    return feature_info(name).render(row[name], row)


FEATURE_CATALOGUE: dict[str, FeatureInfo] = build_catalogue()
"""Every feature column of :func:`retain.features.build.build_features` (default windows)."""
