"""What a run ran on: its input tables as MLflow datasets, and its description.

- :func:`log_inputs` records every input table of a run (transactions, events, customers
  when present) with :func:`mlflow.log_input`: one dataset per table named
  ``<config name>.<table>``, its source (the file, or the embedded/generated source), a
  digest of the clean table (:func:`table_digest`), a profile and a schema; the input tags
  hold the rows in, used and rejected and the as-of date; the context says what for
  (:data:`TRAINING`, :data:`SCORING`).
- :func:`describe_run` sets the run's description (the ``mlflow.note.content`` tag the MLflow
  UI shows on the run page); :func:`data_label` names the data in such a sentence.

The digest is our own, not MLflow's pandas one. MLflow's ``from_pandas`` digest costs about
2 s per million rows (it maps ``type`` over every cell of the whole frame) yet hashes only
the first 10,000 rows, so a change further down goes unnoticed; its schema inference costs
another ~5 s per million rows. :func:`table_digest` hashes every row once with pandas'
vectorised row hash, in bounded chunks (~0.1 s per million rows of a transactions table),
and is exact: any changed value, row, column, dtype or order changes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.filesystem_dataset_source import FileSystemDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.types import ColSpec, DataType, Schema

from retain.config import RunConfig
from retain.inputs import Inputs, InputsRecord, record_inputs

DESCRIPTION_TAG = "mlflow.note.content"
"""The run tag MLflow shows as the run's description."""
TRAINING = "training"
"""Input context of the training jobs."""
SCORING = "scoring"
"""Input context of the scoring job."""
EVALUATION = "evaluation"
"""Input context of the evaluate_actions job (the data after a scoring date)."""
INPUT_TABLES = ("transactions", "events", "customers")


def describe_run(text: str) -> None:
    """Set the description of the active run (shown on its page in the MLflow UI).

    Parameters
    ----------
    text : str
        One or two plain sentences saying what ran on what.
    """
    mlflow.set_tag(DESCRIPTION_TAG, text)


def data_label(cfg: RunConfig, inputs: Inputs | InputsRecord) -> str:
    """The data of a run in a few words, e.g. ``cdnow_master (69,659 transactions, 23,570
    customers)``.

    Parameters
    ----------
    cfg : RunConfig
        The run config (its ``data`` section names the source).
    inputs : Inputs
        The loaded inputs (clean tables).

    Returns
    -------
    str
        The source (embedded name, ``synthetic``, or the transactions file name) with the
        clean transactions, events (when present) and distinct customers counted.
    """
    data = cfg.data
    if data.source == "files" and data.transactions is not None:
        source = Path(data.transactions.path).name
    else:
        source = data.source
    record = inputs if isinstance(inputs, InputsRecord) else record_inputs(inputs)
    parts = [f"{record.tables['transactions'].rows:,} transactions"]
    if "events" in record.tables:
        parts.append(f"{record.tables['events'].rows:,} events")
    parts.append(f"{record.customers:,} customers")
    return f"{source} ({', '.join(parts)})"


def _source(cfg: RunConfig, table: str) -> DatasetSource:
    """The table's file (source ``files``) or the embedded/generated source, as MLflow knows it."""
    data = cfg.data
    spec = getattr(data, table, None) if data.source == "files" else None
    if spec is not None:
        return _FileSource(str(Path(spec.path).resolve()))
    return CodeDatasetSource({"retain.source": data.source, "retain.dataset": data.dataset_id()})


_KIND_TYPES = {"f": DataType.double, "i": DataType.long, "u": DataType.long, "b": DataType.boolean}


def _schema(frame: pd.DataFrame) -> Schema:
    """Column names and types from the dtypes alone (no pass over the values)."""
    cols = [] if frame.index.name is None else [(frame.index.name, frame.index.dtype)]
    cols += list(frame.dtypes.items())
    specs = []
    for name, dtype in cols:
        kind = getattr(dtype, "kind", "O")
        if kind == "M":
            kind_type = DataType.datetime
        else:
            kind_type = _KIND_TYPES.get(kind, DataType.string)
        specs.append(ColSpec(type=kind_type, name=str(name)))
    return Schema(specs)


class _FileSource(FileSystemDatasetSource):
    """A local input file (its absolute path); MLflow records it, retain reads it itself."""

    def __init__(self, uri: str) -> None:
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    @staticmethod
    def _get_source_type() -> str:
        return "local"

    def load(self, dst_path: str | None = None) -> str:  # pragma: no cover - not used
        raise NotImplementedError("retain reads its inputs itself")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> _FileSource:  # pragma: no cover - not resolvable
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> _FileSource:
        return cls(source_dict["uri"])


class _TableDataset(MetaDataset):
    """An input table as MLflow records it: name, source, digest, schema and profile."""

    def __init__(
        self, source: DatasetSource, name: str, digest: str, schema: Schema, rows: int
    ) -> None:
        self._rows = rows
        self._columns = len(schema.inputs)
        super().__init__(source=source, name=name, digest=digest, schema=schema)

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": self._rows, "num_columns": self._columns}

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "profile": json.dumps(self.profile)}


def input_tags(counts: Mapping[str, int], as_of: pd.Timestamp | None) -> dict[str, str]:
    """The input tags of one table: rows in, used and rejected, and the as-of date."""
    tags = {
        key: str(counts[key]) for key in ("rows_in", "rows_used", "rows_rejected") if key in counts
    }
    if as_of is not None:
        tags["as_of"] = pd.Timestamp(as_of).date().isoformat()
    return tags


def log_inputs(cfg: RunConfig, inputs: Inputs | InputsRecord, context: str) -> dict[str, str]:
    """Log each input table of the active run as an MLflow dataset input.

    Parameters
    ----------
    cfg : RunConfig
        The run config: its name prefixes the dataset names; its ``data`` section gives the
        sources.
    inputs : Inputs
        The loaded inputs; each clean table present is logged (``transactions``, ``events``,
        ``customers``).
    context : str
        What the run used them for: :data:`TRAINING`, :data:`SCORING` or :data:`EVALUATION`.

    Returns
    -------
    dict
        Dataset name (``<config name>.<table>``) to digest, for each table logged.

    Notes
    -----
    Each table's row counts (``rows_in``, ``rows_used``, ``rows_rejected`` and
    ``rejected_<reason>``) are also logged as metrics ``input_<table>_<count>``, and the
    inputs' rejected-share warnings as the tag ``warning.rejected_rows``.
    """
    record = inputs if isinstance(inputs, InputsRecord) else record_inputs(inputs)
    digests: dict[str, str] = {}
    for table in INPUT_TABLES:
        if table not in record.tables:
            continue
        rec = record.tables[table]
        name = f"{cfg.name}.{table}"
        digest = rec.digest.hexdigest()
        schema = _schema(rec.like)
        dataset = _TableDataset(_source(cfg, table), name, digest, schema, rec.rows)
        tags = input_tags(record.counts.get(table, {"rows_used": rec.rows}), record.as_of)
        mlflow.log_input(dataset, context=context, tags=tags)
        digests[name] = digest
        counts = record.counts.get(table, {})
        # rows in/used/rejected and rejected rows per reason, as metrics (comparable by run)
        mlflow.log_metrics({f"input_{table}_{key}": float(n) for key, n in counts.items()})
    if record.warnings:
        mlflow.set_tag("warning.rejected_rows", " | ".join(record.warnings)[:5000])
    return digests
