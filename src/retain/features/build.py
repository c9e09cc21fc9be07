"""One feature table per cutoff: RFM summary, scores, segments, behaviour and engagement.

The same function serves training (stacked over several cutoffs by
:func:`retain.churn.dataset.stack_snapshots`) and scoring (one cutoff, the as-of date).

Point-in-time guard
-------------------
:func:`build_features` records in ``DataFrame.attrs["point_in_time"]`` a mapping from the cutoff
(ISO date) to the latest source timestamp it used (ISO string, or None when no row was used).
:func:`check_point_in_time` raises :class:`PointInTimeError` when that record is missing, names
another cutoff, or shows a source row after the cutoff day, and when the table itself holds a
purchase after the cutoff (negative ``days_since_last_purchase``). Pipelines call it on every
feature table before training or scoring, so a feature computed from later data fails the run.
pandas keeps ``attrs`` through copies and column selection but not through every operation
(e.g. ``concat`` of frames with different attrs): check right after building.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from retain.config import FeatureConfig, SegmentRules
from retain.contracts import TIMESTAMP
from retain.features.behaviour import behaviour_from_arrays
from retain.features.engagement import (
    engagement_features,
    generic_event_types,
    top_event_types,
    zero_when_absent,
)
from retain.features.rfm import occasion_arrays, summary_from_arrays
from retain.features.segments import (
    RfmCuts,
    rfm_cuts,
    rfm_score_inputs,
    rfm_scores,
    rfm_segments,
    value_counts,
)
from retain.timeline import cutoff_end, iso_day

POINT_IN_TIME_ATTR = "point_in_time"


class PointInTimeError(ValueError):
    """A feature table uses information from after its cutoff, or cannot show that it does not."""


def build_features(
    transactions: pd.DataFrame,
    cutoff: dt.date | str,
    events: pd.DataFrame | None = None,
    config: FeatureConfig = FeatureConfig(),
    segment_rules: SegmentRules | None = None,
) -> pd.DataFrame:
    """All point-in-time features per customer as of ``cutoff`` (the cutoff day included).

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions. Rows after the cutoff day are ignored.
    cutoff : date or str
        The as-of date (required).
    events : DataFrame, optional
        Validated events. Without them there are no engagement columns.
    config : FeatureConfig
        Trailing windows, trend window and the generic event types (``event_types``, else
        the ``event_types_top_n`` most frequent before the cutoff).
    segment_rules : SegmentRules, optional
        RFM segment rules; default :data:`retain.features.segments.DEFAULT_SEGMENT_RULES`.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), one row per customer with a purchase by the
        cutoff. Columns, in order: ``frequency``, ``recency_days``, ``tenure_days``,
        ``monetary_value`` (:func:`retain.features.rfm.rfm_summary` in days); the behaviour
        columns (:mod:`retain.features.behaviour`); ``r_score``, ``f_score``, ``m_score``,
        ``rfm_segment``, ``rfm_class`` (:mod:`retain.features.segments`; the last two
        categorical); and, when ``events`` is given, the engagement columns
        (:mod:`retain.features.engagement`: the generic per-type columns, then the role
        columns), where customers without events have 0 counts and NaN elsewhere.
        ``attrs["point_in_time"]`` records the cutoff and the latest source timestamp used
        (see :func:`check_point_in_time`).
    """
    base = base_features(transactions, cutoff, events, config)
    return add_rfm(base, rfm_cuts(rfm_score_counts(base)), segment_rules)


LAST_BEHAVIOUR_COLUMN = "avg_occasion_value"
"""The last behaviour column: the RFM scores and segments follow it."""


def base_features(
    transactions: pd.DataFrame,
    cutoff: dt.date | str,
    events: pd.DataFrame | None = None,
    config: FeatureConfig = FeatureConfig(),
) -> pd.DataFrame:
    """The features of :func:`build_features` that depend on each customer's rows alone.

    Everything but the RFM scores and segments, whose quintiles depend on the whole population
    (:func:`rfm_score_counts`, :func:`retain.features.segments.rfm_cuts`, :func:`add_rfm`). So
    a population split by customer can be featurised a part at a time. ``config`` must list
    its ``event_types`` for the parts to share their columns
    (:func:`fix_event_types`); else each part picks its own most frequent types.

    Parameters
    ----------
    transactions, cutoff, events, config
        As for :func:`build_features`.

    Returns
    -------
    DataFrame
        :func:`build_features` without ``r_score`` ... ``rfm_class``; ``attrs`` as there.
    """
    windows = tuple(config.windows_days)
    occ = occasion_arrays(transactions, cutoff)
    summary = summary_from_arrays(occ, cutoff, "D")
    behaviour = behaviour_from_arrays(occ, cutoff, windows, config.trend_window_days)
    behaviour = behaviour.drop(columns=["tenure_days"])
    columns: dict[str, object] = {}
    for part in (summary, behaviour):
        for col in part.columns:
            columns[col] = part[col]
    max_ts = occ.max_timestamp
    if events is not None:
        engagement = engagement_features(
            events,
            cutoff,
            windows,
            config.trend_window_days,
            config.event_types,
            config.event_types_top_n,
        )
        # Customers without events: 0 for counts, NaN for everything else. Position -1 picks
        # the appended fill value.
        pos = engagement.index.get_indexer(summary.index)
        for col in engagement.columns:
            values = engagement[col].to_numpy()
            fill = 0 if zero_when_absent(col) else np.nan
            columns[col] = np.append(values, np.array([fill], dtype=values.dtype))[pos]
        ev_ts = events[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
        ev_ts = ev_ts[ev_ts < np.datetime64(cutoff_end(cutoff), "ns")]
        if len(ev_ts):
            ev_max = pd.Timestamp(ev_ts.max())
            max_ts = ev_max if max_ts is None else max(max_ts, ev_max)
    out = pd.DataFrame(columns, index=summary.index, copy=False)
    out.attrs[POINT_IN_TIME_ATTR] = {
        iso_day(cutoff): None if max_ts is None else max_ts.isoformat()
    }
    return out


def rfm_score_counts(base: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Value counts of the RFM score inputs of (a part of) a population.

    Parameters
    ----------
    base : DataFrame
        :func:`base_features` output.

    Returns
    -------
    dict
        Per score name, :func:`retain.features.segments.value_counts`; merge the parts of a
        population with :func:`retain.features.segments.merge_value_counts`.
    """
    return {name: value_counts(v) for name, v in rfm_score_inputs(base).items()}


