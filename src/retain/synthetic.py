"""Synthetic customers from a known process, with the ground truth kept beside the data.

The purchase process is the BG/NBD model of Fader, Hardie and Lee (2005) and the spend process
the Gamma-Gamma model of Fader, Hardie and Lee (2005, "RFM and CLV"), so the fitters in
``lifetimes`` can recover the generating parameters from :func:`retain.features.rfm.rfm_summary`.
Engagement events depend on the same latent state (alive or not, purchase rate, satisfaction),
so that they carry churn signal beyond recency and frequency.

Time unit
---------
All rates are **per day** and ``alpha`` is a scale **in days**: a customer's purchase rate
``lambda`` (purchases per day while alive) is drawn from Gamma(shape ``r``, rate ``alpha``), with
mean ``r / alpha``. Fit ``lifetimes`` on an RFM summary with ``time_unit="D"`` to get the same
numbers back (or with ``"W"``: then ``alpha`` comes back divided by 7).

The process, per customer
-------------------------
1. Acquisition time ``t0`` uniform on [``start``, ``acquisition_end`` + 1 day); the first purchase
   happens at ``t0`` (signup date = that day).
2. ``lambda ~ Gamma(r, alpha)`` per day, ``p ~ Beta(a, b)``, independent (a BG/NBD assumption).
3. While alive, repeat purchases arrive as a Poisson process with rate ``lambda``. After each
   *repeat* purchase the customer drops out with probability ``p``; death happens at the time of
   that purchase. This is the BG/NBD: no dropout at the first purchase (customers without repeat
   purchases are alive, as ``BetaGeoFitter`` assumes). With ``dropout_at_first_purchase=True``
   the customer may also drop out right after the first purchase: that is the MBG/NBD of
   Batislam et al. (2007), recovered by ``ModifiedBetaGeoFitter`` instead.
4. Spend per occasion ``z ~ Gamma(shape p_spend, rate nu)`` with ``nu ~ Gamma(shape q, rate v)``
   per customer, so E[z] = ``p_spend * v / (q - 1)``. Some occasions are split into two
   same-day line items sharing one ``order_id`` (their amounts sum to ``z``), which exercises
   same-day merging.

Purchases happen in continuous time (timestamps carry a time of day), while RFM summaries count
calendar days: two purchases on one day become one occasion. With the default parameters (mean
``lambda`` = 0.75 / 40 = 1 purchase per 53 days) about 1.5% of repeat purchases fall on the day
of the previous one. That thins the heaviest buyers, so a ``BetaGeoFitter`` fit on the daily
summary of 100k customers returns ``r`` and ``alpha`` 1-7% too high (``a`` and ``b`` within 2%),
while a fit on the exact (continuous) purchase times recovers all four within sampling error.
The bias grows with ``lambda`` (e.g. with ``transactions_per_customer``).

Engagement (see :class:`EngagementParams`) is driven by a per-customer propensity ``e`` (Gamma,
mean 1) and a satisfaction latent ``s`` (standard normal), which is negatively correlated with
``p`` through a Gaussian copula, so that ``p`` keeps its exact Beta(a, b) marginal. While alive a
customer has web sessions (rate ``e * (sessions_per_purchase * lambda + session_floor_per_day)``),
opens and clicks the periodic emails with high probability, files support tickets (satisfaction
1-5 from ``s``), answers post-purchase surveys (NPS 0-10 from ``s``) and, when satisfied, refers
others. After death sessions and opens drop to a low background rate, tickets, referrals and
surveys stop (except the survey about the last purchase, 1-7 days later), and with some
probability a low-satisfaction complaint ticket follows the last purchase within 14 days. Email
is sent to every acquired customer on a fixed schedule, alive or not.

Reproducibility
---------------
Customers are generated in fixed seed blocks of :data:`SEED_BLOCK` customers; block ``k`` draws
from ``SeedSequence(seed).spawn(...)[k]`` (purchases and spend from its child 0, engagement from
its child 1). The data thus do not depend on ``chunk_size`` (which only sets how many customers
are assembled into frames at once) and the transactions do not depend on ``with_events``.

The module runs past ~600 lines because it is one generative story: the purchase, spend and
engagement draws share each block's random streams, whose order is the reproducibility contract.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import optimize, special

from retain.contracts import CUSTOMER_ID, EVENT_TYPES, TIMESTAMP
from retain.timeline import cutoff_end

__all__ = [
    "ACQUISITION_CHANNELS",
    "SEED_BLOCK",
    "BgNbdParams",
    "EngagementParams",
    "GammaGammaParams",
    "SyntheticData",
    "expected_transactions_per_customer",
    "generate_synthetic",
    "iter_synthetic",
    "scale_purchase_rate",
    "true_churn_probability",
]

SEED_BLOCK = 4096
"""Customers per seed block: part of the reproducibility contract (changing it changes data)."""

ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "referral", "email", "affiliate")
"""Acquisition channels of the customers table (drawn independently of the latent state)."""

_CHANNEL_WEIGHTS = np.array([0.35, 0.25, 0.15, 0.10, 0.10, 0.05])
_NS_PER_DAY = 86_400 * 10**9
_EMAIL_HOUR = 10.0 / 24.0


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD purchase parameters, time unit **days**.

    Attributes
    ----------
    r : float
        Shape of the Gamma distribution of the purchase rate ``lambda``.
    alpha : float
        Scale of that Gamma distribution in days (its rate parameter): mean ``lambda`` is
        ``r / alpha`` purchases per day.
    a, b : float
        Beta(a, b) parameters of the dropout probability ``p``; E[p] = a / (a + b).
    """

    r: float = 0.75
    alpha: float = 40.0
    a: float = 0.8
    b: float = 2.5

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b"):
            if not getattr(self, name) > 0:
                raise ValueError(f"BgNbdParams.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters (Fader-Hardie), amounts in currency units.

    Attributes
    ----------
    p : float
        Shape of the spend per occasion ``z ~ Gamma(p, rate nu)``.
    q, v : float
        Shape and rate of ``nu ~ Gamma(q, rate v)``. Mean spend per occasion is
        ``p * v / (q - 1)`` (finite for ``q > 1``).
    """

    p: float = 6.0
    q: float = 4.0
    v: float = 15.0

    def __post_init__(self) -> None:
        for name in ("p", "q", "v"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GammaGammaParams.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class EngagementParams:
    """Engagement process parameters; all rates per day.

    Attributes
    ----------
    propensity_shape : float
        Shape ``k`` of the engagement propensity ``e ~ Gamma(k, rate k)`` (mean 1).
    sessions_per_purchase : float
        Web sessions per expected purchase while alive (session rate ``e * (this * lambda +
        session_floor_per_day)``).
    session_floor_per_day : float
        Session rate of an alive customer that does not depend on ``lambda``.
    dead_session_rate_per_day : float
        Background session rate after death (times ``e``).
    email_interval_days : float
        Emails go to every acquired customer every this many days (at 10:00).
    open_prob_alive, open_prob_dead : float
        Open probability of an email while alive (for ``e = 1``; ``1 - (1 - p) ** e`` in
        general) and after death.
    click_prob_alive, click_prob_dead : float
        Click probability given an open, alive and dead.
    ticket_rate_per_day : float
        Support tickets while alive.
    death_ticket_prob : float
        Probability of a complaint ticket within 14 days after the last purchase of a customer
        who drops out (satisfaction shifted down by ``death_ticket_shift``).
    death_ticket_shift : float
        Shift of the satisfaction latent for that complaint.
    survey_prob : float
        Probability that a purchase occasion is followed (1-7 days later) by an NPS answer.
    referral_rate_per_day : float
        Referral rate of an alive customer whose satisfaction latent exceeds
        ``referral_threshold`` (others never refer).
    referral_threshold : float
        Satisfaction latent (standard normal) above which a customer refers.
    satisfaction_dropout_corr : float
        Gaussian-copula correlation between the satisfaction latent and the dropout
        probability ``p`` (negative: unhappy customers drop out more). In [-1, 1].
    """

    propensity_shape: float = 4.0
    sessions_per_purchase: float = 4.0
    session_floor_per_day: float = 0.01
    dead_session_rate_per_day: float = 0.002
    email_interval_days: float = 28.0
    open_prob_alive: float = 0.4
    open_prob_dead: float = 0.03
    click_prob_alive: float = 0.3
    click_prob_dead: float = 0.05
    ticket_rate_per_day: float = 0.004
    death_ticket_prob: float = 0.25
    death_ticket_shift: float = -1.5
    survey_prob: float = 0.15
    referral_rate_per_day: float = 0.004
    referral_threshold: float = 0.5
    satisfaction_dropout_corr: float = -0.6

    def __post_init__(self) -> None:
        if not -1.0 <= self.satisfaction_dropout_corr <= 1.0:
            raise ValueError("satisfaction_dropout_corr must be in [-1, 1]")
        if not self.email_interval_days > 0 or not self.propensity_shape > 0:
            raise ValueError("email_interval_days and propensity_shape must be > 0")
        for name in (
            "open_prob_alive",
            "open_prob_dead",
            "click_prob_alive",
            "click_prob_dead",
            "death_ticket_prob",
            "survey_prob",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"EngagementParams.{name} must be a probability")


@dataclass
class SyntheticData:
    """Output of :func:`generate_synthetic`.

    Attributes
    ----------
    transactions : DataFrame
        Transaction contract: ``customer_id``, ``timestamp``, ``amount``, ``quantity``,
        ``order_id``; sorted by customer then time.
    events : DataFrame or None
        Event contract: ``customer_id``, ``timestamp``, ``event_type`` (one of
        :data:`retain.contracts.EVENT_TYPES`), ``value`` (satisfaction 1-5 for tickets, NPS
        0-10 for surveys, NaN otherwise); ``None`` when generated without events.
    customers : DataFrame
        ``customer_id``, ``signup_date`` (day of the first purchase), ``acquisition_channel``.
    truth : DataFrame
        Indexed by ``customer_id``: ``first_purchase`` (timestamp), ``purchase_rate_per_day``
        (lambda), ``dropout_probability`` (p), ``death_time`` (time of the purchase after which
        the customer dropped out; NaT when still alive at the end of the window),
        ``n_occasions`` (purchase occasions in the window), ``spend_rate`` (nu),
        ``expected_spend_per_occasion`` (p_spend / nu), ``engagement_propensity`` (e),
        ``satisfaction_latent`` (s), ``observed_until`` (last day of the window).
    """

    transactions: pd.DataFrame
    events: pd.DataFrame | None
    customers: pd.DataFrame
    truth: pd.DataFrame
    params: dict = field(default_factory=dict)


# --------------------------------------------------------------------- expected volumes


def expected_transactions_per_customer(
    purchase: BgNbdParams,
    start: dt.date | str,
    end: dt.date | str,
    *,
    acquisition_end: dt.date | str | None = None,
    split_fraction: float = 0.05,
    dropout_at_first_purchase: bool = False,
) -> float:
    """Expected number of transaction rows per customer in the window.

    Uses the closed-form expected number of repeat purchases of the BG/NBD (or MBG/NBD) in a
    tenure ``t``, averaged over the uniform acquisition time by Gauss-Legendre quadrature, plus
    the first purchase, times the rows per occasion ``1 + split_fraction``.

    Parameters
    ----------
    purchase : BgNbdParams
        Purchase parameters (days).
    start, end : date or str
        Window, both days included.
    acquisition_end : date or str, optional
        Last acquisition day; default: one third into the window.
    split_fraction : float
        Share of occasions split into two same-day rows.
    dropout_at_first_purchase : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    float
        Expected rows per customer.
    """
    length, acq = _window_days(start, end, acquisition_end)
    r, alpha, a, b = purchase.r, purchase.alpha, purchase.a, purchase.b
    if abs(a - 1.0) < 1e-7:
        a = 1.0 + 1e-7
    nodes, weights = np.polynomial.legendre.leggauss(48)
    t = length - acq * (nodes + 1.0) / 2.0
    z = t / (alpha + t)
    if dropout_at_first_purchase:
        repeats = (
            b / (a - 1) * (1 - special.hyp2f1(r, b + 1, a + b, z) * (alpha / (alpha + t)) ** r)
        )
    else:
        repeats = (a + b - 1) / (a - 1) * (1 - special.hyp2f1(r, b, a + b - 1, z) * (1 - z) ** r)
    return float((1.0 + np.sum(weights * repeats) / 2.0) * (1.0 + split_fraction))


def scale_purchase_rate(
    purchase: BgNbdParams,
    transactions_per_customer: float,
    start: dt.date | str,
    end: dt.date | str,
    *,
    acquisition_end: dt.date | str | None = None,
    split_fraction: float = 0.05,
    dropout_at_first_purchase: bool = False,
) -> BgNbdParams:
    """BG/NBD parameters with ``alpha`` rescaled to hit an expected number of rows per customer.

    Only ``alpha`` changes (``r``, ``a``, ``b`` stay), so the shape of the purchase-rate
    distribution and the dropout process are kept and the mean rate ``r / alpha`` moves.

    Parameters
    ----------
    purchase : BgNbdParams
        Starting parameters.
    transactions_per_customer : float
        Target expected transaction rows per customer in the window (> 1 + split_fraction).
    start, end, acquisition_end, split_fraction, dropout_at_first_purchase
        As in :func:`expected_transactions_per_customer`.

    Returns
    -------
    BgNbdParams
        Parameters with the new ``alpha``.

    Raises
    ------
    ValueError
        When the target cannot be reached (with ``a > 1`` the expected number of purchases is
        bounded whatever the rate: lower ``a`` or lengthen the window).
    """

    def gap(log_alpha: float) -> float:
        params = replace(purchase, alpha=float(np.exp(log_alpha)))
        return (
            expected_transactions_per_customer(
                params,
                start,
                end,
                acquisition_end=acquisition_end,
                split_fraction=split_fraction,
                dropout_at_first_purchase=dropout_at_first_purchase,
            )
            - transactions_per_customer
        )

    lo, hi = np.log(1e-3), np.log(1e7)
    if not gap(lo) > 0 > gap(hi):
        raise ValueError(
            f"{transactions_per_customer} transactions per customer cannot be reached with "
            f"r={purchase.r}, a={purchase.a}, b={purchase.b} in this window"
        )
    return replace(purchase, alpha=float(np.exp(optimize.brentq(gap, lo, hi, xtol=1e-10))))


# --------------------------------------------------------------------------- generator


def _window_days(
    start: dt.date | str, end: dt.date | str, acquisition_end: dt.date | str | None
) -> tuple[float, float]:
    """Window length and acquisition length in days (end days included)."""
    t_start = pd.Timestamp(start).normalize()
    t_end = cutoff_end(end)
    if t_end <= t_start:
        raise ValueError(f"end ({end}) must not be before start ({start})")
    length = (t_end - t_start) / pd.Timedelta(days=1)
    if acquisition_end is None:
        acq = float(np.floor(length / 3.0))
    else:
        acq = (cutoff_end(acquisition_end) - t_start) / pd.Timedelta(days=1)
    if not 0 < acq <= length:
        raise ValueError(f"acquisition_end ({acquisition_end}) must lie within [start, end]")
    return float(length), float(acq)


def _segment_index(counts: np.ndarray) -> np.ndarray:
    """Owner index of each element when element counts per owner are ``counts``."""
    return np.repeat(np.arange(len(counts)), counts)


def _rank_in_segment(counts: np.ndarray) -> np.ndarray:
    """0-based position of each element inside its owner's run."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(starts, counts)


def _poisson_times(
    rng: np.random.Generator, rate: np.ndarray, t_from: np.ndarray, t_to: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points of independent homogeneous Poisson processes on [t_from, t_to) per owner."""
    dur = np.maximum(t_to - t_from, 0.0)
    counts = rng.poisson(rate * dur)
    owner = _segment_index(counts)
    times = t_from[owner] + dur[owner] * rng.random(len(owner))
    return owner, times


@dataclass
class _Block:
    """Arrays of one seed block (times in days since ``start``)."""

    t0: np.ndarray
    lam: np.ndarray
    p: np.ndarray
    death: np.ndarray  # NaN when alive at the end
    nu: np.ndarray
    n_occ: np.ndarray
    occ_owner: np.ndarray
    occ_time: np.ndarray
    occ_amount: np.ndarray
    line_owner: np.ndarray
    line_occ_rank: np.ndarray
    line_time: np.ndarray
    line_amount: np.ndarray
    line_quantity: np.ndarray
    channel: np.ndarray
    propensity: np.ndarray
    satisfaction: np.ndarray
    ev_owner: np.ndarray | None
    ev_time: np.ndarray | None
    ev_type: np.ndarray | None
    ev_value: np.ndarray | None


def _purchase_history(
    rng: np.random.Generator,
    n: int,
    length: float,
    acq: float,
    purchase: BgNbdParams,
    dropout_at_first_purchase: bool,
) -> tuple[np.ndarray, ...]:
    """Latent BG/NBD state and repeat purchase times of ``n`` customers.

    Returns ``t0`` (first purchase), ``lam``, ``p``, ``death`` (NaN while alive), ``n_rep``
    (repeat purchases) and ``rep_time`` (their times, customer by customer, in time order).
    """
    t0 = rng.uniform(0.0, acq, n)
    lam = rng.gamma(purchase.r, 1.0 / purchase.alpha, n)
    p = np.clip(rng.beta(purchase.a, purchase.b, n), 1e-12, 1.0)
    # repeat purchases made before dropping out (dropout after the j-th repeat purchase)
    j_death = rng.geometric(p) - (1 if dropout_at_first_purchase else 0)
    horizon = length - t0
    arrivals = rng.poisson(lam * horizon)  # repeat purchases in the window if never dying
    n_rep = np.minimum(j_death, arrivals)
    dead = j_death <= arrivals
    # times of the first n_rep of `arrivals` uniform order statistics on (t0, length):
    # U_(j) = S_j / S_{M+1} with S the partial sums of M+1 standard exponentials.
    owner = _segment_index(n_rep)
    gaps = rng.standard_exponential(len(owner))
    csum = np.cumsum(gaps)
    ends = np.cumsum(n_rep)
    base = np.concatenate([[0.0], csum])[ends - n_rep]
    partial = csum - base[owner]
    s_n = np.where(n_rep > 0, np.concatenate([[0.0], csum])[ends] - base, 0.0)
    rest = rng.gamma(np.maximum(arrivals - n_rep + 1, 1).astype(float))
    rep_time = t0[owner] + horizon[owner] * partial / (s_n + rest)[owner]
    last = np.where(n_rep > 0, np.concatenate([[0.0], rep_time])[ends], t0)
    death = np.where(dead, last, np.nan)
    return t0, lam, p, death, n_rep, rep_time


def _line_items(
    rng: np.random.Generator, occ_amount: np.ndarray, split_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Some occasions split in two same-day rows of one order: occasion, amount, quantity."""
    n_occ = len(occ_amount)
    split = rng.random(n_occ) < split_fraction
    n_lines = 1 + split.astype(np.int64)
    line_occ = _segment_index(n_lines)
    share = rng.random(n_occ)
    line_first = np.r_[True, line_occ[1:] != line_occ[:-1]]
    frac = np.where(split[line_occ], np.where(line_first, share[line_occ], 1 - share[line_occ]), 1)
    line_amount = occ_amount[line_occ] * frac
    line_quantity = 1.0 + rng.poisson(0.6, len(line_occ))
    return line_occ, line_amount, line_quantity


def _simulate_block(
    ss: np.random.SeedSequence,
    n: int,
    length: float,
    acq: float,
    purchase: BgNbdParams,
    spend: GammaGammaParams,
    events: EngagementParams,
    with_events: bool,
    split_fraction: float,
    dropout_at_first_purchase: bool,
) -> _Block:
    # The draws run in a fixed order (purchases, spend, line items, channel; then engagement
    # from its own stream): the same seed gives the same data.
    ss_purchase, ss_events = ss.spawn(2)
    rng = np.random.default_rng(ss_purchase)
    t0, lam, p, death, n_rep, rep_time = _purchase_history(
        rng, n, length, acq, purchase, dropout_at_first_purchase
    )
    # --- occasions: first purchase then repeats, per customer in time order
    n_occ = n_rep + 1
    occ_owner = _segment_index(n_occ)
    occ_rank = _rank_in_segment(n_occ)
    occ_time = np.empty(len(occ_owner))
    first_pos = np.cumsum(n_occ) - n_occ
    occ_time[first_pos] = t0
    rep_mask = occ_rank > 0
    occ_time[rep_mask] = rep_time
    # --- spend
    nu = rng.gamma(spend.q, 1.0 / spend.v, n)
    occ_amount = rng.gamma(spend.p, 1.0, len(occ_owner)) / nu[occ_owner]
    line_occ, line_amount, line_quantity = _line_items(rng, occ_amount, split_fraction)
    channel = rng.choice(len(ACQUISITION_CHANNELS), size=n, p=_CHANNEL_WEIGHTS)

    # --- engagement latents (always drawn: the truth does not depend on with_events)
    rng_e = np.random.default_rng(ss_events)
    propensity = rng_e.gamma(events.propensity_shape, 1.0 / events.propensity_shape, n)
    z_p = special.ndtri(np.clip(special.betainc(purchase.a, purchase.b, p), 1e-12, 1 - 1e-12))
    rho = events.satisfaction_dropout_corr
    satisfaction = rho * z_p + np.sqrt(1.0 - rho**2) * rng_e.standard_normal(n)
    block = _Block(
        t0=t0,
        lam=lam,
        p=p,
        death=death,
        nu=nu,
        n_occ=n_occ,
        occ_owner=occ_owner,
        occ_time=occ_time,
        occ_amount=occ_amount,
        line_owner=occ_owner[line_occ],
        line_occ_rank=occ_rank[line_occ],
        line_time=occ_time[line_occ],
        line_amount=line_amount,
        line_quantity=line_quantity,
        channel=channel,
        propensity=propensity,
        satisfaction=satisfaction,
        ev_owner=None,
        ev_time=None,
        ev_type=None,
        ev_value=None,
    )
    if with_events:
        _simulate_events(rng_e, block, length, events)
    return block


def _simulate_events(
    rng: np.random.Generator, blk: _Block, length: float, ev: EngagementParams
) -> None:
    """Engagement events of one block; fills the ``ev_*`` arrays of ``blk``."""
    n = len(blk.t0)
    e = blk.propensity
    alive_end = np.where(np.isnan(blk.death), length, blk.death)
    dead_from = alive_end  # the background process starts at death
    owners, times, types, values = [], [], [], []

    def add(owner: np.ndarray, time: np.ndarray, etype: int, value: np.ndarray | None) -> None:
        owners.append(owner)
        times.append(time)
        types.append(np.full(len(owner), etype, dtype=np.int8))
        values.append(np.full(len(owner), np.nan) if value is None else value.astype(float))

    full = np.full(n, length)
    # sessions: alive, then background after death
    rate_alive = e * (ev.sessions_per_purchase * blk.lam + ev.session_floor_per_day)
    o, t = _poisson_times(rng, rate_alive, blk.t0, alive_end)
    add(o, t, _CODE["session"], None)
    o, t = _poisson_times(rng, e * ev.dead_session_rate_per_day, dead_from, full)
    add(o, t, _CODE["session"], None)
    # emails on a fixed schedule to every acquired customer
    k_first = np.ceil((blk.t0 - _EMAIL_HOUR) / ev.email_interval_days).astype(np.int64)
    k_first = np.maximum(k_first, 0)
    k_end = int(np.ceil((length - _EMAIL_HOUR) / ev.email_interval_days))
    n_mail = np.maximum(k_end - k_first, 0)
    o = _segment_index(n_mail)
    send = (k_first[o] + _rank_in_segment(n_mail)) * ev.email_interval_days + _EMAIL_HOUR
    keep = send < length
    o, send = o[keep], send[keep]
    add(o, send, _CODE["email_sent"], None)
    alive_at = send < alive_end[o]
    p_open = np.where(alive_at, 1.0 - (1.0 - ev.open_prob_alive) ** e[o], ev.open_prob_dead)
    opened = rng.random(len(o)) < p_open
    open_time = send + rng.exponential(0.5, len(o))
    p_click = np.where(alive_at, ev.click_prob_alive, ev.click_prob_dead)
    clicked = opened & (rng.random(len(o)) < p_click)
    click_time = open_time + rng.exponential(10.0 / 1440.0, len(o))
    add(o[opened], open_time[opened], _CODE["email_open"], None)
    add(o[clicked], click_time[clicked], _CODE["email_click"], None)
    # support tickets while alive, plus a possible complaint after the last purchase
    o, t = _poisson_times(rng, np.full(n, ev.ticket_rate_per_day), blk.t0, alive_end)
    add(o, t, _CODE["support_ticket"], _score(rng, 3.0 + blk.satisfaction[o], 1, 5))
    died = ~np.isnan(blk.death)
    complain = died & (rng.random(n) < ev.death_ticket_prob)
    o = np.flatnonzero(complain)
    t = blk.death[o] + rng.uniform(0.0, 14.0, len(o))
    add(
        o,
        t,
        _CODE["support_ticket"],
        _score(rng, 3.0 + blk.satisfaction[o] + ev.death_ticket_shift, 1, 5),
    )
    # post-purchase NPS surveys
    surveyed = rng.random(len(blk.occ_owner)) < ev.survey_prob
    o = blk.occ_owner[surveyed]
    t = blk.occ_time[surveyed] + rng.uniform(1.0, 7.0, len(o))
    add(o, t, _CODE["survey"], _score(rng, 7.0 + 1.8 * blk.satisfaction[o], 0, 10, noise=1.5))
    # referrals from satisfied alive customers
    rate_ref = np.where(blk.satisfaction > ev.referral_threshold, ev.referral_rate_per_day, 0.0)
    o, t = _poisson_times(rng, rate_ref, blk.t0, alive_end)
    add(o, t, _CODE["referral"], None)

    owner = np.concatenate(owners)
    time = np.concatenate(times)
    etype = np.concatenate(types)
    value = np.concatenate(values)
    keep = time < length
    owner, time, etype, value = owner[keep], time[keep], etype[keep], value[keep]
    # sort by customer then time: one float key (times < length, so owners never overlap)
    order = np.argsort(owner * (length + 1.0) + time, kind="stable")
    blk.ev_owner, blk.ev_time = owner[order], time[order]
    blk.ev_type, blk.ev_value = etype[order], value[order]


def _score(
    rng: np.random.Generator, centre: np.ndarray, low: int, high: int, noise: float = 0.8
) -> np.ndarray:
    """Integer score in [low, high] around ``centre`` with Gaussian noise."""
    return np.clip(np.rint(centre + noise * rng.standard_normal(len(centre))), low, high)


_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}
"""Integer code of each event type while simulating (position in ``EVENT_TYPES``)."""


def _to_ns(start_ns: int, days: np.ndarray) -> np.ndarray:
    """Days since start to datetime64[ns], rounded to the second."""
    ns = (days * 86_400.0).astype(np.int64)  # days >= 0: truncation is floor
    ns *= 10**9
    ns += start_ns
    return ns.view("datetime64[ns]")


def _string_take(values: pa.Array, idx: np.ndarray) -> pd.arrays.ArrowStringArray:
    """``values[idx]`` as a pandas string array (no Python strings per row)."""
    taken = pc.take(values, pa.array(idx, type=pa.int64()))
    return pd.array(taken.cast(pa.large_string()), dtype="string")


_Concat = Callable[..., np.ndarray]
"""``cat(name, shift=False)``: a :class:`_Block` field over consecutive blocks (see
:func:`_concat`)."""


def _concat(
    blocks: list[_Block], offsets: np.ndarray, name: str, shift: bool = False
) -> np.ndarray:
    """Field ``name`` of consecutive blocks; ``shift`` adds each block's first customer position."""
    parts = [getattr(b, name) + (o if shift else 0) for b, o in zip(blocks, offsets, strict=True)]
    return np.concatenate(parts)


def _transactions_frame(ids: pa.Array, start_ns: int, cat: _Concat) -> pd.DataFrame:
    """One row per line item; its order id is ``<customer>-<occasion number>``."""
    line_owner = cat("line_owner", shift=True)
    line_rank = cat("line_occ_rank")
    order_ids = pc.binary_join_element_wise(
        pc.take(ids, pa.array(line_owner)),
        pc.cast(pa.array(line_rank + 1), pa.large_string()),
        pa.scalar("-", pa.large_string()),
    )
    return pd.DataFrame(
        {
            CUSTOMER_ID: _string_take(ids, line_owner),
            TIMESTAMP: _to_ns(start_ns, cat("line_time")),
            "amount": cat("line_amount"),
            "quantity": cat("line_quantity"),
            "order_id": pd.array(order_ids, dtype="string"),
        }
    )


def _customers_frame(ids: pa.Array, first_ts: np.ndarray, cat: _Concat) -> pd.DataFrame:
    """Signup day (the first purchase day) and acquisition channel per customer."""
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.array(ids, dtype="string"),
            "signup_date": first_ts.astype("datetime64[D]").astype("datetime64[ns]"),
            "acquisition_channel": pd.array(
                np.asarray(ACQUISITION_CHANNELS, dtype=object)[cat("channel")], dtype="string"
            ),
        }
    )


