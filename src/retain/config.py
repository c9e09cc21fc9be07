"""Typed, validated configuration for every YAML file in ``configs/``.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored
setting. :func:`load_config` and :func:`load_policy` turn any validation problem into one
:class:`ConfigError` that names the file and the offending key.

Relative paths inside a run config (data files, output folders) resolve against the working
directory, as command-line tools do; the ``policy`` file resolves against the config file's
own folder, because the two travel together.

Why one module past 600 lines: it is the one concept "a validated config file", and every
section's model sits next to the loader and the error formatting they share; splitting per YAML
file would spread the common rules (unknown keys, dates in range, one error line) over modules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from retain.contracts import (
    CUSTOMERS,
    EVENT_ROLES,
    EVENTS,
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    NS_RANGE,
    NULL_VALUES,
    TRANSACTIONS,
    event_role_renames,
)
from retain.expressions import derivable, is_expression, parse

TimeUnit = Literal["D", "W"]
M = TypeVar("M", bound="BaseModel")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid."""


FIRST_DAY = dt.date.fromisoformat(NS_RANGE[0])
LAST_DAY = dt.date.fromisoformat(NS_RANGE[1])


def check_day_range(day: dt.date) -> dt.date:
    """A day inside the range timestamps are kept in (:data:`retain.contracts.NS_RANGE`).

    Parameters
    ----------
    day : date
        A configured or command-line date.

    Returns
    -------
    date
        ``day`` itself.

    Raises
    ------
    ValueError
        When ``day`` lies outside the range.
    """
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(
            f"{day.isoformat()} is outside the supported days {NS_RANGE[0]} to {NS_RANGE[1]}"
        )
    return day


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable, dates in range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _days_in_range(cls, value: Any) -> Any:
        days = value if isinstance(value, list | tuple) else [value]
        for day in days:
            if isinstance(day, dt.date):
                check_day_range(day if not isinstance(day, dt.datetime) else day.date())
        return value


# --------------------------------------------------------------------------- data


class CsvOptions(StrictModel):
    """The dialect of a CSV file, stated rather than guessed.

    DuckDB's sniffer guesses the dialect from the first lines of a file, so a file whose first
    quoted field comes late is refused or read with the quotes inside the values. retain never
    sniffs: the defaults are RFC 4180 (``,`` between fields, ``"`` around fields, a doubled
    ``"`` inside a quoted field, a header row, UTF-8 with or without a byte-order mark).
    ``escape`` is the character before a quote inside a quoted field; by default the quote
    itself (a doubled quote, whatever ``quote`` is), ``\\`` for ``\\"``; ``quote: ""`` turns
    quoting off (``escape`` is then unused).
    ``decimal`` is the decimal separator of the numeric columns (``amount``, ``quantity``,
    ``value``); use ``","`` for ``12,50``. ``encoding`` is one DuckDB reads without an
    extension: ``utf-8``, ``utf-16`` or ``latin-1``.
    """

    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', max_length=1)
    escape: str | None = Field(
        None, max_length=1, description="Default: the quote character (a doubled quote)."
    )
    encoding: Literal["utf-8", "utf-16", "latin-1"] = "utf-8"
    decimal: Literal[".", ","] = "."

    @model_validator(mode="after")
    def _distinct(self) -> CsvOptions:
        if self.escape is None:  # RFC 4180: a quote inside a quoted field is doubled
            object.__setattr__(self, "escape", self.quote)
        if any(c and c in "\r\n" for c in (self.delimiter, self.quote, self.escape)):
            raise ValueError("delimiter, quote and escape may not be line breaks")
        if self.quote and self.delimiter == self.quote:
            raise ValueError(f"delimiter and quote must differ (both {self.delimiter!r})")
        return self


class TableSource(StrictModel):
    """Where one input table lives and how its columns map to the contract.

    ``columns`` maps contract names (``customer_id``, ``timestamp``, ...) to the names used
    in the source file; contract names that are absent are taken as they are. ``csv`` states
    the dialect of a CSV file (see :class:`CsvOptions`); it is refused for a Parquet file.

    A numeric contract column (``amount``, ``quantity``; events ``value``) may instead be
    derived: ``amount: Quantity * UnitPrice`` (see :mod:`retain.expressions`: column names,
    numbers, ``+ - * /``, unary minus and parentheses; ``"Unit Price"`` quotes a name with
    spaces). The rule: a value holding none of ``+ - * / ( ) "`` is a column name; a value
    holding one is an expression, parsed when the config is loaded, unless the file has a
    column of exactly that name (``Unit-Price`` stays a column if the file has one; a name
    that is no valid expression, such as ``Price (EUR)``, is quoted: ``'"Price (EUR)"'``). Ids,
    timestamps and text columns are never derived: their value is always a column name.
    """

    path: Path
    format: Literal["csv", "parquet"] | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    timestamp_format: str | None = None
    csv: CsvOptions = CsvOptions()

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "delimiter" in data:
            raise ValueError("'delimiter' moved to 'csv: {delimiter: ...}'")
        return data

    @model_validator(mode="after")
    def _csv_for_csv(self) -> TableSource:
        if "csv" in self.model_fields_set and self.resolved_format != "csv":
            raise ValueError(f"csv options given for a {self.resolved_format} file: {self.path}")
        return self

    @property
    def resolved_format(self) -> str:
        """The file format, from ``format`` or else the file suffix."""
        if self.format is not None:
            return self.format
        suffix = self.path.suffix.lower()
        if suffix in {".parquet", ".pq"}:
            return "parquet"
        return "csv"


