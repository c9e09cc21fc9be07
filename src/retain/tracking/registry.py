"""The model registry: log, register, verify and load retain's models; move aliases.

1. **Names**: one registered name per kind of model and data set (:func:`registered_name`);
   every version records the data set it learnt from and is refused for another one
   (:func:`check_dataset`).
2. **Log and register models** as plain files, so nothing is pickled: ``clv`` is a pyfunc
   "model from code" (a three-line script) keeping the JSON of
   :meth:`retain.clv.ClvModel.to_dict` (``artifacts/clv_model.json``); ``churn`` is a
   ``python_function`` flavour whose ``loader_module`` is :mod:`retain.tracking.pyfunc` (our
   installed package, so MLflow's ``load_model`` and ``spark_udf`` run no code from the
   artifact store) and whose ``data`` is the JSON of :meth:`retain.churn.ChurnModel.to_dict`
   (``data/churn_model.json``: the booster in LightGBM's own text format, the calibrator, the
   features); its signature takes the feature columns as doubles and returns the calibrated
   churn probability. Every new version gets the
   tag ``retain.sha256`` (JSON: relative path -> SHA-256 of every file of the model
   directory), the alias ``challenger`` and, as version tags ``metric.<name>``, the metrics the
   promotion gate reads.
3. **Load** models by alias, version number or run id (:func:`load_clv_model`,
   :func:`load_churn_model`, :func:`load_scoring_models`) without any MLflow flavour loader:
   the downloaded ``MLmodel`` must describe exactly what retain writes (no pickle-based
   flavour, no loader but retain's), the files must match the ``retain.sha256`` tag exactly,
   and only then are the plain files read (``json``, ``lightgbm.Booster(model_str=...)``).
4. **Promote** (:func:`promote`): read both versions' metrics, ask the pure gate
   (:func:`retain.promotion.decide`) and move ``champion`` to the challenger when it accepts.
   The previous champion keeps the alias ``previous_champion``; :func:`rollback` swaps the two.

Past 600 lines because it is one idea, the life of a registered version: what is written at
registration (files, digests, tags) is exactly what loading checks, so the two sides and the
layout they share stay together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import mlflow
import mlflow.pyfunc
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema

from retain import __version__
from retain.clv import ClvModel
from retain.config import FeatureConfig, PromotionConfig, RunConfig
from retain.names import CHURN_MODEL_FILE, CLV_MODEL_FILE, VALUE_MODEL_FILE
from retain.promotion import GATE_KINDS, GateResult, PromotionDecision, decide
from retain.tracking.pyfunc import LOADER_MODULE as _CHURN_LOADER
from retain.tracking.store import TrackingError, client
from retain.tracking.value_pyfunc import LOADER_MODULE as _VALUE_LOADER

CLV_MODEL_NAME = "clv"
CHURN_MODEL_NAME = "churn"
VALUE_MODEL_NAME = "value"
CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"

CLV_ARTIFACT = CLV_MODEL_FILE
CHURN_ARTIFACT = CHURN_MODEL_FILE
VALUE_ARTIFACT = VALUE_MODEL_FILE
METRIC_TAG_PREFIX = "metric."
DIGEST_TAG = "retain.sha256"
"""Model version tag: JSON ``{relative path: SHA-256 hex digest}`` of every model file."""


CLV_INPUT_COLUMNS = ("frequency", "recency", "tenure", "monetary_value")
"""Input columns of the CLV pyfunc; ``recency`` and ``tenure`` carry the time unit suffix."""

_UNIT_SUFFIX = {"D": "days", "W": "weeks"}
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")

_CLV_PYFUNC_CODE = '''"""MLflow "model from code" entry for the retain CLV model (no pickle)."""
import mlflow
from retain.tracking import ClvPyfunc

mlflow.models.set_model(ClvPyfunc())
'''

_CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
_DIGEST_TAG_MAX = 5000  # MLflow 2 registries cap tag values at 5000 characters


# ---------------------------------------------------------------------- model names

MODEL_KINDS = (CLV_MODEL_NAME, CHURN_MODEL_NAME, VALUE_MODEL_NAME)
DATASET_TAG = "retain.dataset"
"""Model version tag: the data set the version learnt from (:meth:`DataConfig.dataset_id`)."""
CONFIG_NAME_TAG = "retain.config_name"
CONFIG_HASH_TAG = "retain.config_hash"


def registered_name(cfg: RunConfig, kind: str) -> str:
    """The registered model name of one kind of model for a config: ``<prefix>-<kind>``.

    The prefix is ``tracking.model_name`` or else the config's ``name``, so two data sets
    (brands, regions, the demo and a user's data) never share a registered model.

    Parameters
    ----------
    cfg : RunConfig
        The run config.
    kind : {"clv", "churn", "value"}
        The kind of model.

    Returns
    -------
    str
        E.g. ``cdnow-churn``.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    return f"{cfg.tracking.model_name or cfg.name}-{kind}"


def model_kind(model_name: str) -> str | None:
    """``clv`` or ``churn`` for a registered name made by :func:`registered_name` (or bare)."""
    for kind in MODEL_KINDS:
        if model_name == kind or model_name.endswith(f"-{kind}"):
            return kind
    return None


def provenance_tags(cfg: RunConfig) -> dict[str, str]:
    """Version tags naming the config and the data set a model was trained on."""
    return {
        DATASET_TAG: cfg.data.dataset_id(),
        CONFIG_NAME_TAG: cfg.name,
        CONFIG_HASH_TAG: cfg.config_hash(),
    }


def check_dataset(version: ModelVersion, cfg: RunConfig, allow_other: bool = False) -> None:
    """Refuse a model version trained on another data set than the config's.

    Parameters
    ----------
    version : ModelVersion
        The version about to be used.
    cfg : RunConfig
        The run config (its ``data`` section names the data set).
    allow_other : bool
        Skip the check (``--allow-other-dataset``).

    Raises
    ------
    TrackingError
        The version records another data set, or none.
    """
    if allow_other:
        return
    theirs = (version.tags or {}).get(DATASET_TAG)
    ours = cfg.data.dataset_id()
    if theirs != ours:
        trained = f"data set {theirs!r}" if theirs else "an unrecorded data set"
        raise TrackingError(
            f"model {version.name} version {version.version} was trained on {trained}, this "
            f"config reads {ours!r}; train a model for this data set, or pass "
            "--allow-other-dataset to score with it anyway"
        )


# --------------------------------------------------------------------------- models


class ClvPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper of :class:`retain.clv.ClvModel`, restored from its JSON artifact.

    Input: one row per customer with ``frequency``, ``recency_<unit>``, ``tenure_<unit>`` and
    ``monetary_value``. Output: the columns of :meth:`ClvModel.predict`, one row per input row
    in the same order (the signature drops other columns such as ``customer_id``; join on
    position). The optional param ``horizon`` overrides the model's horizon (months).
    """

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["clv_model"]) as fh:
            self.model = ClvModel.from_dict(json.load(fh))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        summary = pd.DataFrame(model_input)
        if "customer_id" in summary.columns:
            summary = summary.set_index("customer_id")
        horizon = (params or {}).get("horizon")
        return self.model.predict(summary, horizon=horizon)


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper of :class:`retain.churn.ChurnModel`, restored from its JSON saved form.

    The "model from code" entry of churn versions logged before the churn model named
    :mod:`retain.tracking.pyfunc` as its loader; kept so that those versions still load.
    Input: one row per customer with the model's feature columns. Output: ``raw_score`` (the
    booster's log-odds) and ``churn_probability`` (calibrated), one row per input row in the
    same order.
    """

    def load_context(self, context: Any) -> None:
        from retain.churn import ChurnModel  # (b) lightgbm and sklearn only when loading one

        with open(context.artifacts["churn_model"]) as fh:
            self.model = ChurnModel.from_dict(json.load(fh))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        raw = self.model.predict_raw(frame)
        return pd.DataFrame(
            {"raw_score": raw, "churn_probability": self.model.predict_proba(frame)}
        )


class LoadedClvModel(NamedTuple):
    """A CLV model loaded from the registry and its model version."""

    model: Any
    version: ModelVersion


class LoadedChurnModel(NamedTuple):
    """A churn model loaded from the registry and its model version."""

    model: Any
    version: ModelVersion


def clv_input_columns(time_unit: str) -> list[str]:
    """The CLV pyfunc input columns for a time unit (``"W"`` -> ``recency_weeks``...)."""
    suffix = _UNIT_SUFFIX[time_unit]
    return ["frequency", f"recency_{suffix}", f"tenure_{suffix}", "monetary_value"]


def _pip_requirements(*packages: str) -> list[str]:
    reqs = [f"retain=={__version__}"]
    for name in ("mlflow", "pandas", "numpy", "scipy", *packages):
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:  # pragma: no cover - only in broken envs
            reqs.append(name)
    return reqs


def _check_user_tags(tags: Mapping[str, str] | None) -> None:
    if DIGEST_TAG in (tags or {}):
        raise ValueError(f"version tag {DIGEST_TAG!r} is reserved for the model's file digests")


def _register(mc: MlflowClient, model_name: str, model_info: Any) -> str:
    """Register a logged model as a new version through the client; return the version number.

    The client, unlike ``log_model(registered_model_name=...)``, prints nothing to the terminal.
    """
    try:
        mc.create_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise TrackingError(f"cannot create model {model_name!r}: {exc.message}") from exc
    try:
        created = mc.create_model_version(
            model_name,
            source=model_info.model_uri,
            run_id=model_info.run_id,
            model_id=getattr(model_info, "model_id", None),
        )
    except MlflowException as exc:
        raise TrackingError(f"cannot register model {model_name!r}: {exc.message}") from exc
    return str(created.version)


def _finish_registration(
    model_name: str,
    model_info: Any,
    metrics: Mapping[str, float] | None,
    tags: Mapping[str, str] | None,
) -> ModelVersion:
    mc = client()
    version = _register(mc, model_name, model_info)
    _record_digests(mc, model_name, str(version))
    for key, value in (metrics or {}).items():
        text = repr(float(value))  # plain float text (repr of numpy scalars is not parseable)
        mc.set_model_version_tag(model_name, str(version), METRIC_TAG_PREFIX + key, text)
    for key, value in (tags or {}).items():
        mc.set_model_version_tag(model_name, str(version), key, str(value))
    mc.set_registered_model_alias(model_name, CHALLENGER, str(version))
    return mc.get_model_version(model_name, str(version))


def log_clv_model(
    model: Any,
    example_summary: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
    model_name: str = CLV_MODEL_NAME,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Log a fitted CLV model as a JSON-backed pyfunc, register it and alias it ``challenger``.

    Must be called inside an active run (see :func:`tracked_run`).

    Parameters
    ----------
    model : retain.clv.ClvModel
        A fitted model (``to_dict()``, ``predict()``, ``time_unit``).
    example_summary : DataFrame
        A few rows of an RFM summary in the model's time unit; gives the signature and the
        input example.
    metrics : mapping, optional
        Metrics to copy onto the version as tags ``metric.<name>`` (the promotion gate reads
        them, falling back to the source run's metrics).
    model_name : str
        Registered model name.
    tags : mapping, optional
        Extra version tags (``retain.sha256`` is reserved: a ValueError).

    Returns
    -------
    ModelVersion
        The new version (alias ``challenger``).
    """
    if mlflow.active_run() is None:
        raise TrackingError("log_clv_model needs an active MLflow run")
    _check_user_tags(tags)
    columns = clv_input_columns(model.time_unit)
    missing = [c for c in columns if c not in example_summary.columns]
    if missing:
        raise ValueError(f"example_summary lacks columns {missing} for time unit {model.time_unit}")
    example = example_summary[columns].head(5)
    output = model.predict(example)
    horizon = getattr(model, "horizon", None)
    params = {"horizon": int(horizon)} if horizon is not None else None
    signature = infer_signature(example.reset_index(drop=True), output, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / CLV_ARTIFACT
        json_path.write_text(json.dumps(model.to_dict(), indent=1, sort_keys=True))
        code_path = Path(tmp) / _CLV_CODE_FILE
        code_path.write_text(_CLV_PYFUNC_CODE)
        info = mlflow.pyfunc.log_model(
            name=model_name,
            python_model=str(code_path),
            artifacts={"clv_model": str(json_path)},
            signature=signature,
            input_example=example.reset_index(drop=True),
            pip_requirements=_pip_requirements("lifetimes"),
        )
    return _finish_registration(model_name, info, metrics, tags)


def log_churn_model(
    model: Any,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
    model_name: str = CHURN_MODEL_NAME,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Log a churn model as a plain-file pyfunc, register it and alias it ``challenger``.

    The model directory holds the model's one saved form, ``data/churn_model.json``
    (:meth:`retain.churn.ChurnModel.to_dict`: the booster in LightGBM's text format, the
    calibrator, the feature list, horizon, CLV feature model, feature settings and
    provenance), as the ``data`` of a ``python_function`` flavour whose ``loader_module`` is
    :mod:`retain.tracking.pyfunc`; nothing is pickled and no code is stored. The signature
    takes the feature columns as doubles and returns one double, the calibrated churn
    probability, so MLflow's pyfunc ``load_model`` and ``spark_udf`` give what
    scoring gives. The version gets the digest tag ``retain.sha256``. Must be called inside an
    active run.

    Parameters
    ----------
    model : retain.churn.ChurnModel
        The trained, calibrated model.
    input_example : DataFrame
        A few rows of model input (the signature is inferred from it).
    metrics : mapping, optional
        Metrics to copy onto the version as tags ``metric.<name>`` (e.g. ``test_roc_auc`` and
        ``baseline_<name>_roc_auc``).
    model_name : str
        Registered model name.
    tags : mapping, optional
        Extra version tags (``retain.sha256`` is reserved: a ValueError).

    Returns
    -------
    ModelVersion
        The new version (alias ``challenger``).
    """
    return _log_feature_model(
        "log_churn_model",
        CHURN_ARTIFACT,
        _CHURN_LOADER,
        model,
        input_example,
        metrics,
        model_name,
        tags,
    )


def _log_feature_model(
    caller: str,
    artifact: str,
    loader_module: str,
    model: Any,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None,
    model_name: str,
    tags: Mapping[str, str] | None,
) -> ModelVersion:
    """Log a LightGBM model over double features (churn or value) as a plain-file pyfunc.

    The shared steps of :func:`log_churn_model` and :func:`log_value_model`: an active run is
    required, user tags are checked, the example must hold every feature column; the model's
    JSON saved form ``artifact`` is the ``data`` of a pyfunc whose loader is
    ``loader_module``, with :func:`churn_signature`; then the version is registered, tagged
    and aliased ``challenger``.
    """
    if mlflow.active_run() is None:
        raise TrackingError(f"{caller} needs an active MLflow run")
    _check_user_tags(tags)
    features = [str(c) for c in model.feature_names]
    missing = [c for c in features if c not in input_example.columns]
    if missing:
        raise ValueError(f"input_example lacks the model's feature columns {missing}")
    example = input_example[features].head(5).reset_index(drop=True).astype("float64")
    signature = churn_signature(features)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / artifact
        model_path.write_text(json.dumps(model.to_dict(), indent=1, sort_keys=True))
        info = mlflow.pyfunc.log_model(
            name=model_name,
            loader_module=loader_module,
            data_path=str(model_path),
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements("lightgbm"),
        )
    return _finish_registration(model_name, info, metrics, tags)


def churn_signature(feature_names: list[str]) -> ModelSignature:
    """The churn pyfunc's signature: every feature a double in, one double (probability) out.

    Parameters
    ----------
    feature_names : list of str
        The model's features (:attr:`retain.churn.ChurnModel.feature_names`).

    Returns
    -------
    ModelSignature
        Named double inputs (``spark_udf`` called without columns reads these), an unnamed
        double output (the calibrated churn probability).
    """
    return ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in feature_names]),
        outputs=Schema([ColSpec("double")]),
    )


