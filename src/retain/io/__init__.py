"""Storage: reading one table (:mod:`retain.io.read`) and writing outputs (:mod:`retain.io.write`).

The other names here are re-exported from their homes so that ``from retain.io import X`` keeps
working: :class:`~retain.contracts.DataError` from :mod:`retain.contracts`, the row checks and
quarantine from :mod:`retain.validation`, and the run's inputs (:func:`load_inputs` and its
date checks) from :mod:`retain.inputs`. New code imports from those homes.

:mod:`retain.inputs` itself reads through :mod:`retain.io.read`, so its names are imported on
first use (:func:`__getattr__`) rather than at import time, which would be a cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from retain.contracts import DataError
from retain.io.read import _csv_error as _csv_error  # used by tests/test_input_corpus.py
from retain.io.read import read_table
from retain.io.write import (
    MARKER_FILE,
    OutputError,
    check_output_folder,
    output_folder,
    owned_directory,
    read_marker,
    write_json_atomic,
    write_rejects,
    write_sorted_parts_atomic,
    write_table_atomic,
    write_text_atomic,
)
from retain.validation import (
    TABLE_REASONS,
    empty_rejects,
    row_counts,
    validate_customers,
    validate_events,
    validate_transactions,
)

if TYPE_CHECKING:
    from retain.inputs import (
        Inputs,
        check_dates_against_data,
        config_dates,
        load_inputs,
        observed_until,
        rejected_customers,
    )

__all__ = [
    "MARKER_FILE",
    "TABLE_REASONS",
    "DataError",
    "Inputs",
    "OutputError",
    "check_dates_against_data",
    "check_output_folder",
    "config_dates",
    "output_folder",
    "owned_directory",
    "read_marker",
    "empty_rejects",
    "load_inputs",
    "observed_until",
    "read_table",
    "rejected_customers",
    "row_counts",
    "validate_customers",
    "validate_events",
    "validate_transactions",
    "write_json_atomic",
    "write_sorted_parts_atomic",
    "write_rejects",
    "write_table_atomic",
    "write_text_atomic",
]

_FROM_INPUTS = frozenset(
    {
        "Inputs",
        "check_dates_against_data",
        "config_dates",
        "load_inputs",
        "observed_until",
        "rejected_customers",
    }
)


def __getattr__(name: str) -> Any:
    """The names of :mod:`retain.inputs`, imported on first use."""
    if name in _FROM_INPUTS:
        value = getattr(importlib.import_module("retain.inputs"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_INPUTS)
