"""The campaign list of one channel: the customers to contact, for import into a CRM.

A pure function of the scores of one date (no I/O): the customers whose action goes through
the channel and who are to be contacted, in priority order, with the offer, the first reason
and the date by which to contact them. Which customers are to be contacted:

- scores with a ``contact`` column (control groups, :mod:`retain.control`): ``contact`` is
  True, i.e. the treatment group of the customers the budget kept;
- older scores: every customer with the channel (over-budget customers have channel ``none``,
  so none of them is listed).

The order is ``action_priority`` (1 = first; customers without one, whose expected value is
unknown, come last), then the customer id. ``priority`` is the scores' ``action_priority``, a
rank over every channel's customers: a list's priorities have gaps where the customers of the
other channels and the control group stand, so a list can be traced back to the scores. The
columns are :data:`retain.config.EXPORT_COLUMNS`, renamed as ``export.columns`` says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.config import EXPORT_COLUMNS, ExportConfig
from retain.contracts import CUSTOMER_ID
from retain.timeline import DateLike, day, iso_day

__all__ = ["CAMPAIGN_SOURCE_COLUMNS", "CONTACT_CHANNELS", "campaign_list"]

CONTACT_CHANNELS: tuple[str, ...] = ("email", "sms", "phone", "social")
"""The channels a campaign list can be exported for (every channel but ``none``)."""

CAMPAIGN_SOURCE_COLUMNS: tuple[str, ...] = (
    CUSTOMER_ID,
    "action_priority",
    "action_channel",
    "retention_action",
    "action_offer",
    "reason_1",
    "expected_value_saved",
    "clv",
    "churn_probability",
    "value_tier",
    "lifecycle_stage",
)
"""The score columns a campaign list reads (``contact`` too when the scores have it)."""


def campaign_list(
    scores: pd.DataFrame, channel: str, as_of: DateLike, settings: ExportConfig
) -> pd.DataFrame:
    """The customers to contact through ``channel``, in priority order, CRM-ready.

    Parameters
    ----------
    scores : DataFrame
        Scores of one date with :data:`CAMPAIGN_SOURCE_COLUMNS` (and ``contact`` if present).
    channel : str
        One of :data:`CONTACT_CHANNELS`.
    as_of : date, str or Timestamp
        The scoring date; ``due_date`` is ``settings.due_days`` later.
    settings : ExportConfig
        ``due_days`` and the column renames.

    Returns
    -------
    DataFrame
        Columns :data:`retain.config.EXPORT_COLUMNS` renamed by ``settings.columns``;
        ``priority`` is the scores' ``action_priority`` (empty when unknown).

    Raises
    ------
    ValueError
        For a channel not in :data:`CONTACT_CHANNELS` or scores lacking a column.
    """
    if channel not in CONTACT_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CONTACT_CHANNELS}")
    missing = [c for c in CAMPAIGN_SOURCE_COLUMNS if c not in scores]
    if missing:
        raise ValueError(f"the scores lack the columns {missing}")
    keep = (scores["action_channel"].astype("string") == channel).fillna(False).to_numpy(bool)
    if "contact" in scores:  # else scores made before control groups: the channel alone
        keep &= scores["contact"].fillna(False).to_numpy(dtype=bool)
    chosen = scores.loc[keep]
    priority = pd.to_numeric(chosen["action_priority"], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    order = np.lexsort(
        (
            chosen[CUSTOMER_ID].astype(str).to_numpy(),
            np.where(np.isnan(priority), np.inf, priority),
        )
    )
    chosen = chosen.iloc[order]
    due = iso_day(day(as_of) + pd.Timedelta(days=settings.due_days))
    out = pd.DataFrame(
        {
            "priority": pd.array(chosen["action_priority"].to_numpy(), dtype="Int64"),
            CUSTOMER_ID: chosen[CUSTOMER_ID].astype("string").to_numpy(),
            "retention_action": chosen["retention_action"].astype("string").to_numpy(),
            "action_offer": chosen["action_offer"].astype("string").to_numpy(),
            "reason_1": chosen["reason_1"].astype("string").to_numpy(),
            "due_date": [due] * len(chosen),
            "expected_value_saved": chosen["expected_value_saved"].to_numpy(dtype=float),
            "clv": chosen["clv"].to_numpy(dtype=float),
            "churn_probability": chosen["churn_probability"].to_numpy(dtype=float),
            "value_tier": chosen["value_tier"].astype("string").to_numpy(),
            "lifecycle_stage": chosen["lifecycle_stage"].astype("string").to_numpy(),
        }
    )
    return out[list(EXPORT_COLUMNS)].rename(columns=settings.columns)