class EventsSource(TableSource):
    """Where the events table lives, plus the names the source gives the event roles.

    ``roles`` maps a role (``session``, ``email_sent``, ``email_open``, ``email_click``,
    ``support_ticket``, ``survey``, ``referral``; :data:`retain.contracts.EVENT_ROLES`) to the
    source's type name, or a list of names: ``roles: {session: web_session, support_ticket:
    ticket_closed}``. A role not listed is its own name. Every other type is kept as its own
    type (see :func:`retain.contracts.event_role_renames`).
    """

    roles: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        event_role_renames(value)
        return value


class SyntheticConfig(StrictModel):
    """Parameters of the synthetic generator used by ``source: synthetic``."""

    n_customers: int = Field(5000, gt=0)
    start: dt.date = dt.date(2022, 1, 1)
    end: dt.date = dt.date(2024, 12, 31)
    seed: int = 0
    with_events: bool = True

    @model_validator(mode="after")
    def _window(self) -> SyntheticConfig:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class DataConfig(StrictModel):
    """The input data: an embedded data set or files, how to treat returns, and the limits
    that make a value unusable (see :data:`retain.contracts.REJECT_REASONS`)."""

    source: Literal["cdnow_master", "cdnow_sample", "synthetic", "files"] = "cdnow_master"
    transactions: TableSource | None = None
    events: EventsSource | None = None
    customers: TableSource | None = None
    returns: Literal["drop", "net", "net_earlier"] = Field(
        "drop",
        description="Negative amounts: 'drop' rejects them; 'net' nets each into its order "
        "(same customer and order_id); 'net_earlier' also nets a return without an order of "
        "its own (cancellations with their own invoice number) against the customer's earlier "
        "purchases of the same item_id, else their latest earlier order",
    )
    null_values: tuple[str, ...] = Field(
        NULL_VALUES,
        description="Text read as missing in every text column (exact match after strip)",
    )
    max_amount: float = Field(
        MAX_AMOUNT, gt=0, allow_inf_nan=False, description="Largest |amount| and |quantity|"
    )
    max_id_length: int = Field(MAX_ID_LENGTH, gt=0, description="Longest customer_id accepted")
    max_rejected_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of a table's rows rejected above which every step reading it warns",
    )
    id_normalisation: Literal["none", "integer_text"] = Field(
        "none",
        description="How customer ids are normalised before use: 'none' keeps them as written; "
        "'integer_text' writes an id that is an exact integer in float form (17850.0, "
        "1.785e4) as the integer (17850), in every table",
    )
    synthetic: SyntheticConfig | None = None
    observed_until: dt.date | None = Field(
        None,
        description="Last day covered by the data. Label windows may not run past it. "
        "Required for files; embedded data sets know their own.",
    )

    @model_validator(mode="after")
    def _source_fields(self) -> DataConfig:
        if self.source == "files" and self.transactions is None:
            raise ValueError("source 'files' needs a 'transactions' table")
        if self.source == "files" and self.observed_until is None:
            raise ValueError("source 'files' needs 'observed_until' (the last day the data covers)")
        if self.source == "synthetic" and self.synthetic is None:
            raise ValueError("source 'synthetic' needs a 'synthetic' section")
        self._check_expressions()
        return self

    def _check_expressions(self) -> None:
        """Parse every derived column now, so a typo is a config error naming its key."""
        contracts = {"transactions": TRANSACTIONS, "events": EVENTS, "customers": CUSTOMERS}
        for table, contract in contracts.items():
            source = getattr(self, table)
            if source is None:
                continue
            numeric = derivable(contract)
            for name, value in source.columns.items():
                if name in numeric and is_expression(value):
                    try:
                        parse(value)
                    except ValueError as exc:
                        raise ValueError(
                            f"data.{table}.columns.{name}: cannot read {value!r} as an "
                            f"expression: {exc}. If it is one column's name, quote it: "
                            f"'\"{value}\"'"
                        ) from None

    def dataset_id(self) -> str:
        """What data set the models of this config learn from, as a short readable label.

        The embedded sources name themselves (``cdnow_master``); synthetic data adds its
        generator settings; files add the configured paths (as written, not their content, so
        that new data arriving in the same files keeps the same data set).

        Returns
        -------
        str
            E.g. ``cdnow_master``, ``synthetic:<hash>`` or ``files:<hash>``.
        """
        if self.source in ("cdnow_master", "cdnow_sample"):
            return self.source
        if self.source == "synthetic":
            payload: Any = self.synthetic.model_dump(mode="json") if self.synthetic else {}
        else:
            payload = {
                name: str(table.path)
                for name, table in (
                    ("transactions", self.transactions),
                    ("events", self.events),
                    ("customers", self.customers),
                )
                if table is not None
            }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.source}:{digest}"