def resolve_version(model_name: str, ref: str | int = CHAMPION) -> ModelVersion:
    """Find a registered model version by alias, version number or source run id.

    Parameters
    ----------
    model_name : str
        Registered model name.
    ref : str or int
        An alias (``"champion"``), a version (``3`` or ``"3"``) or a 32-character run id
        (the latest version logged by that run).

    Returns
    -------
    ModelVersion
        The version.

    Raises
    ------
    TrackingError
        When nothing matches.
    """
    mc = client()
    text = str(ref)
    try:
        if text.isdigit():
            return mc.get_model_version(model_name, text)
        if _RUN_ID.match(text):
            found = mc.search_model_versions(f"name='{model_name}' and run_id='{text}'")
            if not found:
                raise TrackingError(f"no version of model {model_name!r} from run {text}")
            return max(found, key=lambda v: int(v.version))
        return mc.get_model_version_by_alias(model_name, text)
    except MlflowException as exc:
        hint = ""
        if text == CHAMPION:
            kind = model_kind(model_name) or "churn"
            option = "--model-version" if kind == CHURN_MODEL_NAME else "--clv-version"
            hint = (
                f"; promote a challenger first (retain promote --model {kind}, see its message "
                f"if refused) or score with {option} challenger"
            )
        raise TrackingError(
            f"model {model_name!r} has no version {text!r} in {mlflow.get_registry_uri()}: "
            f"{exc.message}{hint}"
        ) from exc


