"""As-of scoring of every customer: features, CLV, churn probability, reasons and policy.

:func:`score_customers` is a pure function (no I/O, no tracking): validated inputs and loaded
models in, one row per customer out. The job :mod:`retain.jobs.score` does the loading, the
atomic writing and the logging around it.

How the work is split
    Scoring is a sequence of steps over a *part* of the population (every customer of the part
    whole), with the values that depend on the whole population reduced between them:
    :func:`part_base` (per-customer features), :func:`population_stats` (RFM quintile cut
    points from value counts, the purchase-model fit behind the churn features from counted
    RFM triples), :func:`part_scores` (RFM scores, CLV, churn probability, exact SHAP reasons
    in chunks of ``chunk_size``, stage; the part's drift counts, :mod:`retain.drift`),
    :func:`part_actions` (tiers from the population's CLV
    cut points, actions), the budget (:class:`retain.policy.BudgetRun` over every contacted
    customer, best first), :func:`part_budget` and :func:`part_output` (five degrees from the
    population's value counts). :func:`score_customers` runs them on one part;
    :mod:`retain.engine` on many, with the same result.

Reasons, risk first
    Each reason compares the customer with a typical customer: the SHAP contributions start
    from the booster's expected value (its average raw score over the training rows). Which
    reasons a customer gets depends on the stage, known only after the policy: customers in a
    stage of :data:`RISK_STAGES` get the factors that raise their risk first and the
    protective ones after, marked (:mod:`retain.explain.reasons`); the others get the largest
    factors either way. So each chunk keeps only its top contributions
    (:class:`retain.explain.reasons.ReasonCandidates`, ``3 x 4`` numbers per customer, not the
    contribution matrix) and the texts are written after the policy, chunk by chunk.

Next purchase
    ``expected_next_purchase_date`` is the as-of date plus the CLV model's
    ``expected_next_purchase_days`` rounded up to whole days: the expected gap to the next
    purchase *if the customer is still alive* (it ignores ``p_alive``; read the two together).
    ``p_purchase_30d`` is the CLV model's probability of at least one purchase in the 30 days
    after the as-of date (it does account for the chance that the customer has churned).
    Prospects get neither.

Who gets a row
    Every customer with a purchase by the as-of date, plus *prospects*: customers known from
    events or customer attributes (signed up by the as-of date) without a purchase. Prospects
    have no RFM values, CLV or churn probability; their stage is ``prospect``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retain.churn.calibration import apply_calibration
from retain.churn.dataset import feature_matrix
from retain.churn.train import ChurnModel
from retain.clv.cutoff_features import (
    CLV_FEATURES,
    clv_features,
    feature_columns,
    fit_feature_model,
    rfm_triples,
)
from retain.config import FeatureConfig, PolicyConfig, SegmentRules
from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.control import control_groups
from retain.drift import DriftCounts, part_counts
from retain.explain import REASON_COLUMNS, TreeShapTables, compile_tree_shap, shap_and_raw_scores
from retain.explain.reasons import VALUE_REASON_COLUMNS, ReasonCandidates, render_reasons
from retain.features.build import (
    add_rfm,
    base_features,
    check_point_in_time,
    model_feature_config,
    rfm_score_counts,
)
from retain.features.engagement import engagement_column_names
from retain.features.rfm import UNIT_NAMES, occasion_arrays
from retain.features.segments import (
    RFM_SCORE_SOURCES,
    merge_value_counts,
    rfm_cuts,
    value_counts,
)
from retain.io import DataError
from retain.policy import (
    FIVE_DEGREES,
    STAGE_PHASE,
    BudgetRun,
    assign_actions,
    assign_stages,
    assign_tiers,
    degree_counts,
    five_degrees,
    mark_over_budget,
    tier_cuts_from_counts,
)
from retain.timeline import UNIT_DAYS, cutoff_end, day, horizon_days
from retain.value_scores import value_scores

__all__ = [
    "NEXT_PURCHASE_WINDOW_DAYS",
    "check_finite",
    "OUTPUT_COLUMNS",
    "RISK_STAGES",
    "ScoringModels",
    "count_by",
    "known_prospects",
    "last_purchase_gap_days",
    "model_features",
    "next_purchase_columns",
    "score_customers",
]

OUTPUT_COLUMNS: tuple[str, ...] = (
    CUSTOMER_ID,
    "as_of",
    "frequency",
    "recency_days",
    "tenure_days",
    "monetary_value",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "rfm_class",
    "p_alive",
    "expected_purchases",
    "expected_avg_value",
    "clv",
    "expected_next_purchase_date",
    "p_purchase_30d",
    "churn_probability",
    "lifecycle_stage",
    "value_tier",
    "retention_action",
    "action_channel",
    "action_offer",
    "action_cost",
    "action_save_rate",
    "expected_value_saved",
    "action_priority",
    "treatment_group",
    "contact",
    *REASON_COLUMNS,
    "stage_reason",
    "clv_model_version",
    "churn_model_version",
    "lifecycle_phase",
    "five_f",
    *FIVE_DEGREES,
)
"""Columns of the scores table, in order (``customer_id`` is a column, not the index)."""

VALUE_COLUMNS: tuple[str, ...] = (
    "clv_btyd",
    "clv_ml",
    "clv_method",
    "value_model_version",
    *VALUE_REASON_COLUMNS,
)
"""Columns added after :data:`OUTPUT_COLUMNS` when a value model is applied (``clv.method``
``ml`` or ``auto``): both CLVs, the one ``clv`` holds, and why the value model says so."""


def output_columns(models: ScoringModels) -> tuple[str, ...]:
    """The scores table's columns for these models: :data:`OUTPUT_COLUMNS`, then
    :data:`VALUE_COLUMNS` when a value model is applied."""
    return OUTPUT_COLUMNS + (VALUE_COLUMNS if models.value is not None else ())


# The stages whose lifecycle phase is retention (at_risk, dormant, lost, reactivated): their
# actions are about keeping or winning back the customer, so their reasons list what raises the
# risk first. Derived from the policy's phase table so a new retention stage joins by itself.
RISK_STAGES: frozenset[str] = frozenset(
    stage for stage, phase in STAGE_PHASE.items() if phase.startswith("retention")
)
"""Lifecycle stages whose reasons list the risk-raising factors first."""

NEXT_PURCHASE_WINDOW_DAYS = 30
"""Window of ``p_purchase_30d``, in days after the as-of date."""


@dataclass
class ScoringModels:
    """The models a scoring run applies: a CLV model and a churn model, with their versions.

    The churn model carries everything needed to rebuild its inputs exactly as in training
    (feature list, horizon, the BTYD model behind its purchase-model features, the feature
    windows); the properties below read them from it, so scoring cannot drift from training.

    Attributes
    ----------
    clv : retain.clv.ClvModel
        Fitted CLV model (purchase + spend).
    churn : retain.churn.ChurnModel
        The calibrated churn model.
    clv_version, churn_version : str
        Registry versions, copied into every row.
    value : retain.clv.ml.ValueModel or None
        The machine-learned value model (``clv.method`` ``ml`` or ``auto``), else None.
    value_version : str
        Its registry version.
    clv_method : {"btyd", "ml", "auto"}
        ``clv.method`` the models were loaded for (recorded in the manifest).
    chosen_method : {"btyd", "ml"}
        Which CLV the ``clv`` column (and the value tiers) hold. Decided once, when the models
        are loaded (:func:`retain.tracking.load_scoring_models`: ``auto`` by the value model's
        recorded test captures, :func:`retain.clv.value_fit.choose_method`), so that no part
        and no Spark task decides it again; ``ml`` needs a value model.
    """

    clv: Any
    churn: ChurnModel
    clv_version: str = ""
    churn_version: str = ""
    shap_tables: TreeShapTables | None = field(default=None, repr=False)
    value: Any = None
    value_version: str = ""
    clv_method: str = "btyd"
    value_shap_tables: list[TreeShapTables | None] | None = field(default=None, repr=False)
    chosen_method: str = "btyd"

    def __post_init__(self) -> None:
        if self.chosen_method not in ("btyd", "ml"):
            raise ValueError(f"chosen_method is btyd or ml, not {self.chosen_method!r}")
        if self.chosen_method == "ml" and self.value is None:
            raise ValueError("chosen_method ml needs a value model")

    def value_tables(self) -> list[TreeShapTables | None]:
        """Compiled SHAP tables of each value booster (None where unsupported)."""
        if self.value_shap_tables is None:
            tables: list[TreeShapTables | None] = []
            for booster in self.value.contribution_boosters():
                try:
                    tables.append(compile_tree_shap(booster))
                except ValueError:
                    tables.append(None)
            self.value_shap_tables = tables
        return self.value_shap_tables

    @property
    def booster(self) -> Any:
        """The churn booster (uncalibrated log-odds)."""
        return self.churn.booster

    @property
    def calibrator(self) -> dict[str, Any]:
        """Plain-data calibrator for :func:`retain.churn.calibration.apply_calibration`."""
        return self.churn.calibrator

    @property
    def feature_names(self) -> list[str]:
        """Churn model input columns in model order."""
        return self.churn.feature_names

    @property
    def horizon_days(self) -> int:
        """Churn horizon H the model was trained for."""
        return self.churn.horizon_days

    @property
    def purchase_model(self) -> str:
        """BTYD model behind the churn model's purchase-model features."""
        return self.churn.clv_feature_model

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature settings the churn model was trained with.

        Its windows, and every generic event type among its inputs (and the value model's),
        so that the features are built with exactly the columns the models read (a type absent
        today gets 0 counts).
        """
        names = list(self.feature_names)
        if self.value is not None:
            names += [c for c in self.value.feature_names if c not in names]
        return model_feature_config(FeatureConfig(**self.churn.feature_settings), names)

    @property
    def uses_purchase_features(self) -> bool:
        """Whether the churn or the value model reads the purchase-model features."""
        names = list(self.feature_names) + (
            list(self.value.feature_names) if self.value is not None else []
        )
        return any(c in names for c in CLV_FEATURES)

    def tables(self) -> TreeShapTables | None:
        """Compiled SHAP tables of the booster (built once, then reused); None if unsupported."""
        if self.shap_tables is None:
            try:
                self.shap_tables = compile_tree_shap(self.booster)
            except ValueError:
                return None
        return self.shap_tables


def last_purchase_gap_days(transactions: pd.DataFrame, as_of: dt.date | str) -> pd.Series:
    """Days between each customer's last two purchase occasions (missing with one occasion).

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions.
    as_of : date or str
        The as-of date (included).

    Returns
    -------
    Series
        ``last_gap_days`` indexed by ``customer_id``.
    """
    occ = occasion_arrays(transactions, as_of)
    ends = occ.ends
    gap = np.full(len(ends), np.nan)
    two = occ.counts >= 2
    gap[two] = (occ.day[ends[two]] - occ.day[ends[two] - 1]).astype(float)
    return pd.Series(gap, index=occ.customers, name="last_gap_days")


def known_prospects(
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    as_of: dt.date | str,
    buyers: pd.Index,
) -> pd.Index:
    """Customers known by the as-of date (events or sign-up) who have not bought yet.

    Parameters
    ----------
    events : DataFrame, optional
        Validated events (``customer_id``, ``timestamp``, ...).
    customers : DataFrame, optional
        Validated customer attributes, indexed by ``customer_id`` or with that column;
        ``signup_date`` after the as-of date means not known yet.
    as_of : date or str
        The as-of date (included).
    buyers : Index
        Customers with a purchase by the as-of date.

    Returns
    -------
    Index
        Sorted ``customer_id`` values (string).
    """
    end = np.datetime64(cutoff_end(as_of), "ns")
    known: list[np.ndarray] = []
    if events is not None and len(events):
        ts = events[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
        known.append(events[CUSTOMER_ID].to_numpy(dtype=object)[ts < end])
    if customers is not None and len(customers):
        ids = customers[CUSTOMER_ID] if CUSTOMER_ID in customers.columns else customers.index
        ids = pd.Series(np.asarray(ids, dtype=object))
        if "signup_date" in customers.columns:
            signup = customers["signup_date"].to_numpy(dtype="datetime64[ns]")
            ok = np.isnat(signup) | (signup < end)
            ids = ids[ok]
        known.append(ids.to_numpy(dtype=object))
    if not known:
        return pd.Index([], dtype="string", name=CUSTOMER_ID)
    ids = pd.Index(pd.unique(np.concatenate(known)), dtype="string", name=CUSTOMER_ID)
    return ids[~ids.isin(buyers) & ids.notna()].sort_values()


def model_features(features: pd.DataFrame, models: ScoringModels) -> pd.DataFrame:
    """The churn model's inputs: the feature table plus its purchase-model features.

    The churn model was trained on :class:`retain.churn.dataset.ChurnFeatures`, which adds the
    outputs of a BTYD model fitted on the same cutoff (``p_alive``,
    ``expected_purchases_horizon``, ``p_no_purchase_horizon``). They are added here the same
    way when the model uses them.

    Parameters
    ----------
    features : DataFrame
        :func:`retain.features.build.build_features` output for the whole population.
    models : ScoringModels
        Gives the feature list, horizon and purchase model.

    Returns
    -------
    DataFrame
        ``features`` with the purchase-model columns the churn model needs.
    """
    if not any(c in models.feature_names for c in CLV_FEATURES):
        return features
    extra = clv_features(features, models.horizon_days, models.purchase_model)
    keep = [c for c in extra.columns if c not in features.columns]
    return pd.concat([features, extra[keep]], axis=1)


def _clv_summary(features: pd.DataFrame, time_unit: str) -> pd.DataFrame:
    scale = UNIT_DAYS[time_unit]
    unit = UNIT_NAMES[time_unit]
    return pd.DataFrame(
        {
            "frequency": features["frequency"].to_numpy(dtype=float),
            f"recency_{unit}": features["recency_days"].to_numpy(dtype=float) / scale,
            f"tenure_{unit}": features["tenure_days"].to_numpy(dtype=float) / scale,
            "monetary_value": features["monetary_value"].to_numpy(dtype=float),
        },
        index=features.index,
    )


def _churn_chunk(
    inputs: pd.DataFrame, models: ScoringModels, n_threads: int | None
) -> tuple[np.ndarray, ReasonCandidates]:
    X = feature_matrix(inputs, models.feature_names)
    tables = models.tables()
    # one pass gives the SHAP values and the raw scores; the raw scores are the model's own
    # prediction (booster.predict(raw_score=True), as in training and in the pyfunc) to the
    # last bit, not the SHAP sum, which equals it only up to rounding
    contrib, raw = shap_and_raw_scores(
        models.booster,
        X,
        method="tables" if tables is not None else "lightgbm",
        tables=tables,
        n_threads=n_threads,
    )
    prob = np.asarray(apply_calibration(models.calibrator, raw), dtype=float)
    return prob, ReasonCandidates.from_contributions(contrib, len(REASON_COLUMNS))


def check_model_inputs(inputs: pd.DataFrame, models: ScoringModels, cfg: FeatureConfig) -> None:
    """Refuse a run whose inputs cannot give every column the churn model needs.

    Parameters
    ----------
    inputs : DataFrame
        The model inputs (:func:`model_features`).
    models : ScoringModels
        Gives the feature list and the churn version.
    cfg : FeatureConfig
        The feature windows of this run.

    Raises
    ------
    retain.io.DataError
        Naming the missing features and the table or column they come from.
    """
    missing = [c for c in models.feature_names if c not in inputs.columns]
    if not missing:
        return
    engagement = set(engagement_column_names(cfg.windows_days, cfg.event_types or ()))
    needs_events = [c for c in missing if c in engagement]
    needs_quantity = [c for c in missing if c == "mean_basket_size"]
    other = [c for c in missing if c not in engagement and c != "mean_basket_size"]
    parts = []
    if needs_events:
        parts.append(
            f"{len(needs_events)} engagement feature(s) ({', '.join(needs_events[:3])}"
            f"{' ...' if len(needs_events) > 3 else ''}) need the events table"
        )
    if needs_quantity:
        parts.append("mean_basket_size needs the quantity column of the transactions table")
    if other:
        parts.append(
            f"{', '.join(other[:3])}{' ...' if len(other) > 3 else ''} are not made with this "
            "config's features.windows_days"
        )
    raise DataError(
        f"churn model version {models.churn_version} was trained on inputs this run lacks: "
        f"{'; '.join(parts)}; give the same tables and feature settings as in training, or "
        "score with a model trained without them (--model-version)"
    )


def non_finite_columns(scores: pd.DataFrame) -> dict[str, int]:
    """Numeric score columns holding infinite values, or NaN where a value is required.

    ``clv``, ``expected_purchases``, ``expected_avg_value``, ``p_alive`` and
    ``churn_probability`` are required for every customer with a purchase (prospects have
    none). Every other numeric column may be NaN (an undefined value) but never infinite.

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`score_customers`.

    Returns
    -------
    dict
        Column name to the number of offending rows; empty when all values are fine.
    """
    bad: dict[str, int] = {}
    buyers = (
        scores["lifecycle_stage"].ne("prospect").to_numpy(dtype=bool)
        if "lifecycle_stage" in scores
        else np.ones(len(scores), dtype=bool)
    )
    required = {"clv", "expected_purchases", "expected_avg_value", "p_alive", "churn_probability"}
    for col in scores.columns:
        if not pd.api.types.is_numeric_dtype(scores[col].dtype) or pd.api.types.is_bool_dtype(
            scores[col].dtype
        ):
            continue
        values = scores[col].to_numpy(dtype=float, na_value=np.nan)
        wrong = np.isinf(values)
        if col in required:
            wrong |= np.isnan(values) & buyers
        if wrong.any():
            bad[col] = int(wrong.sum())
    return bad


def check_finite(scores: pd.DataFrame) -> None:
    """Refuse scores holding infinite or missing values where none may be.

    Parameters
    ----------
    scores : DataFrame
        Scores (:func:`score_customers`, or a part of them).

    Raises
    ------
    retain.io.DataError
        Naming the columns and their number of bad rows.
    """
    bad = non_finite_columns(scores)
    if bad:
        listed = ", ".join(f"{col} ({n:,} rows)" for col, n in bad.items())
        raise DataError(
            f"scores hold infinite or missing values in {listed}; nothing was written. Check "
            "the input amounts (data.max_amount) and the models' parameters"
        )


def _churn_in_chunks(
    inputs: pd.DataFrame,
    models: ScoringModels,
    chunk_size: int,
    n_threads: int | None,
    note: Callable[[str], None],
) -> tuple[np.ndarray, ReasonCandidates]:
    """Churn probability and reason candidates of every customer, a chunk at a time."""
    n = len(inputs)
    prob = np.empty(n, dtype=float)
    parts: list[ReasonCandidates] = []
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        note(f"churn and reasons: customers {start + 1:,}-{stop:,} of {n:,}")
        prob[start:stop], cands = _churn_chunk(inputs.iloc[start:stop], models, n_threads)
        parts.append(cands)
    return prob, ReasonCandidates.concat(parts, len(REASON_COLUMNS))


def _reasons_after_policy(
    inputs: pd.DataFrame,
    candidates: ReasonCandidates,
    stage: pd.Series,
    models: ScoringModels,
    chunk_size: int,
) -> pd.DataFrame:
    """Reason texts of every buyer, risk first for the stages of :data:`RISK_STAGES`.

    ``stage`` is indexed like ``inputs``; the texts are written ``chunk_size`` rows at a time.
    """
    risk = stage.isin(RISK_STAGES).to_numpy(dtype=bool)
    n = len(inputs)
    parts: list[pd.DataFrame] = []
    for start in range(0, n, chunk_size):
        rows = slice(start, min(n, start + chunk_size))
        index, value, protective = candidates.take(rows).choose(risk[rows])
        parts.append(
            render_reasons(index, value, inputs.iloc[rows], models.feature_names, protective)
        )
    if not parts:
        return pd.DataFrame(
            {c: pd.array([], dtype="string") for c in REASON_COLUMNS}, index=inputs.index
        )
    return pd.concat(parts)


def next_purchase_columns(
    clv_model: Any, summary: pd.DataFrame, predicted: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """``expected_next_purchase_date`` and ``p_purchase_30d`` from the CLV model.

    Parameters
    ----------
    clv_model : retain.clv.ClvModel
        The fitted CLV model.
    summary : DataFrame
        The RFM summary in the model's time unit (as given to its ``predict``).
    predicted : DataFrame
        ``clv_model.predict(summary)`` (gives ``expected_next_purchase_days``).
    as_of : Timestamp
        The as-of day.

    Returns
    -------
    DataFrame
        Indexed like ``summary``: ``expected_next_purchase_date`` (as-of date plus the
        expected gap of an alive customer, rounded up to whole days; NaT when undefined) and
        ``p_purchase_30d`` (P(at least one purchase in the next 30 days), NaN when undefined).
    """
    days = predicted["expected_next_purchase_days"].to_numpy(dtype=float)
    ok = np.isfinite(days) & (days >= 0)
    whole = np.where(ok, np.ceil(np.where(ok, days, 0.0)), np.nan)
    date = pd.Timestamp(as_of) + pd.to_timedelta(whole, unit="D")
    t = NEXT_PURCHASE_WINDOW_DAYS / UNIT_DAYS[clv_model.time_unit]
    p_none = np.asarray(clv_model.probability_no_purchase(t, summary), dtype=float)
    p_buy = np.clip(1.0 - p_none, 0.0, 1.0)
    p_buy[~np.isfinite(p_none)] = np.nan
    return pd.DataFrame(
        {"expected_next_purchase_date": date, "p_purchase_30d": p_buy}, index=summary.index
    )


def _policy_inputs(
    feats: pd.DataFrame,
    clv: pd.DataFrame,
    prob: np.ndarray,
    gaps: pd.Series,
    policy: PolicyConfig,
) -> pd.DataFrame:
    """The per-customer table the policy reads: RFM, CLV, churn, five-degree sources."""
    base = pd.DataFrame(index=feats.index)
    for col in ("frequency", "recency_days", "tenure_days", "monetary_value"):
        base[col] = feats[col].to_numpy(dtype=float)
    for col in ("r_score", "f_score", "m_score"):
        base[col] = pd.array(feats[col].to_numpy(), dtype="Int64")
    for col in ("rfm_segment", "rfm_class"):
        base[col] = pd.array(feats[col].astype(object).to_numpy(), dtype="string")
    for col in ("p_alive", "expected_purchases", "expected_avg_value", "clv"):
        base[col] = clv[col].to_numpy(dtype=float)
    base["expected_next_purchase_date"] = clv["expected_next_purchase_date"].to_numpy()
    base["p_purchase_30d"] = clv["p_purchase_30d"].to_numpy(dtype=float)
    base["churn_probability"] = prob
    base["last_gap_days"] = gaps.to_numpy(dtype=float)
    degree_sources = {c for cols in policy.five_degrees.values() for c in cols}
    for col in sorted(degree_sources - set(base.columns)):
        if col in feats.columns:
            base[col] = pd.to_numeric(feats[col], errors="coerce").to_numpy(dtype=float)
    return base


@dataclass(frozen=True)
class PartBase:
    """One part of the population after the per-customer feature step (:func:`part_base`).

    Attributes
    ----------
    base : DataFrame
        :func:`retain.features.build.base_features` of the part's buyers plus
        ``last_gap_days``, indexed by ``customer_id`` (sorted).
    prospects : Index
        The part's prospects (:func:`known_prospects`).
    """

    base: pd.DataFrame
    prospects: pd.Index


@dataclass(frozen=True)
class PopulationStats:
    """What the whole population decides for every part: the broadcast values.

    Attributes
    ----------
    rfm_cuts : dict
        RFM quintile cut points (:func:`retain.features.segments.rfm_cuts`).
    feature_model : retain.clv.ClvModel or None
        The purchase model behind the churn features, fitted on the population's counted
        RFM triples (None when the churn model does not use those features).
    """

    rfm_cuts: dict[str, tuple[float, ...]]
    feature_model: Any = None


def part_base(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    models: ScoringModels | FeatureConfig,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> PartBase:
    """The per-customer features of one part of the population (every customer whole).

    Parameters
    ----------
    transactions, events, customers : DataFrame
        The validated rows of the part's customers.
    as_of : Timestamp
        The scoring day.
    models : ScoringModels or FeatureConfig
        Gives the feature settings the churn model was trained with (or those settings,
        :attr:`ScoringModels.feature_config`).

    Returns
    -------
    PartBase
    """
    # the churn model's own windows, never the run config's
    settings = models if isinstance(models, FeatureConfig) else models.feature_config
    base = base_features(transactions, as_of, events, settings)
    check_point_in_time(base, as_of)
    gaps = last_purchase_gap_days(transactions, as_of).reindex(base.index)
    base = base.assign(last_gap_days=gaps.to_numpy(dtype=float))
    return PartBase(base, known_prospects(events, customers, as_of, base.index))


def population_stats(
    parts_counts: Sequence[dict[str, tuple[np.ndarray, np.ndarray]]],
    parts_triples: Sequence[pd.DataFrame],
    models: ScoringModels,
) -> PopulationStats:
    """The broadcast values from the parts' RFM value counts and counted RFM triples.

    Parameters
    ----------
    parts_counts : sequence of dict
        :func:`retain.features.build.rfm_score_counts` of each part.
    parts_triples : sequence of DataFrame
        :func:`retain.clv.cutoff_features.rfm_triples` of each part.
    models : ScoringModels
        Gives the churn model's features and purchase model.

    Returns
    -------
    PopulationStats
    """
    counts = {
        name: merge_value_counts([part[name] for part in parts_counts])
        for name in RFM_SCORE_SOURCES
    }
    feature_model = None
    if models.uses_purchase_features:
        triples = pd.concat(list(parts_triples), ignore_index=True)
        feature_model = fit_feature_model(triples, models.purchase_model)
    return PopulationStats(rfm_cuts(counts), feature_model)


def part_scores(
    part: PartBase,
    stats: PopulationStats,
    models: ScoringModels,
    policy: PolicyConfig,
    as_of: pd.Timestamp,
    *,
    segment_rules: SegmentRules | None = None,
    chunk_size: int = 250_000,
    n_threads: int | None = None,
    clock: dict[str, float] | None = None,
    note: Callable[[str], None] = lambda _m: None,
    drift: list[DriftCounts] | None = None,
) -> pd.DataFrame:
    """Everything a part's customers get from their own rows and the broadcast values.

    RFM scores and segments, CLV, next purchase, churn probability, lifecycle stage and the
    reason texts (the stage decides their order); prospects get their rows here too.
    Given a ``drift`` list and a churn model with a reference profile, the part's counts in
    the profile's bins (:func:`retain.drift.part_counts` of the buyers' model inputs and churn
    probabilities) are appended to it.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted): the policy inputs, the stage columns of
        :func:`retain.policy.assign_stages` and :data:`retain.explain.REASON_COLUMNS`; with a
        value model also ``clv_btyd``, ``clv_ml``, ``clv_method`` and the value reasons
        (:func:`retain.value_scores.value_scores`), ``clv`` then holding the chosen CLV.
    """
    clock = clock if clock is not None else {}
    t0 = time.perf_counter()
    feats = add_rfm(part.base.drop(columns=["last_gap_days"]), stats.rfm_cuts, segment_rules)
    inputs = feats
    if stats.feature_model is not None and any(c in models.feature_names for c in CLV_FEATURES):
        extra = feature_columns(stats.feature_model, feats, models.horizon_days)
        inputs = pd.concat([feats, extra[[c for c in extra if c not in feats]]], axis=1)
    check_model_inputs(inputs, models, models.feature_config)
    clock["features"] = clock.get("features", 0.0) + time.perf_counter() - t0

    t0 = time.perf_counter()
    summary = _clv_summary(feats, models.clv.time_unit)
    clv = models.clv.predict(summary)
    clv = pd.concat([clv, next_purchase_columns(models.clv, summary, clv, as_of)], axis=1)
    value = None
    if models.value is not None:
        value = value_scores(feats, stats.feature_model, models, chunk_size, n_threads)
        value.insert(0, "clv_btyd", clv["clv"].to_numpy(dtype=float))
        if models.chosen_method == "ml":
            clv["clv"] = value["clv_ml"].to_numpy(dtype=float)
    clock["clv"] = clock.get("clv", 0.0) + time.perf_counter() - t0

    t0 = time.perf_counter()
    prob, candidates = _churn_in_chunks(inputs, models, chunk_size, n_threads, note)
    if drift is not None and models.churn.reference_profile is not None:
        drift.append(part_counts(models.churn.reference_profile, inputs, prob))
    clock["churn_and_reasons"] = clock.get("churn_and_reasons", 0.0) + time.perf_counter() - t0

    t0 = time.perf_counter()
    gaps = part.base["last_gap_days"]
    base = _policy_inputs(feats, clv, prob, gaps, policy)
    if len(part.prospects):
        base = pd.concat([base, pd.DataFrame(index=part.prospects)]).sort_index()
    base.index.name = CUSTOMER_ID
    stages = assign_stages(base, policy.stages, horizon_days(models.clv.horizon))
    clock["policy"] = clock.get("policy", 0.0) + time.perf_counter() - t0

    t0 = time.perf_counter()
    stage = stages["lifecycle_stage"].reindex(inputs.index)
    reasons = _reasons_after_policy(inputs, candidates, stage, models, chunk_size)
    out = pd.concat([base, stages], axis=1)
    for col in REASON_COLUMNS:
        out[col] = reasons[col].reindex(out.index).astype("string")
    if value is not None:
        for col in value.columns:
            out[col] = value[col].reindex(out.index)
        out["clv_method"] = pd.array([models.chosen_method] * len(out), dtype="string")
    clock["churn_and_reasons"] += time.perf_counter() - t0
    return out


def part_actions(
    table: pd.DataFrame, tier_cuts: dict[str, float], policy: PolicyConfig
) -> pd.DataFrame:
    """Value tier and (before budgets) retention action of a part's customers.

    Parameters
    ----------
    table : DataFrame
        :func:`part_scores` output.
    tier_cuts : dict
        The population's cut points (:func:`retain.policy.tier_cuts_from_counts`).
    policy : PolicyConfig
        The policy.

    Returns
    -------
    DataFrame
        ``table`` with ``value_tier`` and the columns of :func:`retain.policy.assign_actions`.
    """
    tiers = assign_tiers(table["clv"], tier_cuts)
    actions = assign_actions(
        table["lifecycle_stage"], tiers, table["churn_probability"], table["clv"], policy
    )
    return pd.concat([table, tiers, actions], axis=1)


def part_budget(table: pd.DataFrame, over_budget: np.ndarray, priority: pd.Series) -> pd.DataFrame:
    """A part's actions after the population's budgets and priorities.

    Parameters
    ----------
    table : DataFrame
        :func:`part_actions` output.
    over_budget : ndarray of bool
        Per row, whether the budget ran out before the customer (:class:`retain.policy.BudgetRun`).
    priority : Series
        ``action_priority`` per row (nullable Int64).

    Returns
    -------
    DataFrame
        ``table`` with the over-budget rows marked and ``action_priority``.
    """
    out = mark_over_budget(table.copy(), np.asarray(over_budget, dtype=bool))
    out["action_priority"] = pd.array(priority, dtype="Int64")
    return out.rename(columns={"save_rate": "action_save_rate"})


def part_output(
    table: pd.DataFrame,
    degree_stats: dict[str, tuple[np.ndarray, np.ndarray]],
    models: ScoringModels,
    policy: PolicyConfig,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """A part's rows of the scores table (:data:`OUTPUT_COLUMNS`, RangeIndex).

    The five degrees and the treatment and control groups (:func:`retain.control.control_groups`:
    a per-customer hash, so the same for any partitioning) are added here.

    Parameters
    ----------
    table : DataFrame
        :func:`part_budget` output.
    degree_stats : dict
        The population's :func:`retain.policy.degree_counts`.
    models : ScoringModels
        Gives the versions.
    policy : PolicyConfig
        The five degrees' sources.
    as_of : Timestamp
        The scoring day.
    """
    degrees = five_degrees(table, policy, degree_stats)
    out = pd.concat([table, degrees, control_groups(table, policy, as_of)], axis=1)
    out["lifecycle_phase"] = out["lifecycle_phase"].astype("string")
    out["as_of"] = as_of
    out["clv_model_version"] = pd.array([str(models.clv_version)] * len(out), dtype="string")
    out["churn_model_version"] = pd.array([str(models.churn_version)] * len(out), dtype="string")
    if models.value is not None:
        out["value_model_version"] = pd.array(
            [str(models.value_version)] * len(out), dtype="string"
        )
    out = out.reset_index()
    out[CUSTOMER_ID] = out[CUSTOMER_ID].astype("string")
    return out[list(output_columns(models))]


def score_customers(
    transactions: pd.DataFrame,
    as_of: dt.date | str,
    models: ScoringModels,
    policy: PolicyConfig,
    *,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    segment_rules: SegmentRules | None = None,
    chunk_size: int = 250_000,
    n_threads: int | None = None,
    timings: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    drift: list[DriftCounts] | None = None,
) -> pd.DataFrame:
    """Score every customer known at the as-of date.

    The population is one part here; :mod:`retain.engine` runs the same steps on many parts
    (:func:`part_base`, :func:`population_stats`, :func:`part_scores`, :func:`part_actions`,
    the budget stream, :func:`part_budget`, :func:`part_output`).

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions (rows after the as-of day are ignored).
    as_of : date or str
        The scoring date (included).
    models : ScoringModels
        CLV model, churn booster, calibrator and feature list.
    policy : PolicyConfig
        Stage rules, tiers, action table, budgets.
    events, customers : DataFrame, optional
        Validated events and customer attributes (engagement features, prospects).
    segment_rules : SegmentRules, optional
        RFM segment rules (the config's ``segments`` file); default
        :data:`retain.features.segments.DEFAULT_SEGMENT_RULES`.
    chunk_size : int
        Customers per churn/explanation chunk.
    n_threads : int, optional
        Threads for the explanations.
    timings : dict, optional
        Filled with seconds per step (``features``, ``clv``, ``churn_and_reasons``, ``policy``).
    progress : callable, optional
        Called with a short message per step.
    drift : list, optional
        Receives the population's drift counts (:func:`retain.drift.part_counts`) when the
        churn model has a reference profile.

    Returns
    -------
    DataFrame
        One row per customer, columns :data:`OUTPUT_COLUMNS` (``customer_id`` first, sorted
        by customer), with a RangeIndex.
    """
    note = progress or (lambda _m: None)
    clock = timings if timings is not None else {}
    as_of_ts = day(as_of)

    t0 = time.perf_counter()
    note("building features")
    part = part_base(transactions, as_of_ts, models, events, customers)
    stats = population_stats([rfm_score_counts(part.base)], [rfm_triples(part.base)], models)
    clock["features"] = time.perf_counter() - t0
    table = part_scores(
        part,
        stats,
        models,
        policy,
        as_of_ts,
        segment_rules=segment_rules,
        chunk_size=chunk_size,
        n_threads=n_threads,
        clock=clock,
        note=note,
        drift=drift,
    )
    t0 = time.perf_counter()
    note("applying the policy")
    clv = table["clv"].to_numpy(dtype=float)
    cuts = tier_cuts_from_counts(*value_counts(clv[~np.isnan(clv)]), policy.tiers)
    table = part_actions(table, cuts, policy)
    over, priority = budget_over_table(table, policy)
    table = part_budget(table, over, priority)
    out = part_output(table, degree_counts(table, policy), models, policy, as_of_ts)
    clock["policy"] += time.perf_counter() - t0
    return out


def budget_over_table(table: pd.DataFrame, policy: PolicyConfig) -> tuple[np.ndarray, pd.Series]:
    """Over-budget flags and priorities of a whole population held in one table.

    Parameters
    ----------
    table : DataFrame
        :func:`part_actions` output of the whole population, sorted by customer.
    policy : PolicyConfig
        The budgets.

    Returns
    -------
    (ndarray of bool, Series)
        Per row: over budget; ``action_priority`` (nullable Int64).
    """
    channel = table["action_channel"].astype(str).to_numpy()
    ev = table["expected_value_saved"].to_numpy(dtype=float)
    idx = np.flatnonzero(channel != "none")
    key = np.where(np.isnan(ev[idx]), -np.inf, ev[idx])
    order = idx[np.argsort(-key, kind="stable")]
    over_sorted, prio_sorted = BudgetRun(policy).decide(
        channel[order], table["action_cost"].to_numpy(dtype=float)[order], ev[order]
    )
    over = np.zeros(len(table), dtype=bool)
    over[order] = over_sorted
    prio = np.zeros(len(table), dtype=np.int64)
    prio[order] = prio_sorted
    priority = pd.array(prio, dtype="Int64")
    priority[prio == 0] = pd.NA
    return over, pd.Series(priority, index=table.index, name="action_priority")


def count_by(scores: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, int]]:
    """Row counts per value of each column (for manifests and logging).

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`score_customers`.
    columns : sequence of str
        Columns to count.

    Returns
    -------
    dict
        ``{column: {value: count}}`` with values as strings; missing values (e.g. the
        ``treatment_group`` of a customer without a contact action) count under ``none``.
    """
    return {
        col: {
            str(k): int(v)
            for k, v in scores[col].astype("string").fillna("none").value_counts().items()
        }
        for col in columns
    }