def add_rfm(
    base: pd.DataFrame, cuts: RfmCuts, segment_rules: SegmentRules | None = None
) -> pd.DataFrame:
    """:func:`base_features` output with the RFM scores and segments of the population.

    Parameters
    ----------
    base : DataFrame
        :func:`base_features` output (the whole population or a part of it).
    cuts : RfmCuts
        The whole population's cut points.
    segment_rules : SegmentRules, optional
        RFM segment rules.

    Returns
    -------
    DataFrame
        The columns of :func:`build_features`, in its order; ``attrs`` kept.
    """
    scores = rfm_scores(base, cuts)
    segments = rfm_segments(scores, segment_rules)
    at = base.columns.get_loc(LAST_BEHAVIOUR_COLUMN) + 1
    columns: dict[str, object] = {c: base[c] for c in base.columns[:at]}
    for part in (scores, segments):
        for col in part.columns:
            columns[col] = part[col]
    columns.update({c: base[c] for c in base.columns[at:]})
    out = pd.DataFrame(columns, index=base.index, copy=False)
    out.attrs.update(base.attrs)
    return out


def fix_event_types(
    config: FeatureConfig, events: pd.DataFrame | None, cutoff: dt.date | str
) -> FeatureConfig:
    """``config`` with its generic event types fixed: the list it has, else the top n at ``cutoff``.

    Training stacks several cutoffs: fix the types once (at the last training cutoff, say) so
    every snapshot has the same columns and the model records the list in its feature
    settings. Only events on or before ``cutoff`` decide.

    Parameters
    ----------
    config : FeatureConfig
        The run's feature settings.
    events : DataFrame or None
        Validated events.
    cutoff : date or str
        The cutoff whose data chooses the types.

    Returns
    -------
    FeatureConfig
        ``config`` itself when it lists ``event_types``, else a copy listing
        :func:`retain.features.engagement.top_event_types` (empty without events).
    """
    if config.event_types is not None:
        return config
    types = top_event_types(events, cutoff, config.event_types_top_n)
    return config.model_copy(update={"event_types": types})


def model_feature_config(config: FeatureConfig, feature_names: Iterable[str]) -> FeatureConfig:
    """The feature settings that make every generic event column a model was trained on.

    Parameters
    ----------
    config : FeatureConfig
        The model's recorded feature settings (windows).
    feature_names : iterable of str
        The model's input columns.

    Returns
    -------
    FeatureConfig
        ``config`` with ``event_types`` set to the generic types among ``feature_names``
        (:func:`retain.features.engagement.generic_event_types`), so
        :func:`build_features` makes their columns even when a type is absent from the data
        (0 counts, NaN days), and no other generic column.
    """
    types = generic_event_types(feature_names)
    return config.model_copy(update={"event_types": types})


def check_point_in_time(
    features: pd.DataFrame, cutoff: dt.date | str | Iterable[dt.date | str] | None = None
) -> None:
    """Raise if a feature table may contain information from after its cutoff(s).

    Parameters
    ----------
    features : DataFrame
        Output of :func:`build_features`, or several of them stacked with a ``cutoff`` column.
    cutoff : date, str, iterable of those, or None
        The cutoff(s) the table is supposed to be as of. None: the cutoffs of the ``cutoff``
        column when there is one, else those recorded in ``attrs``.

    Raises
    ------
    PointInTimeError
        When ``attrs["point_in_time"]`` is missing or lacks an expected cutoff, when a source
        timestamp lies after a cutoff day, or when ``days_since_last_purchase`` is negative.
    """
    record = features.attrs.get(POINT_IN_TIME_ATTR)
    if not isinstance(record, dict):
        raise PointInTimeError(
            "feature table carries no point-in-time record (attrs['point_in_time']); "
            "build it with retain.features.build_features and check it right away"
        )
    if cutoff is None:
        if "cutoff" in features:
            wanted = [iso_day(c) for c in pd.unique(features["cutoff"])]
        else:
            wanted = list(record)
    elif isinstance(cutoff, (str, dt.date, pd.Timestamp)):
        wanted = [iso_day(cutoff)]
    else:
        wanted = [iso_day(c) for c in cutoff]
    for day in wanted:
        if day not in record:
            raise PointInTimeError(
                f"feature table was not built for cutoff {day} (built for {sorted(record)})"
            )
        used = record[day]
        if used is not None and pd.Timestamp(used) >= cutoff_end(day):
            raise PointInTimeError(
                f"features for cutoff {day} used data from {used}, after the cutoff day"
            )
    if "days_since_last_purchase" in features:
        bad = features["days_since_last_purchase"] < 0
        if bad.any():
            raise PointInTimeError(
                f"{int(bad.sum())} customers have a purchase after the cutoff "
                "(negative days_since_last_purchase)"
            )
