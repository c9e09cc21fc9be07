"""Population drift at scoring time: the scored customers against the churn model's test cutoff.

The churn model carries a *reference profile* of the customers it was tested on
(:class:`ReferenceProfile`, built in training by :func:`fit_profile` from the test cutoff's
features and calibrated probabilities, saved with the model). At scoring time each part of the
population counts its customers into the reference bins (:func:`part_counts`), the parts' counts
are summed (:func:`merge_counts`: exact, so the figures do not depend on the partition count)
and :func:`drift_summary` compares the whole with the reference.

Bins
    Every model feature is a number (the churn model's matrix holds numeric and boolean
    columns only: counts, days, amounts, scores, flags), so every feature is binned by
    intervals, never by exact value. A feature with more than :data:`DISCRETE_MAX_VALUES`
    distinct reference values (``numeric``) has the distinct deciles of the reference as inner
    edges ``e_1 < ... < e_k``; its bins are ``(-inf, e_1), [e_1, e_2), ..., [e_k, +inf)``
    (only the inner edges are stored, which keeps the saved form strict JSON). A feature with
    fewer (``discrete``: counts, day gaps, 1-5 scores, flags) has one bin per reference value,
    the edges midway between neighbouring values: a scored value the reference never had
    counts with the nearest reference value, one beyond the reference's range with the
    outermost. So a shift of a few days or one more e-mail moves customers to the next bin at
    most, as a decile does for a continuous feature; it is not a new bin holding all of them.
    A feature the reference holds at one value for every customer (e.g. e-mails sent in the
    last 90 days when everybody gets the same newsletters) has a single bin and a PSI of 0: it
    tells customers apart in no way, and a change common to all of them shows in the predicted
    churn rate's shift, not as a population shift (which on a fixed send calendar it would be
    on nearly every scoring day, retraining or not). Values are binned as the model reads
    them (float32); missing values are counted apart, never in a bin. Profiles saved with the
    former ``categorical`` kind (binned by value, one bin for unseen values) are read as
    ``discrete`` (:meth:`FeatureProfile.from_dict`).

Statistics, per feature
    * Population stability index over the bins of the non-missing values,
      ``PSI = sum((c_i - r_i) * ln(c_i / r_i))`` with ``r_i``, ``c_i`` the reference's and the
      scored population's shares; a share below :data:`PSI_EPSILON` (an empty bin) counts as
      that epsilon, so the index stays finite.
    * A chi-square test of homogeneity on the same binned counts (2 x bins table,
      ``scipy.stats.chi2_contingency`` without continuity correction): a *binned* two-sample
      test, exact for the counts it sees and mergeable, unlike a test on the raw values. With
      many customers every real difference is significant, so the p-value is reported but
      decides nothing alone (see below).
    * The share of missing values, now and in the reference.

Overall
    The shift in the predicted churn rate: the mean calibrated churn probability of the scored
    buyers minus the reference's mean on its test cutoff. The scored sum is kept in fixed point
    (:data:`CHURN_SCALE` units, integers), so that it adds up exactly across parts.

Status (thresholds from ``scoring.drift``)
    ``retrain`` when a feature's PSI reaches ``psi_retrain`` with a p-value below ``p_value``,
    or the churn-rate shift reaches ``churn_rate_shift`` in absolute value; ``warn`` when a
    feature's PSI reaches ``psi_warn`` with a p-value below ``p_value``, or its missing share
    moved by ``missing_share_shift`` or more; ``ok`` otherwise. The p-value only keeps a large
    PSI from a handful of customers from raising an alarm: on large populations PSI decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from retain.config import DriftConfig
from retain.timeline import DateLike, iso_day

__all__ = [
    "CHURN_SCALE",
    "DISCRETE_MAX_VALUES",
    "NO_PROFILE_NOTE",
    "PSI_EPSILON",
    "DriftCounts",
    "FeatureProfile",
    "ReferenceProfile",
    "binned_chi_square",
    "discrete_edges",
    "drift_summary",
    "drift_table",
    "fit_profile",
    "merge_counts",
    "part_counts",
    "population_stability_index",
    "skipped_summary",
]

PSI_EPSILON = 1e-4
"""Smallest bin share in the PSI: an empty bin counts as this share (keeps ``ln`` finite)."""

DISCRETE_MAX_VALUES = 10
"""A feature with at most this many distinct reference values has one bin per value."""

DECILES = tuple(i / 10 for i in range(1, 10))
"""Quantiles of the reference that give a numeric feature's inner bin edges."""