# ----------------------------------------------------------------------- features


class FeatureConfig(StrictModel):
    """Point-in-time feature settings.

    ``event_types`` fixes the non-role event types that get generic per-type features
    (``events_<type>_<w>d``, ``days_since_<type>``; see :mod:`retain.features.engagement`);
    without it the ``event_types_top_n`` most frequent non-role types before each cutoff are
    taken (0: none).
    """

    windows_days: tuple[int, ...] = (30, 90, 180, 365)
    trend_window_days: int = Field(90, gt=0)
    event_types: tuple[str, ...] | None = Field(
        None, description="Event types with generic features; default: the top n by count"
    )
    event_types_top_n: int = Field(5, ge=0, description="Generic event types without a list")

    @model_validator(mode="after")
    def _windows(self) -> FeatureConfig:
        if not self.windows_days or any(w <= 0 for w in self.windows_days):
            raise ValueError("windows_days must be a non-empty list of positive day counts")
        for name in self.event_types or ():
            key = name.strip().lower()
            if not key:
                raise ValueError("event_types: empty type name")
            if key in EVENT_ROLES:
                raise ValueError(
                    f"event_types: {key!r} is an event role, whose features are always made; "
                    "list only other types"
                )
        return self


class ScoreBox(StrictModel):
    """A box of R and F scores (inclusive ranges within 1..5); used by the named segments."""

    r: tuple[int, int] = (1, 5)
    f: tuple[int, int] = (1, 5)

    @model_validator(mode="after")
    def _ranges(self) -> ScoreBox:
        for key in ("r", "f", "m"):
            if key not in type(self).model_fields:
                continue
            lo, hi = getattr(self, key)
            if not 1 <= lo <= hi <= 5:
                raise ValueError(f"{key}: range [{lo}, {hi}] must satisfy 1 <= low <= high <= 5")
        return self


class ClassRule(ScoreBox):
    """A coarse RFM class: a name and a box of R, F and M scores (first match wins)."""

    name: str
    m: tuple[int, int] = (1, 5)


class SegmentRules(StrictModel):
    """RFM segment rules (``configs/segments.yaml``); see :mod:`retain.features.segments`.

    ``segments`` maps each named segment to boxes of (R, F) scores; together the boxes must
    cover every one of the 25 (R, F) score pairs exactly once. ``classes`` are tried in order on
    (R, F, M); a customer matching none gets ``default_class``.
    """

    segments: dict[str, tuple[ScoreBox, ...]]
    classes: tuple[ClassRule, ...]
    default_class: str = "regular"

    @model_validator(mode="after")
    def _coverage(self) -> SegmentRules:
        owners: dict[tuple[int, int], list[str]] = {
            (r, f): [] for r in range(1, 6) for f in range(1, 6)
        }
        for name, boxes in self.segments.items():
            if not boxes:
                raise ValueError(f"segment {name!r} has no score boxes")
            for box in boxes:
                for r in range(box.r[0], box.r[1] + 1):
                    for f in range(box.f[0], box.f[1] + 1):
                        owners[(r, f)].append(name)
        missing = [k for k, v in owners.items() if not v]
        double = {k: v for k, v in owners.items() if len(v) > 1}
        if missing:
            pairs = ", ".join(f"R{r}F{f}" for r, f in missing)
            raise ValueError(f"segments must cover every (R, F) score pair; missing: {pairs}")
        if double:
            pairs = ", ".join(f"R{r}F{f} ({' & '.join(v)})" for (r, f), v in double.items())
            raise ValueError(f"each (R, F) score pair must belong to one segment; twice: {pairs}")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names) or self.default_class in names:
            raise ValueError("class names (and default_class) must be distinct")
        return self


def load_segments(path: str | Path) -> SegmentRules:
    """Load and validate RFM segment rules such as ``configs/segments.yaml``.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    SegmentRules
        The validated rules.

    Raises
    ------
    ConfigError
        When the file is missing or invalid: unknown keys, a score range outside 1..5, or
        segments that leave an (R, F) pair uncovered or cover it twice.
    """
    path = Path(path)
    return validate_model(SegmentRules, read_yaml(path), path)


# ---------------------------------------------------------------------------- clv


