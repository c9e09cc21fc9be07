"""Drift at scoring time: the reference profile, the mergeable counts and the statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from small_models import small_scoring_models

from retain.churn import ChurnModel
from retain.config import DriftConfig, ScoringConfig, load_config, load_policy
from retain.drift import (
    CHURN_SCALE,
    NO_PROFILE_NOTE,
    PSI_EPSILON,
    DriftCounts,
    FeatureProfile,
    binned_chi_square,
    discrete_edges,
    drift_summary,
    drift_table,
    fit_profile,
    merge_counts,
    part_counts,
    population_stability_index,
)
from retain.engine import wire
from retain.engine.local import score_partitioned
from retain.engine.partition import MemoryParts, split_tables
from retain.features.build import build_features
from retain.inputs import _RawInputs
from retain.jobs.score import drift_entry, drift_metrics, drift_warning
from retain.scoring import model_features, score_customers
from retain.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "configs" / "policy.yaml"
CUT = pd.Timestamp("2023-03-31")


def test_psi_by_hand() -> None:
    ref, cur = np.array([50, 50]), np.array([25, 75])
    want = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index(ref, cur) == pytest.approx(want, rel=1e-12)
    assert population_stability_index(ref, ref) == 0.0
    # an empty bin counts as epsilon: finite
    empty = population_stability_index(np.array([100, 0]), np.array([50, 50]))
    want = (0.5 - 1.0) * math.log(0.5) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert empty == pytest.approx(want, rel=1e-12)
    assert population_stability_index(np.array([3, 1]), np.array([0, 0])) is None


def test_binned_chi_square_by_hand() -> None:
    # expected counts 37.5 / 62.5 in both rows; (12.5^2) * (2 / 37.5 + 2 / 62.5) = 13.33...
    stat, p = binned_chi_square(np.array([50, 50]), np.array([25, 75]))
    want = 12.5**2 * (2 / 37.5 + 2 / 62.5)
    assert stat == pytest.approx(want, rel=1e-12)
    assert p == pytest.approx(chi2.sf(want, 1), rel=1e-9)
    # bins empty on both sides do not count; one shared bin: nothing differs
    assert binned_chi_square(np.array([50, 0, 50]), np.array([25, 0, 75]))[0] == pytest.approx(want)
    assert binned_chi_square(np.array([0, 9]), np.array([0, 4])) == (0.0, 1.0)
    assert binned_chi_square(np.array([1, 2]), np.array([0, 0])) is None


def test_bins_are_intervals_and_discrete_values_have_one_each() -> None:
    numeric = FeatureProfile("numeric", (1.0, 2.0), (0, 0, 0), 0)
    counts, missing = numeric.bin_counts(np.array([0.5, 1.0, 1.5, 2.0, 9.0, np.nan]))
    assert counts.tolist() == [1, 2, 2] and missing == 1  # an edge opens its bin
    assert discrete_edges(np.array([0.0, 1.0, 4.0])) == (0.5, 2.5)
    discrete = FeatureProfile("discrete", discrete_edges(np.array([0.0, 1.0, 4.0])), (0,) * 3, 0)
    values = np.array([0.0, 1.0, 1.0, 4.0, 2.0, 3.0, -7.0, 40.0, np.nan, np.nan])
    counts, missing = discrete.bin_counts(values)
    # an unseen value counts with the nearest reference value; beyond the range, the outer bin
    assert counts.tolist() == [2, 3, 3] and missing == 2


def test_profile_bins_deciles_and_few_values_by_interval() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "flag": rng.integers(0, 2, 1000)})
    frame.loc[:99, "x"] = np.nan
    profile = fit_profile(frame, ["x", "flag"], rng.uniform(size=1000), "2023-03-31")
    x, flag = profile.features["x"], profile.features["flag"]
    assert x.kind == "numeric" and len(x.edges) == 9 and x.missing == 100
    assert sum(x.counts) == 900 and max(x.counts) - min(x.counts) <= 2  # deciles
    assert flag.kind == "discrete" and flag.edges == (0.5,) and sum(flag.counts) == 1000
    assert flag.counts[1] == int(frame["flag"].sum())
    assert profile.n == 1000 and profile.cutoff == "2023-03-31"
    with pytest.raises(ValueError, match="finite probability"):
        fit_profile(frame, ["x"], np.full(1000, np.nan), "2023-03-31")


@pytest.fixture(scope="module")
def world():
    data = generate_synthetic(700, "2022-01-01", "2023-12-31", seed=3, with_events=True)
    tx, events = data.transactions, data.events
    models = small_scoring_models(tx, events, CUT, "2023-12-31", rounds=20)
    inputs = model_features(build_features(tx, CUT, events), models)
    prob = models.churn.predict_proba(inputs)
    models.churn.reference_profile = fit_profile(inputs, models.feature_names, prob, CUT)
    return tx, events, models, inputs, prob


def test_a_calendar_shift_of_a_discrete_feature_is_not_a_new_bin() -> None:
    """E-mails on a fixed schedule: at any day every customer is one of a few send dates
    back. Scored a few days further into the cycle, each value is a few days larger, which
    the reference never had; by exact value all of them would leave every bin."""
    rng = np.random.default_rng(7)
    then = pd.DataFrame(
        {
            "days_since_last_email": rng.choice([3.0, 31.0, 59.0], size=3000, p=[0.6, 0.3, 0.1]),
            "emails_90d": np.full(3000, 3.0),  # everybody gets every newsletter
        }
    )
    now = then + pd.DataFrame({"days_since_last_email": 5.0, "emails_90d": 1.0}, index=then.index)
    prob = np.full(3000, 0.3)
    profile = fit_profile(then, list(then.columns), prob, "2024-09-30")
    summary = drift_summary(profile, part_counts(profile, now, prob), DriftConfig())
    days = summary["features"]["days_since_last_email"]
    assert days["kind"] == "discrete" and days["bins"] == 3
    assert days["psi"] < 1e-9 and days["status"] == "ok"  # each customer in his own bin still
    emails = summary["features"]["emails_90d"]
    assert emails["bins"] == 1 and emails["psi"] == 0.0 and emails["p_value"] == 1.0
    assert summary["status"] == "ok", summary["reasons"]
    # a real change of mix is still one: most customers now long without an e-mail
    later = then.assign(
        days_since_last_email=rng.choice([3.0, 31.0, 59.0], 3000, p=[0.1, 0.3, 0.6])
    )
    summary = drift_summary(profile, part_counts(profile, later, prob), DriftConfig())
    assert summary["features"]["days_since_last_email"]["status"] == "retrain"


def test_a_profile_saved_with_categorical_bins_reads_as_discrete() -> None:
    old = {"kind": "categorical", "edges": [0.0, 2.0, 3.0], "counts": [5, 7, 9, 0], "missing": 4}
    back = FeatureProfile.from_dict(old)
    assert back == FeatureProfile("discrete", (1.0, 2.5), (5, 7, 9), 4)
    assert FeatureProfile.from_dict(back.to_dict()) == back
    counts, _ = back.bin_counts(np.array([0.0, 2.0, 3.0, 3.0, 5.0]))
    assert counts.tolist() == [1, 1, 3]  # an unseen 5 is not a bin of its own any more
    one = {"kind": "categorical", "edges": [23.0], "counts": [100, 0], "missing": 0}
    assert FeatureProfile.from_dict(one) == FeatureProfile("discrete", (), (100,), 0)
    empty = {"kind": "categorical", "edges": [], "counts": [0], "missing": 9}  # all missing
    assert FeatureProfile.from_dict(empty) == FeatureProfile("discrete", (), (0,), 9)
    for bad in (
        {**old, "counts": [5, 7, 9, 1]},  # a reference has no other value
        {**old, "counts": [5, 7, 9]},
        {**old, "kind": "ordinal"},
    ):
        with pytest.raises(ValueError):
            FeatureProfile.from_dict(bad)


def _scored_counts(tx, events, models, as_of) -> DriftCounts:
    parts: list[DriftCounts] = []
    score_customers(tx, as_of, models, load_policy(POLICY), events=events, drift=parts)
    assert len(parts) == 1
    return parts[0]


def test_merged_parts_equal_the_whole_and_travel_as_plain_data(world) -> None:
    _, _, models, inputs, prob = world
    profile = models.churn.reference_profile
    whole = part_counts(profile, inputs, prob)
    cut = np.random.default_rng(1).permutation(len(inputs))
    pieces = np.array_split(cut, 3)
    parts = [part_counts(profile, inputs.iloc[p], prob[p]) for p in pieces]
    parts = [DriftCounts.from_dict(wire.loads(wire.dumps(p.to_dict()))) for p in parts]
    merged = merge_counts(parts)
    assert (merged.n, merged.churn_sum, merged.churn_n, merged.missing) == (
        whole.n,
        whole.churn_sum,
        whole.churn_n,
        whole.missing,
    )
    for name in whole.counts:
        assert merged.counts[name].tolist() == whole.counts[name].tolist()
    assert drift_summary(profile, merged, DriftConfig()) == drift_summary(
        profile, whole, DriftConfig()
    )


def test_a_missing_probability_stays_out_of_the_churn_sum(world) -> None:
    _, _, models, inputs, prob = world
    profile = models.churn.reference_profile
    holed = prob.copy()
    holed[[0, 5]] = [np.nan, np.inf]
    counts = part_counts(profile, inputs, holed)
    finite = np.delete(prob, [0, 5])
    assert counts.n == len(inputs) and counts.churn_n == len(inputs) - 2
    assert counts.churn_sum == int(np.rint(finite * CHURN_SCALE).sum())  # no NaN cast to int
    summary = drift_summary(profile, counts, DriftConfig())
    assert summary["churn_rate"] == pytest.approx(finite.mean(), abs=1e-6)
    nothing = part_counts(profile, inputs.iloc[:2], [np.nan, np.nan])
    assert (nothing.churn_sum, nothing.churn_n) == (0, 0)
    assert drift_summary(profile, nothing, DriftConfig())["churn_rate"] is None


def test_profile_round_trips_with_the_model_and_old_forms_load(world) -> None:
    _, _, models, _, _ = world
    model = models.churn
    model.feature_settings = {"windows_days": [30, 90, 180, 365]}
    saved = json.loads(json.dumps(model.to_dict(), sort_keys=True))  # as the registry stores it
    back = ChurnModel.from_dict(saved)
    assert back.reference_profile == model.reference_profile
    assert list(back.reference_profile.features) == model.feature_names  # model order again
    assert back.to_dict() == model.to_dict()
    old = {k: v for k, v in saved.items() if k != "reference_profile"}
    assert ChurnModel.from_dict(old).reference_profile is None
    assert "reference_profile" not in ChurnModel.from_dict(old).to_dict()
    other = json.loads(json.dumps(saved))
    other["reference_profile"]["features"].pop(model.feature_names[0])
    with pytest.raises(ValueError, match="reference profile"):
        ChurnModel.from_dict(other)


def test_scoring_the_reference_population_is_not_flagged(world) -> None:
    tx, events, models, inputs, prob = world
    profile = models.churn.reference_profile
    summary = drift_summary(profile, _scored_counts(tx, events, models, CUT), DriftConfig())
    assert summary["status"] == "ok" and not summary["retrain"] and summary["reasons"] == []
    assert summary["customers"] == len(inputs)
    assert summary["psi_max"] < 1e-9
    assert abs(summary["churn_rate_shift"]) < 1e-6
    # a bootstrap resample of the same population: noise, not drift
    rows = np.random.default_rng(2).integers(0, len(inputs), len(inputs))
    resample = part_counts(profile, inputs.iloc[rows], prob[rows])
    summary = drift_summary(profile, resample, DriftConfig())
    assert summary["status"] == "ok", summary["reasons"]
    json.dumps(summary, allow_nan=False)  # strict JSON


def test_a_population_that_stopped_buying_is_flagged_retrain(world) -> None:
    tx, events, models, _, _ = world
    # nobody has bought or engaged since the reference cutoff, scored 15 months later
    before = tx[tx["timestamp"] <= CUT]
    quiet = events[events["timestamp"] <= CUT]
    counts = _scored_counts(before, quiet, models, "2024-06-30")
    summary = drift_summary(models.churn.reference_profile, counts, DriftConfig())
    assert summary["status"] == "retrain" and summary["retrain"]
    assert summary["psi_max"] >= DriftConfig().psi_retrain
    flagged = {k for k, v in summary["features"].items() if v["status"] == "retrain"}
    assert summary["psi_max_feature"] in flagged
    assert summary["reasons"]
    table = drift_table(summary)
    assert table["feature"].iloc[0] == summary["psi_max_feature"]
    line = drift_warning(summary)
    assert line is not None and line.startswith("drift: retrain")
    metrics = drift_metrics(summary)
    assert metrics["drift_retrain"] == 1.0 and metrics["drift_psi_max"] == summary["psi_max"]
    assert {f"drift_psi.{name}" for name in models.feature_names} <= set(metrics)
    json.dumps(summary, allow_nan=False)


def test_thresholds_decide_the_status(world) -> None:
    _, _, models, inputs, prob = world
    profile = models.churn.reference_profile
    counts = part_counts(profile, inputs, np.clip(prob + 0.03, 0, 1))
    assert drift_summary(profile, counts, DriftConfig())["status"] == "ok"
    tight = DriftConfig(churn_rate_shift=0.01)
    summary = drift_summary(profile, counts, tight)
    assert summary["status"] == "retrain"
    assert summary["churn_rate_shift"] > 0.01
    with pytest.raises(ValueError, match="psi_retrain"):
        DriftConfig(psi_warn=0.3, psi_retrain=0.2)


def test_a_model_without_profile_skips_drift_with_a_note(world) -> None:
    tx, events, models, _, _ = world
    bare = type(models)(
        models.clv,
        type(models.churn)(**{**models.churn.__dict__, "reference_profile": None}),
        models.clv_version,
        models.churn_version,
    )
    parts: list[DriftCounts] = []
    score_customers(tx, CUT, bare, load_policy(POLICY), events=events, drift=parts)
    assert parts == []
    scoring = ScoringConfig(as_of="2023-03-31")
    entry = drift_entry(bare, None, scoring)
    assert entry == {"status": "skipped", "retrain": False, "note": NO_PROFILE_NOTE}
    assert drift_metrics(entry) == {} and drift_warning(entry) is None
    assert drift_table(entry).empty


def test_drift_is_the_same_for_one_and_three_partitions(world, tmp_path) -> None:
    tx, events, models, _, _ = world
    cfg = load_config(ROOT / "configs" / "cdnow.yaml")
    source = _RawInputs()
    customers = pd.DataFrame(
        {"customer_id": pd.array(["p_signup"]), "signup_date": pd.to_datetime(["2023-06-01"])}
    )
    source.tables = {"transactions": tx, "events": events, "customers": customers}
    policy = load_policy(POLICY)
    parts: list[DriftCounts] = []
    score_customers(
        tx, "2023-12-31", models, policy, events=events, customers=customers, drift=parts
    )
    whole = parts[0]
    summaries = []
    for partitions in (1, 3):
        parts = MemoryParts(split_tables(source.tables, partitions, cfg.data.null_values, "none"))
        work = tmp_path / str(partitions)
        work.mkdir()
        run = score_partitioned(parts, source, cfg, "2023-12-31", models, policy, work)
        assert run.drift is not None
        assert (run.drift.n, run.drift.churn_sum) == (whole.n, whole.churn_sum)
        assert {k: v.tolist() for k, v in run.drift.counts.items()} == {
            k: v.tolist() for k, v in whole.counts.items()
        }
        summaries.append(drift_summary(models.churn.reference_profile, run.drift, DriftConfig()))
    assert summaries[0] == summaries[1]


def _shifted_entry() -> dict:
    rng = np.random.default_rng(4)
    then = pd.DataFrame({"recency": rng.exponential(30, 500), "flag": rng.integers(0, 2, 500)})
    now = then.assign(recency=then["recency"] + 60)
    prob = rng.uniform(0.2, 0.6, 500)
    profile = fit_profile(then, ["recency", "flag"], prob, "2023-03-31")
    return drift_summary(profile, part_counts(profile, now, prob), DriftConfig())


def test_report_section_charts_the_psi_and_lists_the_features() -> None:
    import matplotlib.pyplot as plt

    from retain.reporting.drift import drift_banner, drift_section, plot_psi
    from retain.reporting.html import Report

    entry = _shifted_entry()
    assert entry["status"] == "retrain" and entry["psi_max_feature"] == "recency"
    fig, ax = plt.subplots()
    assert plot_psi(entry, ax=ax) is ax  # draws where it is told, like the other charts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["flag", "recency"]  # largest on top
    plt.close(fig)
    before = set(plt.get_fignums())
    rep = Report("t")
    drift_section(rep.section("Population drift"), entry)
    html = rep.render()
    assert rep.n_images == 1 and set(plt.get_fignums()) == before
    assert "recency" in html and "flag" in html and "retrain the churn model" in html
    assert "recency" in (drift_banner(entry) or "")
    skipped = {"status": "skipped", "retrain": False, "note": NO_PROFILE_NOTE}
    rep = Report("t")
    drift_section(rep.section("Population drift"), skipped)
    assert rep.n_images == 0 and NO_PROFILE_NOTE in rep.render()
    assert drift_banner(skipped) is None
    rep = Report("t")
    drift_section(rep.section("Population drift"), None)
    assert "no drift entry" in rep.render()


def test_drift_thresholds_are_validated_config_keys() -> None:
    from retain.config import ConfigError

    cfg = load_config(ROOT / "configs" / "cdnow.yaml", {"scoring.drift.psi_retrain": 0.3})
    assert cfg.scoring.drift.psi_retrain == 0.3 and cfg.scoring.drift.psi_warn == 0.1
    for key, value, named in (
        ("scoring.drift.psi_warn", -1, "scoring.drift.psi_warn"),
        ("scoring.drift.psi_retrain", 0.05, "psi_retrain"),
        ("scoring.drift.p_valu", 0.05, "scoring.drift.p_valu"),
    ):
        with pytest.raises(ConfigError) as err:
            load_config(ROOT / "configs" / "cdnow.yaml", {key: value})
        assert named in str(err.value), str(err.value)
