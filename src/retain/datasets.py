"""Embedded data sets: the CDNOW files shipped inside ``lifetimes``.

The synthetic generator with known ground truth lives in :mod:`retain.synthetic`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd

from retain.contracts import CUSTOMER_ID, TIMESTAMP

CDNOW_OBSERVED_UNTIL = pd.Timestamp("1998-06-30")
"""Last day covered by both CDNOW files."""


def cdnow_path(kind: Literal["sample", "master"] = "master") -> Path:
    """Path of a CDNOW file inside the installed ``lifetimes`` package.

    Parameters
    ----------
    kind : {"sample", "master"}
        ``sample``: 2,357 customers, 6,919 rows; ``master``: 23,570 customers, 69,659 rows.

    Returns
    -------
    Path
        The file path. No download takes place.
    """
    names = {"sample": "CDNOW_sample.txt", "master": "CDNOW_master.txt"}
    if kind not in names:
        raise ValueError(f"kind must be 'sample' or 'master', got {kind!r}")
    path = Path(str(resources.files("lifetimes.datasets").joinpath(names[kind])))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the 'lifetimes' package")
    return path


def load_cdnow(kind: Literal["sample", "master"] = "master") -> pd.DataFrame:
    """Load CDNOW transactions in the transaction contract.

    Parameters
    ----------
    kind : {"sample", "master"}
        Which file to read.

    Returns
    -------
    DataFrame
        Columns ``customer_id`` (str), ``timestamp``, ``amount`` (dollars) and ``quantity``
        (number of CDs), in file order.
    """
    path = cdnow_path(kind)
    if kind == "sample":
        names = ["master_id", CUSTOMER_ID, "date", "quantity", "amount"]
        raw = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=names,
            dtype={CUSTOMER_ID: str, "date": str, "master_id": str},
        )
    else:
        names = [CUSTOMER_ID, "date", "quantity", "amount"]
        raw = pd.read_csv(
            path, sep=r"\s+", header=0, names=names, dtype={CUSTOMER_ID: str, "date": str}
        )
    return pd.DataFrame(
        {
            CUSTOMER_ID: raw[CUSTOMER_ID].astype("string"),
            TIMESTAMP: pd.to_datetime(raw["date"], format="%Y%m%d").astype("datetime64[ns]"),
            "amount": raw["amount"].astype(float),
            "quantity": raw["quantity"].astype(float),
        }
    )
