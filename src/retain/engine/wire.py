"""Plain serialisation of the small results a Spark task sends back to the driver.

Per-partition summaries (value counts, counted RFM triples, the inputs' record, customer
counts) travel as JSON in which arrays are NumPy ``.npy`` bytes (``allow_pickle=False``) and
tables Parquet bytes, both base64-encoded. Loading builds only these types and the two record
classes named here: nothing in the bytes can run code, unlike pickle.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pandas as pd

from retain.digests import TableDigest
from retain.inputs import InputsRecord, TableRecord

__all__ = ["dumps", "loads"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return _encode(obj.item())
    if isinstance(obj, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, obj, allow_pickle=False)
        return {"ndarray": _b64(buffer.getvalue())}
    if isinstance(obj, pd.DataFrame) and len(obj) == 0:  # a schema: dtypes exactly
        columns = [[str(c), str(t)] for c, t in obj.dtypes.items()]
        index = [obj.index.name, str(obj.index.dtype)]
        return {"schema": {"columns": columns, "index": index}}
    if isinstance(obj, pd.DataFrame):
        buffer = io.BytesIO()
        obj.to_parquet(buffer)
        return {"frame": _b64(buffer.getvalue())}
    if isinstance(obj, pd.Timestamp):
        return {"timestamp": obj.isoformat()}
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, TableDigest):
        state = {"with_index": obj.with_index, "header": obj.header, "rows": obj.rows}
        return {"digest": _encode({**state, "sums": obj.sums})}
    if isinstance(obj, TableRecord):
        return {"table_record": _encode((obj.rows, obj.digest, obj.like))}
    if isinstance(obj, InputsRecord):
        fields = (obj.counts, obj.rejects, obj.warnings, obj.as_of, obj.tables)
        return {"inputs_record": _encode((*fields, obj.first_day, obj.customers))}
    raise TypeError(f"cannot send a {type(obj).__name__} from a Spark task")


def _decode(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    (kind, value), *_ = obj.items()
    if kind == "ndarray":
        return np.load(io.BytesIO(base64.b64decode(value)), allow_pickle=False)
    if kind == "frame":
        return pd.read_parquet(io.BytesIO(base64.b64decode(value)))
    if kind == "schema":
        columns = {c: pd.Series([], dtype=t) for c, t in value["columns"]}
        name, dtype = value["index"]
        return pd.DataFrame(columns, index=pd.Index([], dtype=dtype, name=name))
    if kind == "timestamp":
        return pd.Timestamp(value)
    if kind == "tuple":
        return tuple(_decode(v) for v in value)
    if kind == "dict":
        return {_decode(k): _decode(v) for k, v in value}
    if kind == "digest":
        state = _decode(value)
        digest = TableDigest(pd.DataFrame())
        digest.with_index, digest.header = bool(state["with_index"]), dict(state["header"])
        digest.rows, digest.sums = state["rows"], state["sums"].astype(np.uint64)
        return digest
    if kind == "table_record":
        return TableRecord(*_decode(value))
    if kind == "inputs_record":
        return InputsRecord(*_decode(value))
    raise ValueError(f"unknown value kind {kind!r} in a Spark task's result")


def dumps(obj: Any) -> bytes:
    """``obj`` as bytes (see the module docstring for the types allowed).

    Parameters
    ----------
    obj : object
        A per-partition summary.

    Returns
    -------
    bytes
    """
    return json.dumps(_encode(obj)).encode("utf-8")


def loads(data: bytes) -> Any:
    """The object :func:`dumps` gave ``data`` for.

    Parameters
    ----------
    data : bytes
        :func:`dumps` output.

    Returns
    -------
    object
    """
    return _decode(json.loads(data.decode("utf-8")))