def _truth_frame(
    ids: pa.Array,
    first_ts: np.ndarray,
    cat: _Concat,
    start: pd.Timestamp,
    length: float,
    params: dict,
) -> pd.DataFrame:
    """The generating parameters per customer, indexed by ``customer_id``."""
    start_ns = start.value
    death = cat("death")
    death_ns = np.where(
        np.isnan(death), np.datetime64("NaT"), _to_ns(start_ns, np.nan_to_num(death))
    )
    nu = cat("nu")
    truth = pd.DataFrame(
        {
            "first_purchase": first_ts,
            "purchase_rate_per_day": cat("lam"),
            "dropout_probability": cat("p"),
            "death_time": death_ns.astype("datetime64[ns]"),
            "n_occasions": cat("n_occ").astype(np.int64),
            "spend_rate": nu,
            "expected_spend_per_occasion": params["spend"].p / nu,
            "engagement_propensity": cat("propensity"),
            "satisfaction_latent": cat("satisfaction"),
        },
        index=pd.Index(pd.array(ids, dtype="string"), name=CUSTOMER_ID),
    )
    truth["observed_until"] = np.full(
        len(truth), (start + pd.Timedelta(days=length - 1)).to_datetime64(), dtype="datetime64[ns]"
    )
    return truth


def _events_frame(ids: pa.Array, start_ns: int, cat: _Concat) -> pd.DataFrame:
    """One row per engagement event."""
    ev_owner = cat("ev_owner", shift=True)
    type_names = pa.array(EVENT_TYPES, type=pa.large_string())
    return pd.DataFrame(
        {
            CUSTOMER_ID: _string_take(ids, ev_owner),
            TIMESTAMP: _to_ns(start_ns, cat("ev_time")),
            "event_type": _string_take(type_names, cat("ev_type").astype(np.int64)),
            "value": cat("ev_value"),
        }
    )