# ------------------------------------------------------------------ model integrity


@dataclass(frozen=True)
class _ModelLayout:
    """What retain writes into a model directory besides MLflow's metadata files.

    Two kinds: a "model from code" (``code_file`` set: MLflow's code-model loader runs that
    script, which imports retain's pyfunc class; the saved form is a pyfunc artifact) and a
    loader-module flavour (``code_file`` None: ``loader_module`` is ``loader``, a module of the
    installed retain, and the saved form is the flavour's ``data``).

    Attributes
    ----------
    code_file : str or None
        The "model from code" script (file name), or None for a loader-module flavour.
    model_file : str
        The saved form (JSON), relative to the model directory.
    artifact_key : str
        Its pyfunc artifact key (models from code only).
    train_command : str
        The CLI command that registers a new version (named in refusals).
    loader : str
        The flavour's ``loader_module``.
    """

    code_file: str | None
    model_file: str
    artifact_key: str
    train_command: str
    loader: str = _CODE_MODEL_LOADER

    def describe(self) -> str:
        """The loader and files, as named in refusals."""
        if self.code_file is not None:
            return f"{self.loader} with {self.code_file}"
        return f"{self.loader} with data {self.model_file}"


_CLV_CODE_FILE = "clv_pyfunc.py"
_CLV_LAYOUT = _ModelLayout(
    _CLV_CODE_FILE, f"artifacts/{CLV_ARTIFACT}", "clv_model", "retain train-clv"
)
_CHURN_LAYOUT = _ModelLayout(
    None, f"data/{CHURN_ARTIFACT}", "churn_model", "retain train-churn", _CHURN_LOADER
)
_CHURN_CODE_LAYOUT = _ModelLayout(
    "churn_pyfunc.py", f"artifacts/{CHURN_ARTIFACT}", "churn_model", "retain train-churn"
)
"""Churn versions logged before :mod:`retain.tracking.pyfunc`: still read, never written."""
_CHURN_LAYOUTS = (_CHURN_LAYOUT, _CHURN_CODE_LAYOUT)
_VALUE_LAYOUT = _ModelLayout(
    None, f"data/{VALUE_ARTIFACT}", "value_model", "retain train-value", _VALUE_LOADER
)
_LOADER_MODULE_KEYS = frozenset({"loader_module", "data", "env", "python_version", "streamable"})
"""The keys MLflow writes into a loader-module ``python_function`` flavour (``code`` empty)."""
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".cloudpickle", ".joblib", ".dill")
_PICKLE_PATH_KEYS = ("python_model", "pickled_model")


