"""Shared fixtures: small data, temporary MLflow stores, no writes to the working directory."""

from __future__ import annotations

import pandas as pd
import pytest

from retain.datasets import load_cdnow


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    """The CDNOW sample transactions (2,357 customers)."""
    return load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_master() -> pd.DataFrame:
    """The full CDNOW master transactions (23,570 customers)."""
    return load_cdnow("master")
