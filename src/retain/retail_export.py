"""A retail export shaped like the well-known "Online Retail" file, from simulated customers.

Real exports are not tidy: the amount is ``Quantity x UnitPrice``, dates read like
``12/1/2010 8:26``, customer ids are written ``17850.0`` and some are blank, cancellations are
invoices starting with ``C`` with a negative quantity, and some lines repeat. This module turns
the purchases of :func:`retain.synthetic.generate_synthetic` (customers who follow BG/NBD and
Gamma-Gamma, so the models have something to learn) into such a file, for tests and demos of
the path a new user takes: ``retain init`` and the whole chain with no hand edits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from retain.synthetic import generate_synthetic

COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
"""The columns of the export, in order."""

__all__ = ["COLUMNS", "online_retail_export", "write_online_retail"]

_ITEMS = ("85123A", "71053", "84406B", "84029G", "22752", "21730", "22633", "84879")


def online_retail_export(
    n_customers: int,
    start: dt.date | str,
    end: dt.date | str,
    seed: int,
    *,
    cancel_share: float = 0.03,
    blank_id_share: float = 0.02,
) -> pd.DataFrame:
    """Simulated purchases as the lines of an "Online Retail" export.

    Each purchase occasion becomes one invoice line of one item: ``Quantity`` from the
    simulation, ``UnitPrice`` = amount / quantity rounded to cents. A share of the lines is
    cancelled a few days later by a ``C`` invoice of its own with the negative quantity (a real
    cancellation: its customer bought the item before). A share of the lines has a blank
    ``CustomerID`` (guest checkouts); the rest are written ``<number>.0``.

    Parameters
    ----------
    n_customers : int
        Simulated customers.
    start, end : date or str
        The window of the export.
    seed : int
        Seed of the simulation and of the export's own choices.
    cancel_share : float
        Share of purchase lines cancelled later.
    blank_id_share : float
        Share of lines without a customer id.

    Returns
    -------
    DataFrame
        :data:`COLUMNS`, all text as an export would carry them, sorted by date.
    """
    tx = generate_synthetic(n_customers, start, end, seed, with_events=False).transactions
    rng = np.random.default_rng(seed + 1)
    n = len(tx)
    quantity = tx["quantity"].fillna(1.0).to_numpy(dtype=float).clip(1.0)
    price = np.round(tx["amount"].to_numpy(dtype=float) / quantity, 2).clip(0.01)
    ids = tx["customer_id"].str.slice(1).astype(int) + 12000
    id_text = np.where(rng.random(n) < blank_id_share, "", ids.astype(str) + ".0")
    items = rng.choice(np.array(_ITEMS), size=n)
    when = pd.to_datetime(tx["timestamp"]).dt.floor("min")
    lines = pd.DataFrame(
        {
            "InvoiceNo": (536365 + np.arange(n)).astype(str),
            "StockCode": items,
            "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
            "Quantity": quantity.astype(int),
            "when": when,
            "UnitPrice": price,
            "CustomerID": id_text,
            "Country": "United Kingdom",
        }
    )
    cancelled = (rng.random(n) < cancel_share) & (id_text != "")
    cancellations = lines[cancelled].copy()
    cancellations["InvoiceNo"] = "C" + (900000 + np.arange(len(cancellations))).astype(str)
    cancellations["Quantity"] = -cancellations["Quantity"]
    later = pd.to_timedelta(rng.integers(1, 5, len(cancellations)), unit="D")
    cancellations["when"] = (cancellations["when"] + later).clip(upper=pd.Timestamp(end))
    out = pd.concat([lines, cancellations], ignore_index=True).sort_values("when", kind="stable")
    stamp = out["when"]
    out["InvoiceDate"] = (
        stamp.dt.month.astype(str)
        + "/"
        + stamp.dt.day.astype(str)
        + "/"
        + stamp.dt.year.astype(str)
        + " "
        + stamp.dt.hour.astype(str)
        + ":"
        + stamp.dt.minute.astype(str).str.zfill(2)
    )
    out["UnitPrice"] = out["UnitPrice"].map(lambda v: f"{v:.2f}")
    return out[list(COLUMNS)].astype(str).reset_index(drop=True)


def write_online_retail(path: str | Path, **kwargs: object) -> Path:
    """Write :func:`online_retail_export` as a CSV file (UTF-8, header, ``,``).

    Parameters
    ----------
    path : str or Path
        The file to write.
    **kwargs
        Arguments of :func:`online_retail_export`.

    Returns
    -------
    Path
        The file.
    """
    path = Path(path)
    online_retail_export(**kwargs).to_csv(path, index=False)  # type: ignore[arg-type]
    return path
