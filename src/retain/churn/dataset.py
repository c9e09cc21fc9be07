"""Churn training data: the time split, point-in-time features per cutoff, and the leakage guard.

Time split
----------
Training stacks several cutoffs; the validation cutoff (early stopping and calibration) and the
test cutoff (evaluation only) come later. The label of a row at cutoff ``c`` looks at the window
``(c, c + H]``. :func:`make_time_split` raises :class:`LeakageError` when

- any training label window overlaps the test label window (``c_train + H > c_test``): the
  model would learn from purchases that decide test labels;
- cutoffs are out of order (train < validation < test);
- any label window runs past the last observed day.

**Validation may overlap the test window.** The validation cutoff only picks the number of
boosting rounds (early stopping) and fits the one-dimensional calibrator; it is never used to
fit trees. On CDNOW (18 months of data, a 26-week horizon) there is no room for a validation
window that ends before the test cutoff once the training windows are placed, so the overlap is
permitted, reported in :attr:`TimeSplit.validation_test_overlap_days` and logged with the run.
Set ``strict_validation=True`` to forbid it.

Features
--------
Each cutoff's features are the feature-pipeline columns (:func:`retain.features.build.
build_features`) plus the outputs of a purchase model (:class:`retain.clv.ClvModel`) fitted only
on the RFM summary as of that cutoff: ``p_alive``, ``expected_purchases_horizon`` (expected
repeat purchases in the next H days) and ``p_no_purchase_horizon`` (probability of no purchase
in the next H days, which is also the BTYD baseline). When the plain maximum-likelihood fit is
degenerate (e.g. an early cutoff with few repeat purchases) a small penalizer is used
(:data:`PENALIZER_LADDER`). Features and labels are stacked per cutoff with
:func:`stack_snapshots` (:func:`retain.features.build.build_features` and
:func:`retain.features.labels.churn_labels` per cutoff) so that the CLV outputs are fitted per
cutoff and the feature function can be swapped, which the leakage tests rely on.

Categorical text columns (RFM segment names and classes) are dropped from the model matrix: they
are deterministic functions of the RFM scores that are already features, and dropping them
keeps the scoring contract to a plain list of numeric columns.

Leakage guard
-------------
:func:`check_point_in_time` re-computes the features of a random sample of customers twice,
from all their rows and from their rows up to the cutoff only, and raises
:class:`LeakageError` naming the columns that differ: a point-in-time feature cannot change when
later rows are added. The sample includes customers whose rows are all after the cutoff, so a
feature that uses later customers (e.g. population quantiles over the future) is caught too.
In addition every feature table's own point-in-time record is checked
(:func:`retain.features.build.check_point_in_time`: latest source timestamp per cutoff).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retain.clv.cutoff_features import clv_features
from retain.config import ChurnConfig, ConfigError, FeatureConfig
from retain.contracts import CUSTOMER_ID, TIMESTAMP
from retain.features.build import PointInTimeError
from retain.features.build import check_point_in_time as check_record
from retain.features.catalogue import feature_info
from retain.features.labels import SPEND_LABEL, churn_labels, spend_labels
from retain.timeline import DateLike, cutoff_end
from retain.timeline import day as _day

if TYPE_CHECKING:
    from retain.churn.sampling import TrainingSample

FeatureFn = Callable[[pd.DataFrame, pd.Timestamp, pd.DataFrame | None], pd.DataFrame]
"""``feature_fn(transactions, cutoff, events) -> DataFrame`` indexed by ``customer_id``."""

LABEL = "churned"
KEY_COLUMNS = ("cutoff", CUSTOMER_ID)
LABEL_COLUMNS = (LABEL, SPEND_LABEL)
"""Label columns of the snapshots (``future_spend`` only in value snapshots): never features."""


class LeakageError(ValueError):
    """Training data would use information from after a cutoff or from the test window."""


@dataclass(frozen=True)
class TimeSplit:
    """Cutoffs of a time-based split and the label horizon.

    Attributes
    ----------
    train_cutoffs : tuple of Timestamp
        Cutoffs whose snapshots train the trees.
    validation_cutoff : Timestamp
        Cutoff for early stopping and calibration.
    test_cutoff : Timestamp
        Cutoff for evaluation only.
    horizon_days : int
        Label horizon H: churned = no purchase in days ``cutoff + 1 .. cutoff + H``.
    observed_until : Timestamp
        Last day covered by the data.
    """

    train_cutoffs: tuple[pd.Timestamp, ...]
    validation_cutoff: pd.Timestamp
    test_cutoff: pd.Timestamp
    horizon_days: int
    observed_until: pd.Timestamp

    def label_window_end(self, cutoff: DateLike) -> pd.Timestamp:
        """Last day of the label window of ``cutoff`` (included)."""
        return _day(cutoff) + pd.Timedelta(days=self.horizon_days)

    @property
    def validation_test_overlap_days(self) -> int:
        """Days shared by the validation and test label windows (0 when disjoint)."""
        end = self.label_window_end(self.validation_cutoff)
        return max(0, int((end - self.test_cutoff).days))

    @property
    def all_cutoffs(self) -> tuple[pd.Timestamp, ...]:
        """Training cutoffs, then validation, then test."""
        return (*self.train_cutoffs, self.validation_cutoff, self.test_cutoff)

    def as_params(self) -> dict[str, str | int]:
        """Flat parameters for tracking."""
        return {
            "train_cutoffs": ",".join(c.date().isoformat() for c in self.train_cutoffs),
            "validation_cutoff": self.validation_cutoff.date().isoformat(),
            "test_cutoff": self.test_cutoff.date().isoformat(),
            "horizon_days": self.horizon_days,
            "observed_until": self.observed_until.date().isoformat(),
            "validation_test_overlap_days": self.validation_test_overlap_days,
        }


def make_time_split(
    train_cutoffs: Sequence[DateLike],
    validation_cutoff: DateLike,
    test_cutoff: DateLike,
    horizon_days: int,
    observed_until: DateLike,
    *,
    strict_validation: bool = False,
) -> TimeSplit:
    """Build and check a time-based split.

    Parameters
    ----------
    train_cutoffs : sequence of date
        Training cutoffs, increasing.
    validation_cutoff, test_cutoff : date
        Later cutoffs for early stopping/calibration and for evaluation.
    horizon_days : int
        Label horizon H in days.
    observed_until : date
        Last observed day; every label window must end on or before it.
    strict_validation : bool
        Also forbid the validation label window from overlapping the test window.

    Returns
    -------
    TimeSplit
        The checked split.

    Raises
    ------
    LeakageError
        When a training label window overlaps the test window (or the validation window does,
        with ``strict_validation``), when cutoffs are out of order, or when a label window runs
        past ``observed_until``.
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    train = tuple(_day(c) for c in train_cutoffs)
    if not train:
        raise ValueError("at least one training cutoff is needed")
    if list(train) != sorted(set(train)):
        raise LeakageError("training cutoffs must be strictly increasing")
    split = TimeSplit(
        train, _day(validation_cutoff), _day(test_cutoff), int(horizon_days), _day(observed_until)
    )
    if split.validation_cutoff <= train[-1]:
        raise LeakageError(
            f"validation cutoff {split.validation_cutoff.date()} must be after the last training "
            f"cutoff {train[-1].date()}"
        )
    if split.test_cutoff <= split.validation_cutoff:
        raise LeakageError(
            f"test cutoff {split.test_cutoff.date()} must be after the validation cutoff "
            f"{split.validation_cutoff.date()}"
        )
    for c in train:
        end = split.label_window_end(c)
        if end > split.test_cutoff:
            raise LeakageError(
                f"training cutoff {c.date()}: its label window ({c.date()}, {end.date()}] "
                f"overlaps the test window ({split.test_cutoff.date()}, "
                f"{split.label_window_end(split.test_cutoff).date()}]; the last allowed training "
                f"cutoff is {(split.test_cutoff - pd.Timedelta(days=horizon_days)).date()}"
            )
    if strict_validation and split.validation_test_overlap_days > 0:
        raise LeakageError(
            f"validation label window overlaps the test window by "
            f"{split.validation_test_overlap_days} days"
        )
    for c in split.all_cutoffs:
        end = split.label_window_end(c)
        if end > split.observed_until:
            raise LeakageError(
                f"cutoff {c.date()}: label window ends {end.date()}, after the last observed day "
                f"{split.observed_until.date()}"
            )
    return split