class ClvMlConfig(StrictModel):
    """The machine-learned value model (``retain train-value``, :mod:`retain.clv.ml`).

    Snapshots as the churn model's (stacked cutoffs, the same split rules and leakage guard),
    labelled with each customer's discounted spend over ``clv.horizon_months`` after the
    cutoff. Cutoffs left ``auto`` follow :func:`retain.clv.value_fit.value_split`.
    """

    train_cutoffs: tuple[dt.date, ...] | Literal["auto"] = "auto"
    validation_cutoff: dt.date | Literal["auto"] = "auto"
    test_cutoff: dt.date | Literal["auto"] = "auto"
    objective: Literal["auto", "tweedie", "hurdle"] = Field(
        "auto",
        description="tweedie: one booster on the spend; hurdle: P(any purchase) x E[spend | "
        "purchase]; auto: both, the better validation top-20% capture kept",
    )
    lightgbm: dict[str, Any] = Field(default_factory=dict)
    num_boost_round: int = Field(1000, gt=0)
    early_stopping_rounds: int = Field(30, gt=0)
    leakage_check_customers: int = Field(
        1000, ge=0, description="Customers re-featurised per cutoff by the leakage guard (0: off)"
    )


class ClvConfig(StrictModel):
    """Probabilistic CLV model settings and the calibration/holdout backtest window.

    ``method`` chooses the ``clv`` the scores (and the value tiers) use: ``btyd`` (BTYD +
    Gamma-Gamma), ``ml`` (the value model of ``retain train-value``) or ``auto`` (the one with
    the better top-20% capture on the value model's test cutoff, as recorded with it).
    """

    method: Literal["btyd", "ml", "auto"] = "btyd"
    ml: ClvMlConfig = ClvMlConfig()

    purchase_model: Literal["auto", "bgnbd", "pareto_nbd", "mbgnbd"] = "auto"
    spend_model: Literal["gamma_gamma"] = "gamma_gamma"
    penalizer: float = Field(0.0, ge=0.0)
    """L2 penalty of both sub-models unless set apart below."""
    purchase_penalizer: float | None = Field(None, ge=0.0)
    """Penalty of the purchase model alone (None = ``penalizer``)."""
    spend_penalizer: float | None = Field(None, ge=0.0)
    """Penalty of the Gamma-Gamma spend model alone (None = ``penalizer``)."""
    time_unit: TimeUnit = "W"
    calibration_end: dt.date
    holdout_end: dt.date
    discount_rate_monthly: float = Field(0.01, ge=0.0, lt=1.0)
    horizon_months: int = Field(12, gt=0)
    selection_metric: Literal["mae", "rmse", "total_abs_error"] = "mae"

    @model_validator(mode="after")
    def _window(self) -> ClvConfig:
        if self.holdout_end <= self.calibration_end:
            raise ValueError(
                f"holdout_end ({self.holdout_end}) must be after calibration_end "
                f"({self.calibration_end})"
            )
        return self


# -------------------------------------------------------------------------- churn


class OptunaConfig(StrictModel):
    """Optional hyperparameter search budget (0 trials disables the search)."""

    n_trials: int = Field(0, ge=0)
    timeout_seconds: float | None = Field(None, gt=0)


class ChurnConfig(StrictModel):
    """Churn model settings: snapshot cutoffs, horizon and LightGBM parameters.

    ``train_cutoffs``, ``validation_cutoff`` and ``test_cutoff`` may each be ``auto``: resolved
    at run time from the data's first and last day by
    :func:`retain.churn.dataset.auto_cutoffs` (the rule ``retain init`` proposes; dates given
    explicitly are kept) and logged with the run. :attr:`has_auto_cutoffs` tells whether any
    is ``auto``.
    """

    horizon_days: int = Field(182, gt=0)
    train_cutoffs: tuple[dt.date, ...] | Literal["auto"]
    validation_cutoff: dt.date | Literal["auto"]
    test_cutoff: dt.date | Literal["auto"]
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    lightgbm: dict[str, Any] = Field(default_factory=dict)
    num_boost_round: int = Field(500, gt=0)
    early_stopping_rounds: int = Field(50, gt=0)
    optuna: OptunaConfig = OptunaConfig()
    imbalance: Literal["balanced", "none"] = Field(
        "balanced",
        description="balanced: scale_pos_weight = negatives / positives of the training rows "
        "(the calibrator restores the probability scale); none: unweighted",
    )
    clv_feature_model: Literal["bgnbd", "pareto_nbd", "mbgnbd"] = Field(
        "bgnbd", description="BTYD model fitted at every cutoff for the p_alive/... features"
    )
    baseline_models: tuple[Literal["bgnbd", "pareto_nbd", "mbgnbd"], ...] = (
        "bgnbd",
        "pareto_nbd",
        "mbgnbd",
    )
    strict_validation: bool = Field(
        False, description="Forbid the validation label window from overlapping the test window"
    )
    leakage_check_customers: int = Field(
        1000, ge=0, description="Customers re-featurised per cutoff by the leakage guard (0: off)"
    )
    max_training_rows: int | None = Field(
        None,
        gt=0,
        description="Cap on the training snapshot rows given to LightGBM: above it, a sample "
        "stratified by cutoff and label (logged); None trains on every row",
    )

    @property
    def has_auto_cutoffs(self) -> bool:
        """Whether any cutoff is ``auto`` (to be resolved from the data at run time)."""
        return "auto" in (self.train_cutoffs, self.validation_cutoff, self.test_cutoff)

    @model_validator(mode="after")
    def _cutoffs(self) -> ChurnConfig:
        train = self.train_cutoffs
        validation, test = self.validation_cutoff, self.test_cutoff
        if train != "auto":
            if not train:
                raise ValueError("train_cutoffs must list at least one date (or be 'auto')")
            if sorted(train) != list(train):
                raise ValueError("train_cutoffs must be in increasing order")
            if validation != "auto" and validation <= max(train):
                raise ValueError("validation_cutoff must be later than every training cutoff")
        if validation != "auto" and test != "auto" and test <= validation:
            raise ValueError("test_cutoff must be later than validation_cutoff")
        return self