CHURN_SCALE = 2**30
"""Fixed-point units per unit of churn probability in the mergeable churn sum."""

NO_PROFILE_NOTE = "model has no reference profile; retrain to enable drift checks"
"""The manifest's note when the churn model was saved without a reference profile."""

Kind = Literal["numeric", "discrete"]
Status = Literal["ok", "warn", "retrain"]
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "retrain": 2}


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A feature column as the model reads it (float32, missing as NaN), in float64."""
    return frame[column].to_numpy(dtype=np.float32, na_value=np.nan).astype(np.float64)


@dataclass(frozen=True)
class FeatureProfile:
    """One feature's reference: its bins, the counts in them, its missing values.

    Attributes
    ----------
    kind : {"numeric", "discrete"}
        How the edges were chosen: the reference's deciles, or midway between its few
        distinct values (one bin per value).
    edges : tuple of float
        The inner bin edges (``len(edges) + 1`` bins ``(-inf, e_1), [e_1, e_2), ...,
        [e_k, +inf)``).
    counts : tuple of int
        Reference customers per bin (``len(edges) + 1`` entries).
    missing : int
        Reference customers with the feature missing.
    """

    kind: Kind
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int

    def bin_counts(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """Counts of ``values`` in this feature's bins, and the number missing.

        Parameters
        ----------
        values : ndarray of float
            The feature's values (NaN for missing).

        Returns
        -------
        (ndarray of int64, int)
            Counts per bin (``len(edges) + 1``) and the missing count.
        """
        missing = np.isnan(values)
        present = values[~missing]
        edges = np.asarray(self.edges, dtype=np.float64)
        index = np.searchsorted(edges, present, side="right")
        counts = np.bincount(index, minlength=len(edges) + 1).astype(np.int64)
        return counts, int(missing.sum())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (see :meth:`from_dict`)."""
        return {
            "kind": self.kind,
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "missing": int(self.missing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """Rebuild from :meth:`to_dict` output (or the former ``categorical`` form).

        A ``categorical`` profile (saved before discrete features were binned by intervals)
        lists the reference's values, their counts and a last bin for other values, empty
        in a reference by construction; it is read as the ``discrete`` profile of the same
        values (:func:`discrete_edges`), with the same counts per value.

        Raises
        ------
        ValueError
            When the kind is unknown, the counts do not fit the edges, or a value is not finite.
        """
        kind = str(data["kind"])
        if kind not in ("numeric", "discrete", "categorical"):
            raise ValueError(f"unknown feature profile kind {kind!r}")
        edges = tuple(float(e) for e in data["edges"])
        counts = tuple(int(c) for c in data["counts"])
        if len(counts) != len(edges) + 1 or not np.all(np.isfinite(edges)):
            raise ValueError("a feature profile needs finite edges and one count more than edges")
        if list(edges) != sorted(set(edges)) or min(counts, default=0) < 0:
            raise ValueError("a feature profile's edges must increase and its counts be >= 0")
        if kind == "categorical":  # the other values' bin is empty in a reference
            if counts[-1] != 0:
                raise ValueError("a categorical feature profile counts no other value")
            kind, edges, counts = "discrete", discrete_edges(np.asarray(edges)), counts[:-1] or (0,)
        return cls(kind, edges, counts, int(data["missing"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ReferenceProfile:
    """The churn model's test-cutoff population, as drift checks compare with it.

    Attributes
    ----------
    cutoff : str
        The test cutoff (ISO date).
    n : int
        Customers at the test cutoff.
    churn_mean : float
        Their mean calibrated churn probability.
    features : dict
        :class:`FeatureProfile` per model feature, in model order.
    """

    cutoff: str
    n: int
    churn_mean: float
    features: dict[str, FeatureProfile]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, saved inside the churn model's form."""
        return {
            "cutoff": self.cutoff,
            "n": int(self.n),
            "churn_mean": float(self.churn_mean),
            "features": {name: f.to_dict() for name, f in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild from :meth:`to_dict` output.

        Raises
        ------
        ValueError
            When a feature profile is malformed or the churn mean is not a probability.
        """
        churn_mean = float(data["churn_mean"])
        if not 0.0 <= churn_mean <= 1.0:
            raise ValueError(f"reference churn mean {churn_mean!r} is not a probability")
        features = {str(k): FeatureProfile.from_dict(v) for k, v in data["features"].items()}
        return cls(str(data["cutoff"]), int(data["n"]), churn_mean, features)


def discrete_edges(distinct: np.ndarray) -> tuple[float, ...]:
    """Inner edges of one bin per value: midway between neighbouring values.

    Parameters
    ----------
    distinct : ndarray of float
        The distinct values, increasing.

    Returns
    -------
    tuple of float
        ``len(distinct) - 1`` edges; a value falls in the bin of its nearest listed value
        (a tie midway goes up), one beyond the listed range in the outermost bin.
    """
    values = np.asarray(distinct, dtype=np.float64)
    return tuple(float(e) for e in values[:-1] + (values[1:] - values[:-1]) / 2)


def _feature_profile(values: np.ndarray) -> FeatureProfile:
    """A feature's bins from its reference values, with the reference counted into them."""
    present = values[~np.isnan(values)]
    distinct = np.unique(present)
    kind: Kind = "discrete" if len(distinct) <= DISCRETE_MAX_VALUES else "numeric"
    edges = (
        discrete_edges(distinct)
        if kind == "discrete"
        else tuple(np.unique(np.quantile(present, DECILES)))
    )
    empty = FeatureProfile(kind, tuple(float(e) for e in edges), (0,) * (len(edges) + 1), 0)
    counts, missing = empty.bin_counts(values)
    return FeatureProfile(kind, empty.edges, tuple(int(c) for c in counts), missing)


def fit_profile(
    features: pd.DataFrame,
    feature_names: Sequence[str],
    churn_probability: np.ndarray,
    cutoff: DateLike,
) -> ReferenceProfile:
    """The reference profile of a population (the churn model's test cutoff).

    Parameters
    ----------
    features : DataFrame
        The population's model inputs (one row per customer).
    feature_names : sequence of str
        The model's features.
    churn_probability : ndarray
        The calibrated churn probability of every row.
    cutoff : date, str or Timestamp
        The population's date.

    Returns
    -------
    ReferenceProfile

    Raises
    ------
    ValueError
        When the population is empty or the probabilities are not one finite value per row.
    """
    prob = np.asarray(churn_probability, dtype=np.float64)
    if len(features) == 0 or prob.shape != (len(features),) or not np.all(np.isfinite(prob)):
        raise ValueError("a reference profile needs customers, each with a finite probability")
    profiles = {name: _feature_profile(_values(features, name)) for name in feature_names}
    return ReferenceProfile(iso_day(cutoff), len(features), float(prob.mean()), profiles)


@dataclass(frozen=True)
class DriftCounts:
    """A population's counts in the reference bins: a reduction that adds across parts.

    Attributes
    ----------
    n : int
        Customers counted (the buyers, who have model inputs).
    counts : dict
        Per feature, customers per reference bin (int64).
    missing : dict
        Per feature, customers with the feature missing.
    churn_sum : int
        Sum of the finite churn probabilities in fixed point (:data:`CHURN_SCALE` units).
    churn_n : int
        Customers in ``churn_sum``: those with a finite probability (all of them in a run
        that writes scores, which refuses non-finite ones).
    """

    n: int
    counts: dict[str, np.ndarray]
    missing: dict[str, int]
    churn_sum: int
    churn_n: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data (ints and int64 arrays) for a task's result (:mod:`retain.engine.wire`)."""
        return {
            "n": int(self.n),
            "counts": {k: np.asarray(v, dtype=np.int64) for k, v in self.counts.items()},
            "missing": {k: int(v) for k, v in self.missing.items()},
            "churn_sum": int(self.churn_sum),
            "churn_n": int(self.churn_n),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftCounts:
        """Rebuild from :meth:`to_dict` output."""
        counts = {str(k): np.asarray(v, dtype=np.int64) for k, v in data["counts"].items()}
        missing = {str(k): int(v) for k, v in data["missing"].items()}
        return cls(int(data["n"]), counts, missing, int(data["churn_sum"]), int(data["churn_n"]))


def part_counts(
    profile: ReferenceProfile, inputs: pd.DataFrame, churn_probability: np.ndarray
) -> DriftCounts:
    """One part's counts in the reference bins (pure; a part holds whole customers).

    Parameters
    ----------
    profile : ReferenceProfile
        The churn model's reference.
    inputs : DataFrame
        The part's model inputs, one row per scored buyer.
    churn_probability : ndarray
        Their calibrated churn probabilities, in row order. A non-finite one is left out of
        the churn sum (``churn_n`` counts the others): the scores' own check
        (:func:`retain.scoring.check_finite`) refuses it with its reason.

    Returns
    -------
    DriftCounts
    """
    counts: dict[str, np.ndarray] = {}
    missing: dict[str, int] = {}
    for name, feature in profile.features.items():
        counts[name], missing[name] = feature.bin_counts(_values(inputs, name))
    prob = np.asarray(churn_probability, dtype=np.float64)
    prob = prob[np.isfinite(prob)]  # NaN would cast to a huge negative int64
    fixed = np.rint(np.clip(prob, 0.0, 1.0) * CHURN_SCALE).astype(np.int64)
    return DriftCounts(len(inputs), counts, missing, int(fixed.sum()), len(prob))


def merge_counts(parts: Iterable[DriftCounts]) -> DriftCounts:
    """The counts of the whole population: the parts' counts summed.

    Parameters
    ----------
    parts : iterable of DriftCounts
        At least one part, all against the same profile.

    Returns
    -------
    DriftCounts

    Raises
    ------
    ValueError
        Without parts.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("no parts to merge")
    first = parts[0]
    return DriftCounts(
        sum(p.n for p in parts),
        {k: np.sum([p.counts[k] for p in parts], axis=0).astype(np.int64) for k in first.counts},
        {k: sum(p.missing[k] for p in parts) for k in first.missing},
        sum(p.churn_sum for p in parts),
        sum(p.churn_n for p in parts),
    )


def population_stability_index(
    reference: np.ndarray, current: np.ndarray, epsilon: float = PSI_EPSILON
) -> float | None:
    """PSI of two binned distributions (counts per bin, the same bins).

    ``sum((c_i - r_i) * ln(c_i / r_i))`` over the shares; a share below ``epsilon`` counts as
    ``epsilon``.

    Parameters
    ----------
    reference, current : ndarray
        Counts per bin.
    epsilon : float
        Floor of a bin's share.

    Returns
    -------
    float or None
        None when either side has no values.
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if r.sum() <= 0 or c.sum() <= 0:
        return None
    r = np.maximum(r / r.sum(), epsilon)
    c = np.maximum(c / c.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def binned_chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float] | None:
    """Chi-square test of homogeneity of two binned samples (no continuity correction).

    Parameters
    ----------
    reference, current : ndarray
        Counts per bin (the same bins).

    Returns
    -------
    (float, float) or None
        Statistic and p-value; (0.0, 1.0) when all values of both fall in one bin; None when
        either side has no values.
    """
    table = np.vstack([np.asarray(reference), np.asarray(current)]).astype(np.float64)
    if table[0].sum() <= 0 or table[1].sum() <= 0:
        return None
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _feature_entry(
    name: str, feature: FeatureProfile, counts: DriftCounts, limits: DriftConfig
) -> tuple[dict[str, Any], list[tuple[str, float, str]]]:
    now = counts.counts[name]
    ref = np.asarray(feature.counts, dtype=np.int64)
    psi = population_stability_index(ref, now)
    test = binned_chi_square(ref, now)
    ref_n = int(ref.sum()) + feature.missing
    missing_ref = feature.missing / ref_n if ref_n else 0.0
    missing_now = counts.missing[name] / counts.n if counts.n else 0.0
    p_value = None if test is None else test[1]
    significant = p_value is not None and p_value < limits.p_value
    flags: list[tuple[str, float, str]] = []
    if psi is not None and significant and psi >= limits.psi_retrain:
        flags.append(("retrain", psi, f"{name} PSI {psi:.3f} >= {limits.psi_retrain}"))
    elif psi is not None and significant and psi >= limits.psi_warn:
        flags.append(("warn", psi, f"{name} PSI {psi:.3f} >= {limits.psi_warn}"))
    moved = abs(missing_now - missing_ref)
    if moved >= limits.missing_share_shift:
        text = f"{name} missing share {missing_ref:.1%} -> {missing_now:.1%}"
        flags.append(("warn", moved, text))
    status = max((f[0] for f in flags), key=_RANK.__getitem__, default="ok")
    entry = {
        "kind": feature.kind,
        "bins": len(ref),
        "psi": psi,
        "chi2": None if test is None else test[0],
        "p_value": p_value,
        "missing_share": missing_now,
        "missing_share_reference": missing_ref,
        "status": status,
    }
    return entry, flags


def drift_summary(
    profile: ReferenceProfile, counts: DriftCounts, limits: DriftConfig
) -> dict[str, Any]:
    """The drift entry of a scoring run: per feature and overall, with the status.

    Parameters
    ----------
    profile : ReferenceProfile
        The churn model's reference.
    counts : DriftCounts
        The whole scored population's counts (:func:`merge_counts`).
    limits : DriftConfig
        The thresholds (``scoring.drift``).

    Returns
    -------
    dict
        Strict JSON (None where a figure is undefined): ``status`` (``ok``, ``warn`` or
        ``retrain``), ``reasons`` (one line per threshold crossed), ``retrain`` (bool),
        ``reference`` (cutoff, customers, churn mean), ``customers``, ``psi_max`` and
        ``psi_max_feature``, ``churn_rate``, ``churn_rate_reference``, ``churn_rate_shift``,
        ``thresholds`` and ``features`` (per feature: ``psi``, ``chi2``, ``p_value``,
        ``missing_share``, ``missing_share_reference``, ``status``, ``kind``, ``bins``).
    """
    features: dict[str, Any] = {}
    flags: list[tuple[str, float, str]] = []
    for name, feature in profile.features.items():
        features[name], mine = _feature_entry(name, feature, counts, limits)
        flags.extend(mine)
    scored = {k: v["psi"] for k, v in features.items() if v["psi"] is not None}
    worst = max(scored, key=scored.__getitem__) if scored else None
    churn_now = counts.churn_sum / CHURN_SCALE / counts.churn_n if counts.churn_n else None
    shift = None if churn_now is None else churn_now - profile.churn_mean
    if shift is not None and abs(shift) >= limits.churn_rate_shift:
        flags.append(
            (
                "retrain",
                np.inf,  # the overall figure comes first
                f"predicted churn rate {profile.churn_mean:.1%} -> {churn_now:.1%} "
                f"(shift {shift:+.3f}, limit {limits.churn_rate_shift})",
            )
        )
    flags.sort(key=lambda f: (-_RANK[f[0]], -f[1]))  # worst first, then largest
    status = flags[0][0] if flags else "ok"
    return {
        "status": status,
        "retrain": status == "retrain",
        "reasons": [text for _, _, text in flags],
        "reference": {"cutoff": profile.cutoff, "customers": profile.n},
        "customers": int(counts.n),
        "psi_max": None if worst is None else scored[worst],
        "psi_max_feature": worst,
        "churn_rate": churn_now,
        "churn_rate_reference": profile.churn_mean,
        "churn_rate_shift": shift,
        "thresholds": limits.model_dump(mode="json"),
        "features": features,
    }


def skipped_summary(note: str = NO_PROFILE_NOTE) -> dict[str, Any]:
    """The drift entry of a run that could not check drift, with its one-line note."""
    return {"status": "skipped", "retrain": False, "note": note}


def drift_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The per-feature figures of a drift entry as a table (one row per feature).

    Parameters
    ----------
    summary : mapping
        :func:`drift_summary` output (or the manifest's ``drift`` entry).

    Returns
    -------
    DataFrame
        Columns ``feature``, ``psi``, ``chi2``, ``p_value``, ``missing_share``,
        ``missing_share_reference``, ``status``, ``kind``, ``bins``, sorted by PSI (largest
        first); empty when the entry has no features.
    """
    columns = [
        "feature",
        "psi",
        "chi2",
        "p_value",
        "missing_share",
        "missing_share_reference",
        "status",
        "kind",
        "bins",
    ]
    rows = [{"feature": k, **v} for k, v in (summary.get("features") or {}).items()]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    table["psi"] = pd.to_numeric(table["psi"])
    return table.sort_values("psi", ascending=False, na_position="last", ignore_index=True)