# ------------------------------------------------------------------------ automatic cutoffs

HORIZON_CHOICES = (182, 90, 30)
"""Churn horizons :func:`horizon_for_span` picks from, longest first (26 weeks, a quarter, a
month)."""

MIN_HISTORY_DAYS = 30
"""Days of data before the first automatic training cutoff (customers need some history)."""

MAX_AUTO_TRAIN_CUTOFFS = 6
"""At most this many automatic training cutoffs (the most recent ones)."""


def horizon_for_span(span_days: int) -> int:
    """The churn horizon for data covering ``span_days`` days.

    The rule: the longest of :data:`HORIZON_CHOICES` (182, 90, 30 days) that fits four times
    into the span, since a training window, a test window and enough history before them must
    all fit: two years or more give 182 days, about a year (360 days or more) 90, four months
    or more 30.

    Parameters
    ----------
    span_days : int
        Days from the first to the last day of the data.

    Returns
    -------
    int
        The horizon in days.

    Raises
    ------
    ValueError
        When the span is shorter than four times the shortest horizon (120 days).
    """
    for horizon in HORIZON_CHOICES:
        if span_days >= 4 * horizon:
            return horizon
    raise ValueError(
        f"the data covers {span_days} days; a churn model needs at least "
        f"{4 * HORIZON_CHOICES[-1]} (four times the shortest horizon, {HORIZON_CHOICES[-1]} days)"
    )