# ------------------------------------------------------------------------ scoring


class DriftConfig(StrictModel):
    """Thresholds of the drift check at scoring time (:mod:`retain.drift`).

    ``retrain`` is driven by PSI and the churn-rate shift: on large populations every
    difference is significant, so the p-value only keeps a large PSI from a handful of
    customers from counting.
    """

    psi_warn: float = Field(0.1, gt=0.0, description="A feature's PSI that warns")
    psi_retrain: float = Field(
        0.25, gt=0.0, description="A feature's PSI that calls for retraining"
    )
    p_value: float = Field(
        0.01, gt=0.0, le=1.0, description="A PSI counts only with a binned chi-square p below this"
    )
    churn_rate_shift: float = Field(
        0.05,
        gt=0.0,
        le=1.0,
        description="Shift of the mean predicted churn rate that calls for retraining",
    )
    missing_share_shift: float = Field(
        0.1, gt=0.0, le=1.0, description="Change of a feature's missing share that warns"
    )

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.psi_retrain < self.psi_warn:
            raise ValueError(
                f"psi_retrain ({self.psi_retrain}) must not be below psi_warn ({self.psi_warn})"
            )
        return self


class ScoringConfig(StrictModel):
    """Batch scoring settings."""

    as_of: dt.date
    output_dir: Path = Path("outputs")
    write_csv: bool = False
    chunk_size: int = Field(250_000, gt=0)
    model_alias: str = "champion"
    drift: DriftConfig = DriftConfig()


# ------------------------------------------------------------------------ engines


ENGINE_SETTINGS = ("engine", "partitions", "spark")
"""Top-level keys that choose where the work runs, not what it computes (left out of the
config hash: the engines give the same results)."""


class SparkConfig(StrictModel):
    """Settings of the Spark engine (``engine: spark``)."""

    master: str = Field("local[*]", description="Spark master URL (ignored inside spark-submit)")
    app_name: str = "retain"
    conf: dict[str, str] = Field(
        default_factory=dict, description="Spark settings passed through (spark.* keys)"
    )

    @model_validator(mode="after")
    def _keys(self) -> SparkConfig:
        bad = [k for k in self.conf if not k.startswith("spark.")]
        if bad:
            raise ValueError(f"spark.conf keys must start with 'spark.': {', '.join(bad)}")
        return self


# ----------------------------------------------------------------------- tracking


class TrackingConfig(StrictModel):
    """MLflow settings. ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` override these."""

    tracking_uri: str = "sqlite:///mlruns.db"
    registry_uri: str | None = None
    experiment_name: str = "retain"
    request_timeout_seconds: float = Field(10.0, gt=0)
    model_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Prefix of the registered model names (<prefix>-clv, <prefix>-churn); "
        "default: the config's name",
    )


class PromotionConfig(StrictModel):
    """The gate that moves the ``champion`` alias to a challenger.

    Against the baselines the churn gate needs no setting: it uses the paired 95% DeLong
    interval logged by ``train_churn`` (:mod:`retain.promotion`). ``auc_tolerance`` is for the
    champion only, whose AUC comes from another test cutoff, so no paired test is possible.
    """

    auc_tolerance: float = Field(
        0.005,
        ge=0.0,
        description="How far the challenger's test AUC may be below the champion's (the "
        "champion was tested on other rows: a fixed slack, not an interval)",
    )
    clv_metric: Literal["mae", "rmse", "total_abs_error"] = "mae"
    clv_tolerance: float = Field(0.0, ge=0.0, description="Relative worsening allowed")
    value_tolerance: float = Field(
        0.005,
        ge=0.0,
        description="How far the value model's test top-20% capture may be below the "
        "champion's (other test rows: a fixed slack)",
    )


# ------------------------------------------------------------------------ report