def _frames(
    blocks: list[_Block],
    first_customer: int,
    width: int,
    start: pd.Timestamp,
    length: float,
    params: dict,
    with_events: bool,
) -> SyntheticData:
    """Assemble the frames of consecutive blocks starting at customer ``first_customer``."""
    sizes = [len(b.t0) for b in blocks]
    n = int(sum(sizes))
    offsets = np.cumsum([0, *sizes[:-1]])
    ids_py = [f"C{i:0{width}d}" for i in range(first_customer, first_customer + n)]
    ids = pa.array(ids_py, type=pa.large_string())
    cat = functools.partial(_concat, blocks, offsets)
    first_ts = _to_ns(start.value, cat("t0"))
    transactions = _transactions_frame(ids, start.value, cat)
    customers = _customers_frame(ids, first_ts, cat)
    truth = _truth_frame(ids, first_ts, cat, start, length, params)
    events = _events_frame(ids, start.value, cat) if with_events else None
    return SyntheticData(transactions, events, customers, truth, params)


def iter_synthetic(
    n_customers: int,
    start: dt.date | str,
    end: dt.date | str,
    seed: int,
    *,
    purchase: BgNbdParams | None = None,
    spend: GammaGammaParams | None = None,
    events: EngagementParams | None = None,
    with_events: bool = True,
    acquisition_end: dt.date | str | None = None,
    transactions_per_customer: float | None = None,
    split_fraction: float = 0.05,
    dropout_at_first_purchase: bool = False,
    chunk_size: int = 100_000,
) -> Iterator[SyntheticData]:
    """Generate synthetic data chunk by chunk (bounded memory); see :func:`generate_synthetic`.

    Yields
    ------
    SyntheticData
        One chunk of about ``chunk_size`` customers (rounded up to whole seed blocks of
        :data:`SEED_BLOCK`); concatenating the chunks gives :func:`generate_synthetic`'s output.
    """
    if n_customers <= 0:
        raise ValueError(f"n_customers must be > 0, got {n_customers}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    if not 0.0 <= split_fraction <= 1.0:
        raise ValueError(f"split_fraction must be in [0, 1], got {split_fraction}")
    purchase = purchase or BgNbdParams()
    spend = spend or GammaGammaParams()
    events = events or EngagementParams()
    length, acq = _window_days(start, end, acquisition_end)
    if transactions_per_customer is not None:
        purchase = scale_purchase_rate(
            purchase,
            transactions_per_customer,
            start,
            end,
            acquisition_end=acquisition_end,
            split_fraction=split_fraction,
            dropout_at_first_purchase=dropout_at_first_purchase,
        )
    params = {
        "purchase": purchase,
        "spend": spend,
        "events": events,
        "seed": seed,
        "start": pd.Timestamp(start).normalize(),
        "end": pd.Timestamp(end).normalize(),
        "dropout_at_first_purchase": dropout_at_first_purchase,
        "split_fraction": split_fraction,
    }
    root = np.random.SeedSequence(seed)
    width = max(7, len(str(n_customers - 1)))
    n_blocks = -(-n_customers // SEED_BLOCK)
    per_chunk = max(1, -(-chunk_size // SEED_BLOCK))
    start_ts = params["start"]
    for first_block in range(0, n_blocks, per_chunk):
        blocks = []
        for k in range(first_block, min(first_block + per_chunk, n_blocks)):
            n = min(SEED_BLOCK, n_customers - k * SEED_BLOCK)
            ss = np.random.SeedSequence(root.entropy, spawn_key=(k,))
            blocks.append(
                _simulate_block(
                    ss,
                    n,
                    length,
                    acq,
                    purchase,
                    spend,
                    events,
                    with_events,
                    split_fraction,
                    dropout_at_first_purchase,
                )
            )
        yield _frames(
            blocks, first_block * SEED_BLOCK, width, start_ts, length, params, with_events
        )


def generate_synthetic(
    n_customers: int,
    start: dt.date | str,
    end: dt.date | str,
    seed: int,
    *,
    purchase: BgNbdParams | None = None,
    spend: GammaGammaParams | None = None,
    events: EngagementParams | None = None,
    with_events: bool = True,
    acquisition_end: dt.date | str | None = None,
    transactions_per_customer: float | None = None,
    split_fraction: float = 0.05,
    dropout_at_first_purchase: bool = False,
    chunk_size: int = 100_000,
) -> SyntheticData:
    """Simulate customers from BG/NBD + Gamma-Gamma with engagement events and ground truth.

    Parameters
    ----------
    n_customers : int
        Number of customers; each makes a first purchase in the acquisition period.
    start, end : date or str
        Observation window, both days included.
    seed : int
        Seed of ``numpy.random.SeedSequence``; same seed, same data.
    purchase : BgNbdParams, optional
        BG/NBD parameters in days (default ``r=0.75, alpha=40, a=0.8, b=2.5``: mean one
        purchase per 53 days while alive, E[p] = 0.24).
    spend : GammaGammaParams, optional
        Gamma-Gamma parameters (default ``p=6, q=4, v=15``: mean 30 per occasion).
    events : EngagementParams, optional
        Engagement process parameters.
    with_events : bool
        Generate engagement events (the transactions and truth do not depend on it).
    acquisition_end : date or str, optional
        Last acquisition day; default one third into the window.
    transactions_per_customer : float, optional
        Target expected transaction rows per customer. When given, ``purchase.alpha`` is
        rescaled by :func:`scale_purchase_rate` (``r``, ``a``, ``b`` kept); the parameters used
        are in ``result.params["purchase"]``. E.g. 10 rows per customer for 875k customers
        gives about 8.75M rows.
    split_fraction : float
        Share of occasions written as two same-day rows with one ``order_id``.
    dropout_at_first_purchase : bool
        Allow dropout right after the first purchase (MBG/NBD) instead of only after repeat
        purchases (BG/NBD, the default).
    chunk_size : int
        Customers assembled per chunk (memory only; the data do not depend on it).

    Returns
    -------
    SyntheticData
        ``transactions``, ``events`` (None without events), ``customers``, ``truth`` and the
        ``params`` used. Times are in the window's days; see the module docstring for the
        process and time units.
    """
    chunks = list(
        iter_synthetic(
            n_customers,
            start,
            end,
            seed,
            purchase=purchase,
            spend=spend,
            events=events,
            with_events=with_events,
            acquisition_end=acquisition_end,
            transactions_per_customer=transactions_per_customer,
            split_fraction=split_fraction,
            dropout_at_first_purchase=dropout_at_first_purchase,
            chunk_size=chunk_size,
        )
    )
    if len(chunks) == 1:
        return chunks[0]

    def concat(name: str) -> pd.DataFrame:
        # column by column, releasing each chunk column once copied: the peak stays near
        # the size of the result instead of twice it
        frames = [getattr(c, name) for c in chunks]
        for c in chunks:
            setattr(c, name, None)
        index = None
        if name == "truth":
            index = pd.Index(
                pd.concat([f.index.to_series() for f in frames], ignore_index=True),
                name=CUSTOMER_ID,
            )
        columns = {}
        for col in list(frames[0].columns):
            columns[col] = pd.concat([f[col] for f in frames], ignore_index=True)
            for f in frames:
                del f[col]
            if index is not None:
                columns[col].index = index
        return pd.DataFrame(columns, index=index, copy=False)

    return SyntheticData(
        transactions=concat("transactions"),
        events=concat("events") if with_events else None,
        customers=concat("customers"),
        truth=concat("truth"),
        params=chunks[0].params,
    )


def true_churn_probability(
    truth: pd.DataFrame, cutoff: dt.date | str, horizon_days: int
) -> pd.Series:
    """Oracle probability of no purchase in days cutoff+1 .. cutoff+H given the latent state.

    A customer dead by the end of the cutoff day never buys again (probability 1). An alive
    customer buys at the next point of a Poisson process with rate ``lambda``; death happens
    only at (right after) a purchase, so no purchase in the horizon has probability exactly
    ``exp(-lambda * H)``.

    Parameters
    ----------
    truth : DataFrame
        ``SyntheticData.truth``.
    cutoff : date or str
        As-of date (included), at most the last observed day.
    horizon_days : int
        Horizon H in days (> 0).

    Returns
    -------
    Series
        Indexed by ``customer_id`` for customers with a first purchase by the cutoff, named
        ``true_churn_probability``.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    end = cutoff_end(cutoff)
    observed = truth["observed_until"].max()
    if end > cutoff_end(observed):
        raise ValueError(f"cutoff {cutoff} is after the simulated window (ends {observed.date()})")
    acquired = truth[truth["first_purchase"] < end]
    dead = acquired["death_time"].notna() & (acquired["death_time"] < end)
    prob = np.where(dead, 1.0, np.exp(-acquired["purchase_rate_per_day"].to_numpy() * horizon_days))
    return pd.Series(prob, index=acquired.index, name="true_churn_probability")