def cutoffs_back(
    latest: pd.Timestamp, earliest: pd.Timestamp, step_days: int, at_most: int
) -> list[pd.Timestamp]:
    """Training cutoffs ``step_days`` apart going back from ``latest`` to ``earliest``.

    Parameters
    ----------
    latest : Timestamp
        The last cutoff allowed (the first one taken).
    earliest : Timestamp
        No cutoff before this day.
    step_days : int
        Days between consecutive cutoffs.
    at_most : int
        Keep at most this many (the most recent ones).

    Returns
    -------
    list of Timestamp
        The cutoffs in ascending order; empty when ``latest`` is before ``earliest``.
    """
    found: list[pd.Timestamp] = []
    cutoff = latest
    step = pd.Timedelta(days=int(step_days))
    while cutoff >= earliest and len(found) < at_most:
        found.append(cutoff)
        cutoff = cutoff - step
    return sorted(found)


def auto_cutoffs(
    first_day: DateLike,
    last_day: DateLike,
    horizon_days: int,
    *,
    train_cutoffs: Sequence[DateLike] | None = None,
    validation_cutoff: DateLike | None = None,
    test_cutoff: DateLike | None = None,
    strict_validation: bool = False,
) -> TimeSplit:
    """Cutoffs that fit the data's span: what ``churn.train_cutoffs: auto`` resolves to.

    The rule (one implementation, used at run time by ``train_churn`` and proposed by
    ``retain init``):

    - test cutoff = ``last_day - H``: the latest whose label window ends inside the data;
    - validation cutoff = ``test - H // 2`` (its window overlaps the test window by the other
      half, as the split rules allow), or ``test - H`` with ``strict_validation`` (disjoint);
    - training cutoffs a horizon apart, the last one ``test - H`` (its window ends on the test
      cutoff) or the day before the validation cutoff if that is earlier, going back while at
      least :data:`MIN_HISTORY_DAYS` of data precede a cutoff, at most
      :data:`MAX_AUTO_TRAIN_CUTOFFS` of them.

    Cutoffs given explicitly are kept. The result is checked with
    :func:`make_time_split`.

    Parameters
    ----------
    first_day, last_day : date
        First and last day of the data (``last_day`` is ``data.observed_until``).
    horizon_days : int
        Label horizon H in days.
    train_cutoffs : sequence of date, optional
    validation_cutoff, test_cutoff : date, optional
        Configured cutoffs to keep instead of choosing them.
    strict_validation : bool
        Keep the validation label window clear of the test window.

    Returns
    -------
    TimeSplit
        The checked split.

    Raises
    ------
    LeakageError
        When the span leaves no room for a training cutoff, or the split breaks its rules.
    """
    first, last = _day(first_day), _day(last_day)
    h = pd.Timedelta(days=int(horizon_days))
    test = _day(test_cutoff) if test_cutoff is not None else last - h
    if validation_cutoff is not None:
        validation = _day(validation_cutoff)
    else:
        validation = test - (h if strict_validation else pd.Timedelta(days=int(horizon_days) // 2))
    if train_cutoffs is not None:
        return make_time_split(
            train_cutoffs, validation, test, horizon_days, last, strict_validation=strict_validation
        )
    latest = min(test - h, validation - pd.Timedelta(days=1))
    earliest = first + pd.Timedelta(days=MIN_HISTORY_DAYS)
    train = cutoffs_back(latest, earliest, int(horizon_days), MAX_AUTO_TRAIN_CUTOFFS)
    if not train:
        raise LeakageError(
            f"data from {first.date()} to {last.date()} leave no room for a training cutoff "
            f"with a {horizon_days}-day horizon: the last one allowed, {latest.date()}, is less "
            f"than {MIN_HISTORY_DAYS} days after the first day; use a shorter churn.horizon_days"
        )
    return make_time_split(
        train,
        validation,
        test,
        horizon_days,
        last,
        strict_validation=strict_validation,
    )


def resolve_auto_cutoffs(
    churn: ChurnConfig, first_day: DateLike | None, until: DateLike
) -> tuple[ChurnConfig, str]:
    """Replace ``auto`` cutoffs by the dates the data's span gives them.

    The rule is :func:`auto_cutoffs`, from the first transaction day to ``until``
    (``data.observed_until``); dates given in the config are kept.

    Parameters
    ----------
    churn : ChurnConfig
        The configured churn section.
    first_day : date or None
        The first clean transaction's day (None: no transactions).
    until : date
        The last day the data covers.

    Returns
    -------
    churn : ChurnConfig
        The section with dates only (``churn`` itself when nothing was ``auto``).
    resolved : str
        What was resolved (logged as ``split.resolved``); empty when nothing was.

    Raises
    ------
    ConfigError
        When cutoffs are ``auto`` and there are no transactions.
    LeakageError
        When the data leave no room for the cutoffs.
    """
    if not churn.has_auto_cutoffs:
        return churn, ""
    if first_day is None:
        raise ConfigError("churn cutoffs are 'auto' but there are no transactions to place them")
    first, last = _day(first_day), _day(until)
    split = auto_cutoffs(
        first,
        last,
        churn.horizon_days,
        train_cutoffs=None if churn.train_cutoffs == "auto" else churn.train_cutoffs,
        validation_cutoff=None if churn.validation_cutoff == "auto" else churn.validation_cutoff,
        test_cutoff=None if churn.test_cutoff == "auto" else churn.test_cutoff,
        strict_validation=churn.strict_validation,
    )
    update = {
        "train_cutoffs": tuple(c.date() for c in split.train_cutoffs),
        "validation_cutoff": split.validation_cutoff.date(),
        "test_cutoff": split.test_cutoff.date(),
    }
    params = split.as_params()
    text = (
        f"auto cutoffs from {first.date()}..{last.date()}: train {params['train_cutoffs']}, "
        f"validation {params['validation_cutoff']}, test {params['test_cutoff']}"
    )
    return churn.model_copy(update=update), text


# ------------------------------------------------------------------------ leakage guard


def _sample_customers(transactions: pd.DataFrame, n: int, seed: int) -> np.ndarray:
    ids = pd.unique(transactions[CUSTOMER_ID].to_numpy())
    ids = np.sort(np.asarray(ids, dtype=object))
    if len(ids) <= n:
        return ids
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ids, size=n, replace=False))


