"""The catalogue of names: unique, and what the report reads is what a training job writes."""

from __future__ import annotations

from retain import names


def _constants() -> dict[str, str]:
    return {k: v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}


def test_output_file_names_are_unique_plain_file_names():
    assert len(set(names.OUTPUT_FILES)) == len(names.OUTPUT_FILES)
    for name in names.OUTPUT_FILES:
        assert "/" not in name and "." in name
    assert len(set(names.OUTPUT_KINDS)) == len(names.OUTPUT_KINDS)


def test_artifact_paths_are_unique_across_steps():
    written = [path for paths in names.WRITTEN_BY.values() for path in paths]
    assert len(written) == len(set(written))
    assert names.TABLE_OPTUNA_TRIALS not in written  # only when train_churn searches
    for path in [*written, names.TABLE_OPTUNA_TRIALS, names.CONFIG_RESOLVED]:
        folder, _, file = path.rpartition("/")
        assert folder and "." in file, path


def test_every_artifact_the_report_reads_is_written_by_its_training_job():
    assert set(names.READ_BY_REPORT) == {"train_clv", "train_churn"}
    for step, paths in names.READ_BY_REPORT.items():
        assert paths, step
        assert set(paths) <= set(names.WRITTEN_BY[step]), step
    assert tuple(names.CLV_BACKTEST_TABLES.values()) == names.READ_BY_REPORT["train_clv"]
    assert tuple(names.CHURN_PLOTS.values()) == names.READ_BY_REPORT["train_churn"]
    for table in names.CLV_BACKTEST_TABLES.values():
        assert table.startswith(names.BACKTEST_FOLDER + "/")


def test_no_two_constants_spell_the_same_path():
    paths = {k: v for k, v in _constants().items() if "/" in v}
    assert len(set(paths.values())) == len(paths), paths


def test_metric_key_builders():
    assert names.holdout_metric("mae") == "holdout_mae"
    assert names.holdout_metric("holdout_mae") == "holdout_mae"
    assert names.baseline_metric("recency_days", names.ROC_AUC) == "baseline_recency_days_roc_auc"
    assert names.baseline_metric(names.NAIVE_RATE, names.holdout_metric("rmse")) == (
        "baseline_naive_rate_holdout_rmse"
    )
    assert names.candidate_metric("bgnbd", "holdout_mae") == "bgnbd_holdout_mae"
    assert names.is_baseline("baseline_bgnbd_roc_auc", names.ROC_AUC)
    assert not names.is_baseline("baseline_bgnbd_pr_auc", names.ROC_AUC)
    assert not names.is_baseline(names.TEST_ROC_AUC)
    assert names.is_baseline("baseline_naive_rate_holdout_mae", "holdout_mae")
    assert names.TEST_ROC_AUC in names.CHURN_GATE_METRICS
    assert set(names.CHURN_GATE_METRICS) <= set(names.CHURN_REPORT_METRICS)
    assert names.CLV_REPORT_METRICS[0] == "holdout_mae"
    for keys in (names.CHURN_GATE_METRICS, names.CHURN_REPORT_METRICS, names.CLV_REPORT_METRICS):
        assert len(set(keys)) == len(keys)