class ReportConfig(StrictModel):
    """The analyst report and the summary tables written beside the scores."""

    currency: str = Field(
        "$",
        min_length=1,
        max_length=8,
        description="Shown with every amount: a symbol ('$', '€') goes before the number, a "
        "code ('EUR', 'USD') after it",
    )
    top_n: int = Field(
        20, gt=0, description="Customers in the report's and the CSV's list of first contacts"
    )


class EvaluationConfig(StrictModel):
    """``retain evaluate-actions``: how treated and control groups are compared."""

    min_group_size: int = Field(
        30,
        ge=2,
        description="Treated and control customers a group needs for intervals and for a "
        "proposed save rate; smaller groups get their counts only",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="Confidence level of every interval"
    )

# ------------------------------------------------------------------------ export

EXPORT_COLUMNS: tuple[str, ...] = (
    "priority",
    "customer_id",
    "retention_action",
    "action_offer",
    "reason_1",
    "due_date",
    "expected_value_saved",
    "clv",
    "churn_probability",
    "value_tier",
    "lifecycle_stage",
)
"""Columns of a campaign list (``retain export``), in order, before any renaming."""


class ExportConfig(StrictModel):
    """The campaign lists ``retain export`` writes for a CRM, one channel at a time."""

    due_days: int = Field(
        14, ge=0, le=3650, description="Days after the scoring date by which to contact"
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Column renames for the CRM import, e.g. {customer_id: Contact ID}",
    )

    @model_validator(mode="after")
    def _renames(self) -> ExportConfig:
        unknown = sorted(set(self.columns) - set(EXPORT_COLUMNS))
        if unknown:
            raise ValueError(
                f"export.columns renames unknown columns {unknown}; the columns are "
                f"{', '.join(EXPORT_COLUMNS)}"
            )
        names = [self.columns.get(c, c) for c in EXPORT_COLUMNS]
        if any(not n.strip() for n in names):
            raise ValueError("export.columns: a column name must not be empty")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"export.columns: the names {repeated} would repeat; make them unique")
        return self


# ---------------------------------------------------------------------- run config