def _file_digests(root: Path) -> dict[str, str]:
    """SHA-256 hex digest of every file under ``root``, keyed by relative POSIX path.

    Symbolic links to directories are not followed; they are listed with the digest
    ``"symlink"`` so that they count as an unexpected entry.
    """
    digests: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in dirs:
            if (base / name).is_symlink():
                digests[(base / name).relative_to(root).as_posix()] = "symlink"
        for name in files:
            path = base / name
            sha = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            digests[path.relative_to(root).as_posix()] = sha.hexdigest()
    return dict(sorted(digests.items()))


def _download_version(mc: MlflowClient, model_name: str, version: str, dst: str) -> Path:
    """Download exactly the stored files of a model version (no ``registered_model_meta``)."""
    uri = "?"
    try:
        uri = mc.get_model_version_download_uri(model_name, version)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"cannot download model {model_name} version {version} from {uri}: {exc}"
        ) from exc


def _record_digests(mc: MlflowClient, model_name: str, version: str) -> dict[str, str]:
    """Hash the stored files of a fresh version and keep the digests as its ``retain.sha256``."""
    with tempfile.TemporaryDirectory() as tmp:
        digests = _file_digests(_download_version(mc, model_name, version, tmp))
    text = json.dumps(digests, sort_keys=True, separators=(",", ":"))
    if len(text) > _DIGEST_TAG_MAX:
        raise TrackingError(
            f"model {model_name} version {version}: the digests of its {len(digests)} files "
            f"need {len(text)} characters, more than a version tag holds ({_DIGEST_TAG_MAX})"
        )
    mc.set_model_version_tag(model_name, version, DIGEST_TAG, text)
    return digests


