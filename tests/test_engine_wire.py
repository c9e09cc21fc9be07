"""What Spark tasks send back travels as plain data (JSON, .npy, Parquet), never pickle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retain.engine import wire
from retain.inputs import Inputs, record_inputs
from retain.synthetic import generate_synthetic
from retain.validation import empty_rejects


def test_summaries_round_trip_exactly() -> None:
    data = generate_synthetic(200, "2022-01-01", "2023-06-30", seed=3, with_events=True)
    inputs = Inputs(
        transactions=data.transactions,
        events=data.events,
        customers=None,
        rejects=empty_rejects(),
        counts={"transactions": {"rows_in": len(data.transactions), "rows_used": 7}},
        as_of=pd.Timestamp("2023-06-30"),
    )
    record = record_inputs(inputs)
    counts = {"r_score": (np.array([1.0, 2.5]), np.array([3, 4], dtype=np.int64))}
    triples = pd.DataFrame({"frequency": [0.0, 1.0], "n": np.array([5, 2], dtype=np.int64)})
    back = wire.loads(wire.dumps((record, counts, triples, {"customers_in": 3})))
    got, got_counts, got_triples, got_dict = back
    assert got_dict == {"customers_in": 3}
    np.testing.assert_array_equal(got_counts["r_score"][0], counts["r_score"][0])
    assert got_counts["r_score"][1].dtype == np.int64
    pd.testing.assert_frame_equal(got_triples, triples)
    assert got.counts == record.counts and got.as_of == record.as_of
    for name, rec in record.tables.items():
        assert got.tables[name].rows == rec.rows
        assert got.tables[name].digest.hexdigest() == rec.digest.hexdigest()
        pd.testing.assert_frame_equal(got.tables[name].like, rec.like)


def test_only_known_kinds_load() -> None:
    with pytest.raises(ValueError, match="unknown value kind"):
        wire.loads(json.dumps({"pickle": "gASV"}).encode())
    with pytest.raises(TypeError, match="cannot send"):
        wire.dumps(object())