class RunConfig(StrictModel):
    """One run of retain: data, features, models, scoring and tracking."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Names the MLflow runs, the registered models and the output folders",
    )
    seed: int = 42
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    clv: ClvConfig
    churn: ChurnConfig | None = None
    scoring: ScoringConfig | None = None
    tracking: TrackingConfig = TrackingConfig()
    promotion: PromotionConfig = PromotionConfig()
    report: ReportConfig = ReportConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    export: ExportConfig = ExportConfig()
    policy: Path = Path("policy.yaml")
    segments: Path = Path("segments.yaml")
    engine: Literal["local", "spark"] = Field(
        "local",
        description="local: DuckDB hands the inputs over by customer partition (out of core); "
        "spark: the same steps on Spark",
    )
    partitions: Annotated[int, Field(gt=0)] | Literal["auto"] = Field(
        "auto",
        description="Customer hash partitions; auto: about one per 2 million input rows",
    )
    spark: SparkConfig = SparkConfig()

    source_path: Path | None = Field(None, exclude=True)

    @property
    def segments_path(self) -> Path:
        """The RFM segment rules file, resolved against the folder of this config file."""
        if self.segments.is_absolute() or self.source_path is None:
            return self.segments
        return self.source_path.parent / self.segments

    def segment_rules(self) -> SegmentRules | None:
        """The configured RFM segment rules; None for the built-in ones.

        A ``segments`` file named in the config must exist; without the key, a
        ``segments.yaml`` beside the config is used when there is one, else the built-in rules
        (:data:`retain.features.segments.DEFAULT_SEGMENT_RULES`, the same as the shipped file).

        Returns
        -------
        SegmentRules or None

        Raises
        ------
        ConfigError
            When a named file is missing or invalid.
        """
        if "segments" not in self.model_fields_set and not self.segments_path.is_file():
            return None
        return load_segments(self.segments_path)

    @property
    def policy_path(self) -> Path:
        """The policy file, resolved against the folder of this config file."""
        if self.policy.is_absolute() or self.source_path is None:
            return self.policy
        return self.source_path.parent / self.policy

    def config_hash(self) -> str:
        """A short, stable hash of the validated config (for manifests and run tags)."""
        dumped = self.model_dump(mode="json", exclude=set(ENGINE_SETTINGS))
        payload = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------ loading


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the config reference in README.md)"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, raising :class:`ConfigError` with the file name on any problem.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    dict
        The parsed mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def validate_model(model: type[M], data: dict[str, Any], path: Path | str) -> M:
    """Validate ``data`` as ``model``, turning errors into one :class:`ConfigError`.

    Parameters
    ----------
    model : type
        The pydantic model class.
    data : dict
        Parsed YAML.
    path : Path or str
        The file name, used in the message.

    Returns
    -------
    BaseModel
        The validated model instance.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid configuration\n{_format_errors(exc)}") from exc


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load and validate a run configuration.

    Parameters
    ----------
    path : str or Path
        A YAML file such as ``configs/cdnow.yaml``.
    overrides : dict, optional
        Dotted keys to replace after reading, e.g. ``{"scoring.as_of": "1998-06-30"}``.

    Returns
    -------
    RunConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or any key is unknown or invalid.
    """
    path = Path(path)
    data = read_yaml(path)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: cannot override {dotted}: {key} is not a section")
        node[leaf] = value
    config = validate_model(RunConfig, data, path)
    return config.model_copy(update={"source_path": path})


# ------------------------------------------------------------------------- policy

STAGES: tuple[str, ...] = (
    "prospect",
    "new",
    "active",
    "growing",
    "loyal",
    "at_risk",
    "dormant",
    "lost",
    "reactivated",
)
"""Lifecycle stages, defined in DESIGN.md section 3 and decided by :mod:`retain.policy`."""

TIERS: tuple[str, ...] = ("vip", "high", "medium", "low")
"""Value tiers from predicted CLV, best first."""

CHANNELS: tuple[str, ...] = ("email", "sms", "phone", "social", "none")
"""Contact channels of a retention action (``none`` means no contact)."""

FIVE_DEGREES: tuple[str, ...] = ("satisfaction", "loyalty", "value", "engagement", "referral")
"""The five degrees of customer relationship measured where the data allows."""

Channel = Literal["email", "sms", "phone", "social", "none"]
Degree = Literal["satisfaction", "loyalty", "value", "engagement", "referral"]


class StageRules(StrictModel):
    """Thresholds of the lifecycle-stage rules (applied in the order documented in policy.py)."""

    new_customer_days: int = Field(90, ge=0, description="First purchase at most this long ago")
    lost_p_alive: float = Field(0.10, ge=0.0, le=1.0)
    lost_inactive_days: int = Field(365, gt=0)
    dormant_p_alive: float = Field(0.30, ge=0.0, le=1.0)
    dormant_gap_multiple: float = Field(3.0, gt=0.0)
    dormant_min_inactive_days: int = Field(120, gt=0)
    default_gap_days: float = Field(90.0, gt=0.0, description="Usual gap of one-time buyers")
    reactivated_min_gap_days: int = Field(180, gt=0)
    reactivated_window_days: int = Field(90, gt=0)
    at_risk_churn_probability: float = Field(0.5, ge=0.0, le=1.0)
    loyal_min_tenure_days: int = Field(365, ge=0)
    loyal_min_frequency: int = Field(4, ge=1)
    loyal_max_churn_probability: float = Field(0.3, ge=0.0, le=1.0)
    growing_value_ratio: float = Field(1.2, gt=0.0)

    @model_validator(mode="before")
    @classmethod
    def _one_clv_horizon(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value_horizon_days" in data:
            raise ValueError(
                "value_horizon_days is gone: the CLV horizon is set once, as clv.horizon_months "
                "in the run config; remove the key from the policy"
            )
        return data

    @model_validator(mode="after")
    def _order(self) -> StageRules:
        if self.lost_p_alive > self.dormant_p_alive:
            raise ValueError("lost_p_alive must not exceed dormant_p_alive")
        if self.lost_inactive_days < self.dormant_min_inactive_days:
            raise ValueError("lost_inactive_days must be at least dormant_min_inactive_days")
        if self.loyal_max_churn_probability > self.at_risk_churn_probability:
            raise ValueError(
                "loyal_max_churn_probability must not exceed at_risk_churn_probability"
            )
        return self


class TierRules(StrictModel):
    """Value-tier cut-points: top shares of customers (quantile) or minimum CLV (absolute)."""

    method: Literal["quantile", "absolute"] = "quantile"
    vip: float = Field(0.05, ge=0.0)
    high: float = Field(0.15, ge=0.0)
    medium: float = Field(0.30, ge=0.0)

    @model_validator(mode="after")
    def _cuts(self) -> TierRules:
        if self.method == "quantile":
            if min(self.vip, self.high, self.medium) <= 0.0:
                raise ValueError("quantile tier shares must be positive")
            if self.vip + self.high + self.medium > 1.0:
                raise ValueError("vip + high + medium shares must not exceed 1")
        elif not self.vip >= self.high >= self.medium:
            raise ValueError("absolute tier cut-points must satisfy vip >= high >= medium")
        return self


class ActionRule(StrictModel):
    """One row of the action table; ``*`` in stage or tier matches any value."""

    stage: str
    tier: str
    action: str = Field(min_length=1)
    channel: Channel
    offer: str = ""
    unit_cost: float = Field(0.0, ge=0.0)
    save_rate: float = Field(0.0, ge=0.0, le=1.0)
    control_share: float = Field(
        0.10,
        ge=0.0,
        lt=1.0,
        description="Share of the customers given this action (and kept by the budget) who "
        "are held out as a control group: recorded, not contacted",
    )

    @model_validator(mode="after")
    def _keys(self) -> ActionRule:
        if self.stage != "*" and self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {STAGES} or '*'")
        if self.tier != "*" and self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; expected one of {TIERS} or '*'")
        if self.channel == "none" and (self.unit_cost > 0 or self.save_rate > 0):
            raise ValueError("an action on channel 'none' must have unit_cost 0 and save_rate 0")
        return self

    @property
    def specificity(self) -> int:
        """3 for an exact pair, 2 for ``(stage, *)``, 1 for ``(*, tier)``, 0 for ``(*, *)``."""
        return 2 * (self.stage != "*") + (self.tier != "*")


class ChannelBudget(StrictModel):
    """A per-channel limit: number of contacts, money, or both."""

    max_contacts: int | None = Field(None, ge=0)
    max_cost: float | None = Field(None, ge=0.0)

    @model_validator(mode="after")
    def _some(self) -> ChannelBudget:
        if self.max_contacts is None and self.max_cost is None:
            raise ValueError("a channel budget needs max_contacts, max_cost or both")
        return self


class ControlConfig(StrictModel):
    """How customers are split into treatment and control groups (:mod:`retain.control`).

    By default (``period_days`` null) the groups are a **permanent hold-out**: a customer's
    group is a stable hash of (``seed``, customer id) alone and never changes, so no control
    customer is ever contacted inside the outcome window of an earlier scoring date. With
    ``period_days`` set the groups rotate: the hash takes the period too (days from 1970-01-01
    to the scoring date divided by ``period_days``), and the period must be at least the churn
    model's horizon (checked at scoring time). The seed belongs to the policy, not to the run
    (``seed`` of the run config), so retraining with another seed never reshuffles the groups.
    """

    seed: int = Field(0, ge=0, description="Seed of the group hash")
    period_days: int | None = Field(
        None,
        gt=0,
        description=(
            "Days a customer keeps their group (from 1970-01-01, in blocks); null (default): "
            "never redrawn, a permanent hold-out"
        ),
    )


def _default_degree_sources() -> dict[str, tuple[str, ...]]:
    return {
        "satisfaction": ("last_satisfaction", "last_nps"),
        "loyalty": ("tenure_days", "frequency"),
        "value": ("clv",),
        "engagement": ("session_count_90d", "email_open_rate"),
        "referral": ("referral_count_365d",),
    }


class PolicyConfig(StrictModel):
    """The retention policy: stages, tiers, action table, budgets, control groups, degrees."""

    stages: StageRules = StageRules()
    tiers: TierRules = TierRules()
    actions: tuple[ActionRule, ...]
    budget: dict[Channel, ChannelBudget] = Field(default_factory=dict)
    control: ControlConfig = ControlConfig()
    five_degrees: dict[Degree, tuple[str, ...]] = Field(default_factory=_default_degree_sources)

    @model_validator(mode="after")
    def _table(self) -> PolicyConfig:
        seen: dict[tuple[str, str], int] = {}
        for i, rule in enumerate(self.actions):
            key = (rule.stage, rule.tier)
            if key in seen:
                raise ValueError(
                    f"actions[{i}] repeats (stage={rule.stage}, tier={rule.tier}) of "
                    f"actions[{seen[key]}]: each pair must resolve to exactly one action"
                )
            seen[key] = i
        missing = [
            f"({s}, {t})"
            for s in STAGES
            for t in TIERS
            if not any(k in seen for k in ((s, t), (s, "*"), ("*", t), ("*", "*")))
        ]
        if missing:
            raise ValueError(f"no action for: {', '.join(missing)}")
        if "none" in self.budget:
            raise ValueError("channel 'none' takes no budget")
        return self

    def resolve(self, stage: str, tier: str) -> ActionRule:
        """The action for one (stage, tier) pair: the most specific matching rule.

        Parameters
        ----------
        stage, tier : str
            A stage from :data:`STAGES` and a tier from :data:`TIERS`.

        Returns
        -------
        ActionRule
            Exact pair first, then ``(stage, *)``, then ``(*, tier)``, then ``(*, *)``.
        """
        for key in ((stage, tier), (stage, "*"), ("*", tier), ("*", "*")):
            for rule in self.actions:
                if (rule.stage, rule.tier) == key:
                    return rule
        raise KeyError(f"no action for ({stage}, {tier})")


def load_policy(path: str | Path) -> PolicyConfig:
    """Load and validate a policy file such as ``configs/policy.yaml``.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    PolicyConfig
        The validated policy.

    Raises
    ------
    ConfigError
        When the file is missing or invalid: unknown keys, thresholds out of range, or an
        action table where some (stage, tier) pair does not resolve to exactly one action.
    """
    path = Path(path)
    return validate_model(PolicyConfig, read_yaml(path), path)