def _pickle_marker(node: Any, key: str = "") -> str | None:
    """The first ``key: value`` of an MLmodel flavour that points at pickled data, if any."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            if str(k) in _PICKLE_PATH_KEYS and v not in (None, ""):
                return f"{k}: {v}"
            found = _pickle_marker(v, str(k))
            if found:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _pickle_marker(item, key)
            if found:
                return found
    elif isinstance(node, str):
        low = node.strip().lower()
        if "pickle" in low or low.endswith(_PICKLE_SUFFIXES):
            return f"{key}: {node}"
    return None


def _check_mlmodel(
    root: Path, layouts: tuple[_ModelLayout, ...], model_name: str, version: str
) -> _ModelLayout:
    """Refuse a model directory whose MLmodel is not exactly what retain writes.

    Reads ``MLmodel`` with :func:`yaml.safe_load` and nothing else: a pickle-based flavour
    (cloudpickle/pickle serialization, a ``python_model.pkl``), a pickled file in the
    directory, another flavour than ``python_function``, or a ``python_function`` flavour that
    is not exactly one of ``layouts`` (MLflow's "model from code" loader with retain's script
    and artifacts, or retain's own loader module with its data and no code paths) is a
    :class:`TrackingError`. Returns the layout the directory follows.
    """
    where = f"model {model_name} version {version}"
    layout = layouts[0]
    todo = f"retrain it ({layout.train_command}) or restore the files retain logged"
    mlmodel = root / "MLmodel"
    if not mlmodel.is_file():
        raise TrackingError(f"{where} is refused: it has no MLmodel file; {todo}")
    try:
        doc = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TrackingError(
            f"{where} is refused: its MLmodel is not valid YAML ({type(exc).__name__}); {todo}"
        ) from exc
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise TrackingError(f"{where} is refused: its MLmodel names no flavour; {todo}")
    for flavour, conf in flavors.items():
        marker = _pickle_marker(conf)
        if marker:
            raise TrackingError(
                f"{where} is refused: MLmodel flavour {flavour!r} is pickle-based ({marker}) "
                f"and retain never unpickles a model; {todo}"
            )
    pickled = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.name.lower().endswith(_PICKLE_SUFFIXES)
    )
    if pickled:
        raise TrackingError(
            f"{where} is refused: it contains pickled files {pickled} and retain never "
            f"unpickles a model; {todo}"
        )
    others = sorted(set(flavors) - {"python_function"})
    if others:
        raise TrackingError(
            f"{where} is refused: MLmodel flavour(s) {others} are not written by retain "
            f"(python_function with retain's loader only); {todo}"
        )
    pf = flavors.get("python_function")
    pf = pf if isinstance(pf, dict) else {}
    loader = pf.get("loader_module")
    matching = [lay for lay in layouts if lay.loader == loader]
    if not matching:
        raise TrackingError(
            f"{where} is refused: its python_function flavour uses loader {loader!r}, not "
            f"retain's {' or '.join(lay.describe() for lay in layouts)}; {todo}"
        )
    layout = matching[0]
    if layout.code_file is None:
        _check_loader_module_flavour(pf, layout, where, todo)
        return layout
    code = Path(str(pf.get("model_code_path") or "")).name
    if code != layout.code_file or pf.get("code"):
        raise TrackingError(
            f"{where} is refused: its python_function flavour uses loader {loader!r} with "
            f"code {code or None!r} and code paths {pf.get('code')!r}, not retain's "
            f"{layout.describe()}; {todo}"
        )
    raw = pf.get("artifacts") or {}
    paths = {
        str(k): v.get("path") if isinstance(v, dict) else v
        for k, v in (raw.items() if isinstance(raw, dict) else [])
    }
    expected = {layout.artifact_key: layout.model_file}
    if paths != expected:
        raise TrackingError(
            f"{where} is refused: its pyfunc artifacts {paths} are not retain's {expected}; {todo}"
        )
    return layout


def _check_loader_module_flavour(
    pf: Mapping[str, Any], layout: _ModelLayout, where: str, todo: str
) -> None:
    """Refuse a loader-module flavour with code paths, other data or keys MLflow never writes.

    ``loader_module`` itself was matched by the caller. ``code`` would put files of the
    artifact store on ``sys.path`` ahead of retain (so ``retain.tracking.pyfunc`` could be
    replaced); ``model_code_path``, ``artifacts``, ``model_config`` or ``predict_fn`` belong
    to other kinds of pyfunc.
    """
    if pf.get("code"):
        raise TrackingError(
            f"{where} is refused: its python_function flavour adds code paths "
            f"{pf.get('code')!r} to retain's loader {layout.loader}; {todo}"
        )
    extra = sorted(str(k) for k in set(pf) - _LOADER_MODULE_KEYS - {"code"})
    if extra:
        raise TrackingError(
            f"{where} is refused: its python_function flavour has keys {extra} that retain's "
            f"{layout.describe()} does not write; {todo}"
        )
    if pf.get("data") != layout.model_file:
        raise TrackingError(
            f"{where} is refused: its python_function flavour reads data {pf.get('data')!r}, "
            f"not retain's {layout.model_file}; {todo}"
        )


def _check_digests(root: Path, version: ModelVersion, layout: _ModelLayout) -> None:
    """Refuse unless the files under ``root`` match the version's ``retain.sha256`` exactly."""
    where = f"model {version.name} version {version.version}"
    retrain = f"retrain it ({layout.train_command})"
    text = (version.tags or {}).get(DIGEST_TAG)
    if text is None:
        raise TrackingError(
            f"{where} is refused: it has no {DIGEST_TAG} tag (registered before integrity "
            f"checks); {retrain} to register a verifiable version"
        )
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrackingError(
            f"{where} is refused: its {DIGEST_TAG} tag is not valid JSON; {retrain}"
        ) from exc
    if not isinstance(expected, dict) or not expected:
        raise TrackingError(f"{where} is refused: its {DIGEST_TAG} tag lists no files; {retrain}")
    actual = _file_digests(root)
    problems = [
        f"{p} changed" for p in sorted(expected) if p in actual and actual[p] != expected[p]
    ]
    problems += [f"{p} was added" for p in sorted(set(actual) - set(expected))]
    problems += [f"{p} is missing" for p in sorted(set(expected) - set(actual))]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise TrackingError(
            f"{where} is refused: its files differ from the {DIGEST_TAG} digests recorded at "
            f"registration ({shown}); {retrain} or restore its original files in the "
            "artifact store"
        )


def _fetch_verified(
    model_name: str, ref: str | int, layouts: tuple[_ModelLayout, ...], dst: str
) -> tuple[Path, ModelVersion, _ModelLayout]:
    """Resolve, download and verify a model version: its local folder, version and layout.

    The MLmodel check (:func:`_check_mlmodel`) runs first, before any other file is read; then
    every file is compared with the ``retain.sha256`` tag (:func:`_check_digests`).
    """
    number = str(resolve_version(model_name, ref).version)
    mc = client()
    try:  # fresh tags, whichever way the version was found
        version = mc.get_model_version(model_name, number)
    except MlflowException as exc:
        raise TrackingError(f"cannot read {model_name} version {number}: {exc.message}") from exc
    root = _download_version(mc, model_name, number, dst)
    layout = _check_mlmodel(root, layouts, model_name, number)
    _check_digests(root, version, layout)
    return root, version, layout


def load_clv_model(ref: str | int = CHAMPION, model_name: str = CLV_MODEL_NAME) -> LoadedClvModel:
    """Load a registered CLV model from its JSON artifact (no flavour loader, no pickle).

    The version is downloaded, its ``MLmodel`` must describe retain's "model from code" pyfunc
    (no pickle-based flavour) and every file must match the ``retain.sha256`` tag recorded at
    registration; only then is ``artifacts/clv_model.json`` read with :mod:`json`.

    Parameters
    ----------
    ref : str or int
        Alias, version number or run id (see :func:`resolve_version`).
    model_name : str
        Registered model name.

    Returns
    -------
    LoadedClvModel
        ``(model, version)``; ``model`` is a :class:`retain.clv.ClvModel`.

    Raises
    ------
    TrackingError
        When the version does not exist, cannot be downloaded, is pickle-based or not written
        by retain, has no digest tag, or a file was changed, added or removed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root, version, layout = _fetch_verified(model_name, ref, (_CLV_LAYOUT,), tmp)
        data = json.loads((root / layout.model_file).read_text())
    return LoadedClvModel(ClvModel.from_dict(data), version)


def load_churn_model(
    ref: str | int = CHAMPION, model_name: str = CHURN_MODEL_NAME
) -> LoadedChurnModel:
    """Load a registered churn model from its one saved form (no flavour loader, no pickle).

    The version is downloaded and verified as in :func:`load_clv_model` (its ``MLmodel`` must
    name retain's loader module :mod:`retain.tracking.pyfunc` with ``data/churn_model.json``,
    or, for versions logged before it, retain's "model from code" script with
    ``artifacts/churn_model.json``); then that JSON is read with :mod:`json` and rebuilt with
    :meth:`retain.churn.ChurnModel.from_dict` (the booster from LightGBM's text format).

    Parameters
    ----------
    ref : str or int
        Alias, version number or run id (see :func:`resolve_version`).
    model_name : str
        Registered model name.

    Returns
    -------
    LoadedChurnModel
        ``(model, version)``; ``model`` is a :class:`retain.churn.ChurnModel`.

    Raises
    ------
    TrackingError
        When the version does not exist, cannot be downloaded, is pickle-based or not written
        by retain, has no digest tag, a file was changed, added or removed, or the saved form
        is not a churn model this version of retain reads.
    """
    from retain.churn import ChurnModel  # (b) lightgbm and sklearn only when loading one

    model, version = _load_json_model(
        model_name, ref, _CHURN_LAYOUTS, ChurnModel.from_dict, _CHURN_LAYOUT.train_command
    )
    return LoadedChurnModel(model, version)


def _load_json_model(
    model_name: str,
    ref: str | int,
    layouts: tuple[_ModelLayout, ...],
    from_dict: Callable[[dict[str, Any]], Any],
    train_command: str,
) -> tuple[Any, ModelVersion]:
    """Download and verify a version (:func:`_fetch_verified`), rebuild its JSON saved form
    with ``from_dict``; a saved form ``from_dict`` refuses is a TrackingError naming
    ``train_command``."""
    with tempfile.TemporaryDirectory() as tmp:
        root, version, layout = _fetch_verified(model_name, ref, layouts, tmp)
        data = json.loads((root / layout.model_file).read_text())
    try:
        model = from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise TrackingError(
            f"model {model_name} version {version.version} cannot be read ({exc}); retrain it "
            f"({train_command})"
        ) from exc
    return model, version


def log_value_model(
    model: Any,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float] | None = None,
    model_name: str = VALUE_MODEL_NAME,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Log a value model as a plain-file pyfunc, register it and alias it ``challenger``.

    As :func:`log_churn_model`: the one saved form ``data/value_model.json``
    (:meth:`retain.clv.ml.ValueModel.to_dict`, boosters in LightGBM's text format) is the
    ``data`` of a ``python_function`` flavour whose loader is
    :mod:`retain.tracking.value_pyfunc`; the signature takes the features as doubles and returns
    the predicted value. The version gets the digest tag and the ``metric.*`` tags. Must be
    called inside an active run.

    Returns
    -------
    ModelVersion
        The new version (alias ``challenger``).
    """
    return _log_feature_model(
        "log_value_model",
        VALUE_ARTIFACT,
        _VALUE_LOADER,
        model,
        input_example,
        metrics,
        model_name,
        tags,
    )


class LoadedValueModel(NamedTuple):
    """A registered value model and its registry entry."""

    model: Any
    version: ModelVersion


def load_value_model(
    ref: str | int = CHAMPION, model_name: str = VALUE_MODEL_NAME
) -> LoadedValueModel:
    """Load a registered value model from its one saved form (no flavour loader, no pickle).

    Verified as :func:`load_churn_model` (retain's loader module, the ``retain.sha256``
    digests), then read with :mod:`json` and :meth:`retain.clv.ml.ValueModel.from_dict`.

    Raises
    ------
    TrackingError
        When the version is missing, not written by retain, tampered with, or not a value
        model this version of retain reads.
    """
    from retain.clv.ml import ValueModel  # (b) lightgbm only when loading one

    model, version = _load_json_model(
        model_name, ref, (_VALUE_LAYOUT,), ValueModel.from_dict, _VALUE_LAYOUT.train_command
    )
    return LoadedValueModel(model, version)


_MEANING_SETTINGS = ("windows_days", "trend_window_days")
"""Feature settings that decide which columns are built and what they hold; the generic
event types are not among them (every type either model reads is built,
:func:`retain.features.build.model_feature_config`)."""


def _feature_meaning(settings: Mapping[str, Any]) -> dict[str, Any]:
    config = FeatureConfig(**settings)
    return {k: getattr(config, k) for k in _MEANING_SETTINGS}


def _check_value_fits(value: LoadedValueModel, clv: Any, churn: Any) -> None:
    """Refuse a value model that predicts another horizon than the CLV model, whose
    purchase-model features come from another BTYD model than the churn model's, or that was
    trained with other feature windows than the churn model (scoring builds one feature table,
    with the churn model's settings, for both)."""
    where = f"value model {value.version.name} version {value.version.version}"
    if int(value.model.horizon_months) != int(clv.horizon):
        raise TrackingError(
            f"{where} predicts {value.model.horizon_months} months, the CLV model {clv.horizon}; "
            "retrain one of them with the same clv.horizon_months (retain train-value)"
        )
    if value.model.clv_feature_model != churn.clv_feature_model:
        raise TrackingError(
            f"{where} reads {value.model.clv_feature_model} purchase-model features, the churn "
            f"model {churn.clv_feature_model}; retrain one with the other's "
            "churn.clv_feature_model"
        )
    ours = _feature_meaning(value.model.feature_settings)
    theirs = _feature_meaning(churn.feature_settings)
    differ = [k for k in _MEANING_SETTINGS if ours[k] != theirs[k]]
    if differ:
        shown = "; ".join(
            f"features.{k} {_plain_setting(ours[k])} vs {_plain_setting(theirs[k])}"
            for k in differ
        )
        raise TrackingError(
            f"{where} was trained with other feature settings than the churn model ({shown}); "
            "scoring builds the features once, with the churn model's: retrain the value model "
            "(retain train-value) with the churn model's feature settings, or set clv.method: "
            "btyd"
        )


def _plain_setting(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _chosen_method(method: str, value: LoadedValueModel) -> str:
    """``btyd`` or ``ml`` for ``clv.method`` and this value model (decided once, at load)."""
    from retain.clv.value_fit import choose_method  # (b) the value model's stack when used

    try:
        return choose_method(method, value.model.holdout)
    except ValueError as exc:
        raise TrackingError(
            f"value model {value.version.name} version {value.version.version}: {exc}; retrain "
            "the value model (retain train-value) or set clv.method: btyd"
        ) from exc


@dataclass(frozen=True)
class LoadedScoringModels:
    """The models of a scoring run and their registry entries.

    Attributes
    ----------
    models : retain.scoring.ScoringModels
        The CLV and churn models with their versions.
    clv_version, churn_version : ModelVersion
        The registry entries used.
    """

    models: Any
    clv_version: ModelVersion
    churn_version: ModelVersion
    value_version: ModelVersion | None = None


def load_scoring_models(
    cfg: RunConfig,
    clv_ref: str | int = CHAMPION,
    churn_ref: str | int = CHAMPION,
    *,
    allow_other_dataset: bool = False,
    value_ref: str | int = CHAMPION,
    clv_method: str | None = None,
) -> LoadedScoringModels:
    """Load the CLV and churn models a scoring run (or a report on one) applies.

    The one loader of score, report and every engine: the registered names come from the
    config (:func:`registered_name`), both versions are verified (:func:`load_clv_model`,
    :func:`load_churn_model`) and must have been trained on the config's data set
    (:func:`check_dataset`). Everything the churn model needs to rebuild its inputs (horizon,
    CLV feature model, feature windows) travels inside it.

    With a ``clv_method`` other than ``btyd`` the value model is loaded too, verified alike,
    checked against the other two (same CLV horizon, purchase-model features and feature
    windows), and the CLV the scores use is decided here, once
    (:attr:`retain.scoring.ScoringModels.chosen_method`).

    Parameters
    ----------
    cfg : RunConfig
        The run config.
    clv_ref, churn_ref : str or int
        Alias, version number or run id of each model.
    allow_other_dataset : bool
        Accept versions trained on another data set.
    value_ref : str or int
        The value model's version, loaded only when the method is ``ml`` or ``auto``.
    clv_method : {"btyd", "ml", "auto"}, optional
        The method the models are loaded for; default ``clv.method`` of the config (a report
        passes the one its scores were made with).

    Returns
    -------
    LoadedScoringModels

    Raises
    ------
    TrackingError
        A version is missing, fails its integrity check, or was trained on another data set;
        the value model does not fit the other two, or lacks the recorded test figures
        ``auto`` compares.
    """
    from retain.scoring import ScoringModels  # (b) the scoring stack (numba) only when scoring

    # both integrity checks first: a tampered model is refused as such, whatever its data set
    clv = load_clv_model(clv_ref, registered_name(cfg, CLV_MODEL_NAME))
    churn = load_churn_model(churn_ref, registered_name(cfg, CHURN_MODEL_NAME))
    check_dataset(clv.version, cfg, allow_other_dataset)
    check_dataset(churn.version, cfg, allow_other_dataset)
    method = cfg.clv.method if clv_method is None else clv_method
    value, chosen = None, "btyd"
    if method != "btyd":
        value = load_value_model(value_ref, registered_name(cfg, VALUE_MODEL_NAME))
        check_dataset(value.version, cfg, allow_other_dataset)
        _check_value_fits(value, clv.model, churn.model)
        chosen = _chosen_method(method, value)
    models = ScoringModels(
        clv=clv.model,
        churn=churn.model,
        clv_version=str(clv.version.version),
        churn_version=str(churn.version.version),
        value=None if value is None else value.model,
        value_version="" if value is None else str(value.version.version),
        clv_method=method,
        chosen_method=chosen,
    )
    return LoadedScoringModels(
        models, clv.version, churn.version, None if value is None else value.version
    )


# ------------------------------------------------------------------------ promotion


def version_metrics(version: ModelVersion) -> dict[str, float]:
    """Metrics of a model version: its source run's metrics, updated by ``metric.*`` tags.

    Parameters
    ----------
    version : ModelVersion
        The registry entry.

    Returns
    -------
    dict
        Metric name to value.
    """
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics.update(client().get_run(version.run_id).data.metrics)
        except MlflowException as exc:  # a deleted source run leaves the version tags
            if exc.error_code not in _NOT_FOUND:
                raise TrackingError(f"cannot read run {version.run_id}: {exc.message}") from exc
    for key, value in (version.tags or {}).items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
            except ValueError:
                continue
    return metrics


_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def alias_version(model_name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the model or the alias does not exist.

    Parameters
    ----------
    model_name : str
        Registered model name.
    alias : str
        E.g. ``champion``.

    Returns
    -------
    ModelVersion or None

    Raises
    ------
    TrackingError
        When the registry cannot answer (only "no such model/alias" means absent: a server
        error must not look like "no champion yet", which would promote without comparison).
    """
    try:
        return client().get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise TrackingError(f"cannot read alias {model_name}@{alias}: {exc.message}") from exc


def promote(
    model_name: str, cfg: PromotionConfig, force_reason: str | None = None
) -> PromotionDecision:
    """Move the ``champion`` alias to the ``challenger`` when the gate accepts it (or by force).

    Reads both versions' metrics (:func:`version_metrics`), asks the pure gate
    (:func:`retain.promotion.decide`, which holds the rules) and applies its decision: on
    acceptance the old champion gets the alias ``previous_champion``. Either way the
    challenger version gets tags ``promotion.decision``, ``promotion.reason`` and
    ``promotion.decided_at``.

    With ``force_reason`` the challenger becomes champion whatever the gate says; the gate is
    still asked and its verdict kept (tag ``promotion.gate_reason``), and the version is tagged
    ``promotion.forced=true`` with ``promotion.reason`` set to the given reason.

    Parameters
    ----------
    model_name : str
        A registered churn or CLV model name (see :func:`model_kind`).
    cfg : PromotionConfig
        Tolerances and the CLV metric.
    force_reason : str, optional
        Promote by force, for this reason (must not be blank).

    Returns
    -------
    PromotionDecision
        The decision with its reason (``forced`` set on a forced promotion).

    Raises
    ------
    TrackingError
        When the model has no ``challenger`` or the model name has no rule.
    ValueError
        When ``force_reason`` is given but blank.
    """
    if force_reason is not None and not force_reason.strip():
        raise ValueError("a forced promotion needs a reason")
    kind = model_kind(model_name)
    if kind not in GATE_KINDS:
        raise TrackingError(f"no promotion rule for model {model_name!r} (churn, clv or value)")
    challenger = alias_version(model_name, CHALLENGER)
    if challenger is None:
        raise TrackingError(
            f"model {model_name!r} has no {CHALLENGER!r} version in {mlflow.get_registry_uri()}"
        )
    champion = alias_version(model_name, CHAMPION)
    champ_version = str(champion.version) if champion is not None else None
    chal_version = str(challenger.version)
    if champ_version == chal_version:
        return PromotionDecision(
            True,
            f"version {chal_version} is already the champion; nothing to do",
            chal_version,
            champ_version,
            model_name,
        )
    gate = decide(
        kind,
        version_metrics(challenger),
        version_metrics(champion) if champion is not None else None,
        cfg,
    )
    if force_reason is None:
        return _apply_decision(model_name, gate, chal_version, champ_version)
    reason = force_reason.strip()
    verdict = "accepted" if gate.accepted else "refused"
    forced = GateResult(
        True, f"forced: {reason} (the gate {verdict} it: {gate.reason})", gate.metrics
    )
    decision = _apply_decision(model_name, forced, chal_version, champ_version)
    mc = client()
    for key, value in {
        "promotion.forced": "true",
        "promotion.reason": reason,
        "promotion.gate_reason": f"{verdict}: {gate.reason}",
    }.items():
        mc.set_model_version_tag(model_name, chal_version, key, value)
    return PromotionDecision(
        True, decision.reason, chal_version, champ_version, model_name, gate.metrics, forced=True
    )


def _apply_decision(
    model_name: str, gate: GateResult, chal_version: str, champ_version: str | None
) -> PromotionDecision:
    """Move the aliases as the gate decided and record the decision on the challenger."""
    mc = client()
    if gate.accepted:
        if champ_version is not None:
            mc.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, champ_version)
        mc.set_registered_model_alias(model_name, CHAMPION, chal_version)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {
        "promotion.decision": "accepted" if gate.accepted else "refused",
        "promotion.reason": gate.reason,
        "promotion.decided_at": stamp,
        "promotion.champion_before": str(champ_version),
    }.items():
        mc.set_model_version_tag(model_name, chal_version, key, value)
    return PromotionDecision(
        gate.accepted, gate.reason, chal_version, champ_version, model_name, gate.metrics
    )


def rollback(model_name: str) -> str:
    """Point ``champion`` back at the ``previous_champion`` version (and swap the two).

    A second call undoes the first. The versions get the tag ``promotion.rolled_back_at``.

    Parameters
    ----------
    model_name : str
        Registered model name.

    Returns
    -------
    str
        The version that is champion now.

    Raises
    ------
    TrackingError
        When the model has no ``champion`` or no ``previous_champion``.
    """
    champion = alias_version(model_name, CHAMPION)
    previous = alias_version(model_name, PREVIOUS_CHAMPION)
    if champion is None or previous is None:
        raise TrackingError(
            f"model {model_name!r} needs both {CHAMPION!r} and {PREVIOUS_CHAMPION!r} to roll back"
        )
    mc = client()
    old, new = str(champion.version), str(previous.version)
    mc.set_registered_model_alias(model_name, CHAMPION, new)
    mc.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, old)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for version in (old, new):
        mc.set_model_version_tag(model_name, version, "promotion.rolled_back_at", stamp)
    return new