def _until(frame: pd.DataFrame | None, cutoff: DateLike) -> pd.DataFrame | None:
    if frame is None:
        return None
    ts = frame[TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    return frame.loc[ts < np.datetime64(cutoff_end(cutoff), "ns")]


def _differing_columns(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> list[str]:
    diff: list[str] = []
    for col in sorted(set(a.columns) | set(b.columns)):
        if col not in a.columns or col not in b.columns:
            diff.append(col)
            continue
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            xv = x.to_numpy(dtype=float, na_value=np.nan)
            yv = y.to_numpy(dtype=float, na_value=np.nan)
            same = np.isclose(xv, yv, rtol=rtol, atol=1e-12, equal_nan=True)
            if not same.all():
                diff.append(col)
        else:
            xs = x.astype("string").fillna("<NA>").to_numpy()
            ys = y.astype("string").fillna("<NA>").to_numpy()
            if not (xs == ys).all():
                diff.append(col)
    return diff


def check_point_in_time(
    feature_fn: FeatureFn,
    transactions: pd.DataFrame,
    cutoff: DateLike,
    events: pd.DataFrame | None = None,
    *,
    n_customers: int = 1000,
    seed: int = 0,
    rtol: float = 1e-9,
) -> None:
    """Raise if ``feature_fn`` uses rows dated after ``cutoff``.

    Parameters
    ----------
    feature_fn : callable
        ``feature_fn(transactions, cutoff, events) -> DataFrame`` indexed by ``customer_id``.
    transactions : DataFrame
        All transactions, including those after the cutoff.
    cutoff : date
        The as-of date (included).
    events : DataFrame, optional
        All engagement events.
    n_customers : int
        Customers sampled (seeded) from all customers in ``transactions``.
    seed : int
        Seed of the sample.
    rtol : float
        Relative tolerance of the numeric comparison.

    Raises
    ------
    LeakageError
        When the features from all rows differ from those from rows up to the cutoff: other
        customers, other columns, or other values.
    """
    cutoff = _day(cutoff)
    ids = _sample_customers(transactions, n_customers, seed)
    tx = transactions.loc[transactions[CUSTOMER_ID].isin(ids)]
    ev = None if events is None else events.loc[events[CUSTOMER_ID].isin(ids)]
    full = feature_fn(tx, cutoff, ev)
    past = feature_fn(_until(tx, cutoff), cutoff, _until(ev, cutoff))
    where = f"features at cutoff {cutoff.date()}"
    if not full.index.equals(past.index):
        extra = full.index.difference(past.index)
        raise LeakageError(
            f"{where}: customers depend on later rows ({len(extra)} extra, e.g. {list(extra[:3])})"
        )
    diff = _differing_columns(full, past, rtol)
    if diff:
        raise LeakageError(f"{where}: columns change when rows after the cutoff are added: {diff}")


# ------------------------------------------------------------------------------ dataset


@dataclass
class ChurnDataset:
    """Labelled snapshots of one time split.

    Attributes
    ----------
    split : TimeSplit
        The cutoffs and horizon.
    train, validation, test : DataFrame
        Columns ``cutoff``, ``customer_id``, feature columns, ``churned`` (0/1 int).
    feature_names : list of str
        Numeric model columns, in model order.
    dropped_columns : list of str
        Non-numeric feature columns left out of the model matrix.
    training_sample : TrainingSample or None
        Set when ``churn.max_training_rows`` was applied
        (:func:`retain.churn.sampling.cap_training_rows`): the training rows built, the rows
        kept and the counts per (cutoff, label); ``train`` then holds the kept rows only.
    """

    split: TimeSplit
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    feature_names: list[str]
    dropped_columns: list[str] = field(default_factory=list)
    training_sample: TrainingSample | None = None

    def counts(self) -> dict[str, float]:
        """Row counts and churn rates per part, for tracking.

        ``train_rows`` and ``train_churn_rate`` describe the rows the trees learn from;
        ``training_rows_total`` counts the training rows built and ``training_rows_used`` the
        rows kept (the same unless ``churn.max_training_rows`` sampled them).
        """
        out: dict[str, float] = {}
        for part in ("train", "validation", "test"):
            frame = getattr(self, part)
            out[f"{part}_rows"] = float(len(frame))
            out[f"{part}_churn_rate"] = float(frame[LABEL].mean()) if len(frame) else float("nan")
        sample = self.training_sample
        out["training_rows_total"] = float(sample.rows_total if sample else len(self.train))
        out["training_rows_used"] = float(len(self.train))
        return out


def select_feature_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split the non-key columns of a snapshot frame into model features and dropped ones.

    Parameters
    ----------
    frame : DataFrame
        Snapshot frame with ``cutoff``, ``customer_id``, features and ``churned``.

    Returns
    -------
    features : list of str
        Numeric and boolean columns, in frame order.
    dropped : list of str
        Text, categorical and datetime columns.
    """
    features: list[str] = []
    dropped: list[str] = []
    for col in frame.columns:
        if col in KEY_COLUMNS or col in LABEL_COLUMNS:
            continue
        dtype = frame[col].dtype
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        ):
            features.append(col)
        else:
            dropped.append(col)
    return features, dropped


def feature_matrix(frame: pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """The model matrix: the named columns as float32, missing values as NaN.

    Parameters
    ----------
    frame : DataFrame
        Features (one row per customer or snapshot row).
    feature_names : sequence of str
        Columns in model order; all must be present.

    Returns
    -------
    ndarray of float32, shape (n_rows, n_features)

    Raises
    ------
    KeyError
        When a feature column is missing.
    """
    missing = [c for c in feature_names if c not in frame.columns]
    if missing:
        raise KeyError(f"feature columns missing: {missing}")
    out = np.empty((len(frame), len(feature_names)), dtype=np.float32)
    for j, col in enumerate(feature_names):
        out[:, j] = frame[col].to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def stack_snapshots(
    feature_fn: FeatureFn,
    label_fn: Callable[[pd.Timestamp], pd.Series],
    transactions: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features and labels at several cutoffs, stacked.

    Parameters
    ----------
    feature_fn : callable
        ``feature_fn(transactions, cutoff, events) -> DataFrame`` indexed by ``customer_id``.
    label_fn : callable
        ``label_fn(cutoff) -> Series`` of 0/1 indexed by ``customer_id``.
    transactions, events : DataFrame
        Inputs (all rows; the feature function applies the cutoff).
    cutoffs : sequence of Timestamp
        Cutoffs to stack.

    Returns
    -------
    DataFrame
        ``cutoff``, ``customer_id``, feature columns, ``churned``; one row per customer with a
        purchase by the cutoff.
    """
    parts = []
    for c in cutoffs:
        feats = feature_fn(transactions, c, events)
        labels = label_fn(c).reindex(feats.index)
        if labels.isna().any():
            raise ValueError(
                f"cutoff {c.date()}: {int(labels.isna().sum())} customers lack a label"
            )
        part = feats.reset_index()
        part.insert(0, "cutoff", c)
        part[LABEL] = labels.to_numpy().astype(np.int8)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class ChurnFeatures:
    """The feature function of the churn model: feature pipeline plus CLV outputs.

    Calling it as ``fn(transactions, cutoff, events)`` builds
    :func:`retain.features.build.build_features`, checks its point-in-time record
    (:func:`retain.features.build.check_point_in_time`, raising :class:`LeakageError`) and adds
    :func:`clv_features`.

    Attributes
    ----------
    horizon_days : int
        Churn horizon H (for the CLV outputs).
    config : FeatureConfig or None
        Feature windows (None: defaults).
    purchase_model : str
        BTYD model for the CLV features.
    """

    horizon_days: int
    config: FeatureConfig | None = None
    purchase_model: str = "bgnbd"

    def __call__(
        self, transactions: pd.DataFrame, cutoff: pd.Timestamp, events: pd.DataFrame | None
    ) -> pd.DataFrame:
        """Features of every customer with a purchase by ``cutoff``."""
        from retain.features.build import build_features  # (c) test seam: tests patch it

        config = self.config if self.config is not None else FeatureConfig()
        feats = build_features(transactions, cutoff, events, config)
        try:
            check_record(feats, cutoff)
        except PointInTimeError as exc:
            raise LeakageError(str(exc)) from exc
        clv = clv_features(feats, self.horizon_days, self.purchase_model)
        return pd.concat([feats, clv], axis=1)


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric features as float32, text and categorical columns kept as they are."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if col in KEY_COLUMNS or col in LABEL_COLUMNS:
            out[col] = s
        elif pd.api.types.is_bool_dtype(s.dtype) or (
            pd.api.types.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype)
        ):
            out[col] = s.to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            out[col] = s
    return pd.DataFrame(out, index=frame.index)


def build_churn_dataset(
    transactions: pd.DataFrame,
    split: TimeSplit,
    events: pd.DataFrame | None = None,
    *,
    feature_fn: FeatureFn | None = None,
    feature_config: FeatureConfig | None = None,
    purchase_model: str = "bgnbd",
    leakage_check_customers: int = 1000,
    seed: int = 0,
    spend_discount: float | None = None,
) -> ChurnDataset:
    """Labelled, point-in-time snapshots for a checked time split.

    Parameters
    ----------
    transactions : DataFrame
        Validated transactions covering every label window.
    split : TimeSplit
        From :func:`make_time_split`.
    events : DataFrame, optional
        Validated engagement events.
    feature_fn : callable, optional
        ``feature_fn(transactions, cutoff, events)``; default :class:`ChurnFeatures`.
    feature_config : FeatureConfig, optional
        Feature windows for the default feature function.
    purchase_model : str
        BTYD model of the CLV features.
    leakage_check_customers : int
        Customers sampled by :func:`check_point_in_time` at every cutoff (0 disables it).
    seed : int
        Seed of the leakage-check sample.
    spend_discount : float, optional
        When given, every row also gets the value label ``future_spend``
        (:func:`retain.features.labels.spend_labels` over the split's horizon, discounted at
        this monthly rate): the snapshots of the value model (:mod:`retain.clv.ml`).

    Returns
    -------
    ChurnDataset
        Train (stacked training cutoffs), validation and test snapshots; numeric features as
        float32.

    Raises
    ------
    LeakageError
        When a feature changes if rows after its cutoff are added, or a feature table's
        point-in-time record shows later data.
    """
    fn = feature_fn or ChurnFeatures(split.horizon_days, feature_config, purchase_model)
    if leakage_check_customers > 0:
        for c in split.all_cutoffs:
            check_point_in_time(
                fn, transactions, c, events, n_customers=leakage_check_customers, seed=seed
            )

    def labels(c: pd.Timestamp) -> pd.Series:
        return churn_labels(transactions, c, split.horizon_days, split.observed_until)

    def snapshot(c: pd.Timestamp) -> pd.DataFrame:
        part = stack_snapshots(fn, labels, transactions, [c], events)
        if spend_discount is not None:
            spend = spend_labels(
                transactions, c, split.horizon_days, split.observed_until, spend_discount
            )
            part[SPEND_LABEL] = spend.reindex(pd.Index(part[CUSTOMER_ID])).to_numpy(dtype=float)
        return _compact(part)

    def stack(cutoffs: Sequence[pd.Timestamp]) -> pd.DataFrame:
        parts = [snapshot(c) for c in cutoffs]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    train = stack(split.train_cutoffs)
    validation = stack([split.validation_cutoff])
    test = stack([split.test_cutoff])
    features, dropped = select_feature_columns(train)
    return ChurnDataset(split, train, validation, test, features, dropped)


def feature_catalogue(feature_names: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """Catalogue entry (meaning, unit, reason, fallback) of every model feature.

    Parameters
    ----------
    feature_names : sequence of str
        Model columns.

    Returns
    -------
    dict
        Feature name to entry; names unknown to the catalogue map to an entry whose meaning
        says so (never an invented description).
    """
    out: dict[str, dict[str, str | None]] = {}
    for name in feature_names:
        try:
            out[name] = asdict(feature_info(name))
        except KeyError:
            out[name] = {
                "meaning": "not in the feature catalogue",
                "unit": "",
                "reason": "",
                "fallback": None,
            }
    return out
