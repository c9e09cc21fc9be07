"""The report's drift section: the scored population against the churn model's test cutoff.

Reads the scores manifest's ``drift`` entry (:func:`retain.drift.drift_summary`): a bar chart
of each feature's population stability index with the ``psi_warn`` and ``psi_retrain``
thresholds marked, the overall figures (status, predicted churn rate now and at the reference)
and the per-feature table. Pure: no file or tracking access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from retain.drift import drift_table
from retain.reporting.html import Section

__all__ = ["drift_banner", "drift_section", "plot_psi"]

_COLOURS = {"ok": "#1f77b4", "warn": "#ff7f0e", "retrain": "#d62728"}


def plot_psi(entry: Mapping[str, Any], ax: Axes | None = None, max_features: int = 20) -> Axes:
    """PSI per feature (the largest ``max_features``), coloured by status, thresholds marked.

    Parameters
    ----------
    entry : mapping
        The manifest's drift entry (not skipped).
    ax : Axes, optional
        Where to draw; a new figure sized to the bars otherwise.
    max_features : int
        Bars at most.

    Returns
    -------
    Axes
    """
    table = drift_table(entry).dropna(subset=["psi"]).head(max_features)[::-1]
    limits = entry.get("thresholds") or {}
    if ax is None:
        size = (8, 0.3 * max(len(table), 4) + 1.5)
        _, ax = plt.subplots(figsize=size, layout="constrained")
    colours = [_COLOURS.get(str(s), "#7f7f7f") for s in table["status"]]
    ax.barh(table["feature"], table["psi"].to_numpy(dtype=float), color=colours)
    for key, style in (("psi_warn", ":"), ("psi_retrain", "--")):
        if key in limits:
            value = float(limits[key])
            ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"{key} {value}")
    if limits:
        ax.legend(loc="lower right", fontsize=8)
    top = float(np.nanmax(table["psi"])) if len(table) else 0.0
    if top > 10 * float(limits.get("psi_retrain", 1.0)):
        ax.set_xscale("symlog", linthresh=float(limits.get("psi_warn", 0.1)))
    ax.set_xlabel("population stability index (scored customers vs the model's test cutoff)")
    return ax


def drift_banner(entry: Mapping[str, Any] | None) -> str | None:
    """A banner line when the drift check calls for retraining; None otherwise."""
    if not entry or entry.get("status") != "retrain":
        return None
    first = (entry.get("reasons") or ["see the drift section"])[0]
    return (
        f"The scored population has drifted from the churn model's test cutoff ({first}): "
        "retrain the churn model."
    )


def drift_section(sec: Section, entry: Mapping[str, Any] | None) -> Section:
    """The drift section: status, overall figures, the PSI chart and the per-feature table.

    Parameters
    ----------
    sec : Section
        The section to fill.
    entry : mapping or None
        The manifest's drift entry; None for scores written without one.

    Returns
    -------
    Section
    """
    if not entry:
        sec.text("The scores' manifest has no drift entry (scored before drift checks).", True)
        return sec
    if entry.get("status") == "skipped":
        sec.text(f"Drift was not checked: {entry.get('note', '')}.", note=True)
        return sec
    ref = entry.get("reference") or {}
    shift = entry.get("churn_rate_shift")
    status = str(entry.get("status"))
    text = (
        f"Status: {status}. {entry.get('customers', 0):,} scored customers compared with the "
        f"{ref.get('customers', 0):,} of the churn model's test cutoff {ref.get('cutoff', '?')}."
    )
    if shift is not None:
        text += (
            f" Mean predicted churn probability {entry['churn_rate']:.1%} against "
            f"{entry['churn_rate_reference']:.1%} then (shift {shift:+.3f})."
        )
    sec.text(text)
    reasons = entry.get("reasons") or []
    if reasons:
        sec.text("Thresholds crossed: " + "; ".join(reasons) + ".")
    if status == "retrain":
        sec.text(
            "The model was tested on a population unlike today's: retrain the churn model on "
            "recent cutoffs (retain train-churn), then promote it if it passes the gate.",
            note=True,
        )
    sec.howto(
        "PSI compares the share of customers in each bin of a feature (the deciles of the test "
        "cutoff; one bin per value for a feature with few values, a new value counting with "
        "the nearest one) now and then; under 0.1 is stable, 0.1-0.25 a moderate shift, above "
        "0.25 a large one. The p-value is the binned chi-square test's; with many customers it is "
        "tiny for any shift, so PSI decides."
    )
    sec.figure(plot_psi(entry).figure, "PSI per feature")
    table = drift_table(entry)[
        ["feature", "psi", "p_value", "missing_share", "missing_share_reference", "status"]
    ]
    sec.table(table, index=False, float_format="{:.3g}")
    return sec
