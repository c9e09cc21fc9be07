"""The registered churn model in MLflow's own loaders and in Spark gives the scores' probabilities.

A churn model trained on the CDNOW sample is registered as retain registers it; then
``mlflow.pyfunc.load_model`` and ``mlflow.pyfunc.spark_udf`` (``env_manager="local"``) on the
same feature rows must give exactly the ``churn_probability`` that scoring writes (the same
code: the booster's raw score, then the calibrator). Their loader is retain's own module
(:mod:`retain.tracking.pyfunc`); retain's verified loader still refuses any other one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException

from retain import tracking
from retain.config import load_config, load_policy
from retain.features.build import build_features
from retain.io import load_inputs
from retain.jobs.train_churn import train_churn
from retain.jobs.train_clv import train_clv
from retain.scoring import model_features, score_customers
from retain.tracking import pyfunc as retain_pyfunc

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
FAST = {
    "data.source": "cdnow_sample",
    "clv.purchase_model": "bgnbd",
    "churn.lightgbm": {"num_leaves": 7, "min_data_in_leaf": 100, "num_threads": 1},
    "churn.baseline_models": ["bgnbd"],
    "churn.leakage_check_customers": 0,
}


@pytest.fixture
def registered(mlflow_tmp):
    """A CLV and a churn model trained on the CDNOW sample, promoted; scores and inputs."""
    cfg = load_config(CONFIG, FAST)
    train_clv(cfg)
    train_churn(cfg)
    for kind in ("clv", "churn"):
        tracking.promote(tracking.registered_name(cfg, kind), cfg.promotion, force_reason="test")
    loaded = tracking.load_scoring_models(cfg)
    models = loaded.models
    as_of = pd.Timestamp(cfg.scoring.as_of)
    inputs = load_inputs(cfg, as_of)
    scores = score_customers(inputs.transactions, as_of, models, load_policy(cfg.policy_path))
    # the churn model's inputs, built as scoring builds them
    feats = build_features(inputs.transactions, as_of, None, models.feature_config)
    rows = model_features(feats, models)[models.feature_names].astype("float64")
    expected = scores.set_index("customer_id")["churn_probability"]
    expected = expected.reindex(rows.index.astype("string")).to_numpy()
    assert len(rows) > 1000 and not np.isnan(expected).any()
    uri = f"models:/{tracking.registered_name(cfg, 'churn')}@champion"
    return uri, loaded.churn_version, rows, expected, mlflow_tmp


def test_mlflow_load_model_gives_the_scores_probabilities(registered, tmp_path: Path) -> None:
    uri, version, rows, expected, _ = registered
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.flavors["python_function"]["loader_module"] == "retain.tracking.pyfunc"
    sig = model.metadata.signature
    assert sig.inputs.input_names() == list(rows.columns)
    assert {t.name for t in sig.inputs.input_types()} == {"double"}
    assert [t.name for t in sig.outputs.input_types()] == ["double"]

    shuffled = rows[list(reversed(rows.columns))].assign(customer_note="ignored")
    got = np.asarray(model.predict(shuffled))
    assert got.shape == (len(rows),) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)  # the same code as scoring: exact
    assert ((got >= 0) & (got <= 1)).all() and got.std() > 0  # probabilities, not labels

    with pytest.raises(MlflowException, match=rows.columns[0]):
        model.predict(rows.drop(columns=rows.columns[0]))
    # MLflow's entry point on the downloaded data, without MLflow's schema check: the same
    # numbers, and a missing column named
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    inner = retain_pyfunc._load_pyfunc(str(local / "data" / "churn_model.json"))
    np.testing.assert_array_equal(inner.predict(shuffled), expected)
    missing = rf"lacks the feature column\(s\) \['{rows.columns[1]}'\]"
    with pytest.raises(ValueError, match=missing):
        inner.predict(rows.drop(columns=rows.columns[1]))


def test_spark_udf_gives_the_scores_probabilities(registered, spark) -> None:
    from pyspark.sql import functions as F

    uri, _, rows, expected, _ = registered
    frame = rows.reset_index()
    frame["customer_id"] = frame["customer_id"].astype(str)
    sdf = spark.createDataFrame(frame)  # Arrow: pandas -> Spark
    udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")
    features = list(rows.columns)

    by_struct = sdf.withColumn("churn_probability", udf(F.struct(*reversed(features))))
    by_columns = sdf.withColumn("churn_probability", udf(*features))
    for scored in (by_struct, by_columns):
        out = scored.select("customer_id", "churn_probability").toPandas()  # Arrow back
        got = out.set_index("customer_id")["churn_probability"].reindex(frame["customer_id"])
        np.testing.assert_allclose(got.to_numpy(), expected, rtol=0, atol=1e-12)


def test_retain_refuses_any_other_loader_module(registered, tmp_path: Path) -> None:
    """Edit the MLmodel of a copy of the stored version: every foreign loader is refused."""
    _, version, _, _, store = registered
    name, number = version.name, str(version.version)
    uri = tracking.client().get_model_version_download_uri(name, number)
    stored = Path(uri.removeprefix("file://"))
    assert (stored / "MLmodel").is_file() and stored.is_relative_to(store.artifact_root)
    original = tmp_path / "original"
    shutil.copytree(stored, original)
    doc = yaml.safe_load((original / "MLmodel").read_text())
    pf = doc["flavors"]["python_function"]
    assert pf["loader_module"] == "retain.tracking.pyfunc" and pf["data"] == "data/churn_model.json"
    assert not pf.get("code") and not (original / "churn_pyfunc.py").exists()

    edits = {
        "another module": ({"loader_module": "mlflow.lightgbm"}, "uses loader 'mlflow.lightgbm'"),
        "a look-alike": (
            {"loader_module": "retain.tracking.pyfunc_evil"},
            "uses loader 'retain.tracking.pyfunc_evil'",
        ),
        "code paths": ({"code": "code"}, "adds code paths"),
        "other data": ({"data": "data/other.json"}, "reads data 'data/other.json'"),
        "a config": ({"model_config": {"x": 1}}, r"has keys \['model_config'\]"),
    }
    for label, (change, message) in edits.items():
        shutil.rmtree(stored)
        shutil.copytree(original, stored)
        edited = {**doc, "flavors": {"python_function": {**pf, **change}}}
        (stored / "MLmodel").write_text(yaml.safe_dump(edited))
        with pytest.raises(tracking.TrackingError, match=message) as exc:
            tracking.load_churn_model(number, name)
        assert f"model {name} version {number} is refused" in str(exc.value), label

    shutil.rmtree(stored)
    shutil.copytree(original, stored)
    assert tracking.load_churn_model(number, name).model.feature_names  # untouched: accepted
