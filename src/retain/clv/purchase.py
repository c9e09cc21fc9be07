"""Purchase-count models of the BTYD family: BG/NBD, MBG/NBD and Pareto/NBD.

Pure numpy/scipy implementations of the per-customer log-likelihoods (with analytic gradients
where they exist), the probability of being alive, the conditional expected number of repeat
purchases and the conditional probability of exactly ``n`` repeat purchases in a window (its
``n = 0`` case is the probability of no purchase). A new customer is the history
``x = t_x = T = 0``. The BTYD names ``x`` (frequency), ``t_x`` (recency) and ``T`` (tenure) are
used only inside this package.

The formulas follow the references below and agree with ``lifetimes`` 0.11.3 where lifetimes is
numerically sound. The Pareto/NBD likelihood is rewritten so that it stays finite when recency
equals tenure (``lifetimes`` evaluates ``logsumexp([a, a], b=[1, -1])`` there, which returns NaN
on scipy >= 1.16 instead of ``-inf``).

References
----------
Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
Batislam, Denizel & Filiztekin (2007), IJRM 24(3); Wagner & Hoppe (2008), IJRM 25(3) (MBG/NBD).
Schmittlein, Morrison & Colombo (1987), Management Science 33(1) (Pareto/NBD);
Fader & Hardie (2005), "A note on deriving the Pareto/NBD model", brucehardie.com/notes/009.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, xlogy

FloatArray = np.ndarray

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(48)


class RfmArrays:
    """Frequency ``x``, recency ``t_x``, tenure ``T`` and weights as float arrays.

    Parameters
    ----------
    x, t_x, T : array_like
        Repeat purchases, recency and tenure (same time unit), one entry per row.
    weights : array_like, optional
        Number of customers represented by each row (default 1).
    """

    def __init__(
        self,
        x: FloatArray,
        t_x: FloatArray,
        T: FloatArray,
        weights: FloatArray | None = None,
    ) -> None:
        self.x = np.asarray(x, dtype=float)
        self.t_x = np.asarray(t_x, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.ones_like(self.x) if weights is None else np.asarray(weights, dtype=float)
        self._pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._x_unique: tuple[np.ndarray, np.ndarray] | None = None
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def _x_codes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._x_unique is None:
            ux, inv = np.unique(self.x, return_inverse=True)
            self._x_unique = (ux, inv.ravel())
        return self._x_unique

    def unique(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique values of ``x``, ``t_x`` or ``T`` and the row -> value index.

        Terms that depend on a single variable (special functions of ``x``, logs of ``T``) are
        computed once per unique value and gathered, which is much cheaper on large data.
        """
        if name == "x":
            return self._x_codes()
        if name not in self._codes:
            uniq, inv = np.unique(getattr(self, name), return_inverse=True)
            self._codes[name] = (uniq, inv.ravel())
        return self._codes[name]

    @property
    def x_unique(self) -> np.ndarray:
        """Sorted unique frequencies."""
        return self._x_codes()[0]

    def _pair(self, name: str, time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if name not in self._pairs:
            ux, xcode = self._x_codes()
            _, tcode = self.unique(name)
            key = xcode.astype(np.int64) * (int(tcode.max(initial=0)) + 1) + tcode
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            self._pairs[name] = (xcode[first], time[first], inverse.ravel())
        return self._pairs[name]

    @property
    def recency_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unique (x, t_x) pairs: (index into :attr:`x_unique`, t_x, row -> pair index)."""
        return self._pair("t_x", self.t_x)

    @property
    def tenure_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unique (x, T) pairs: (index into :attr:`x_unique`, T, row -> pair index)."""
        return self._pair("T", self.T)


class PurchaseModel(Protocol):
    """Interface shared by the purchase models (all arrays broadcast elementwise)."""

    name: str
    label: str
    param_names: tuple[str, ...]
    analytic_gradient: bool

    def loglik(
        self, params: FloatArray, d: RfmArrays, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        """Per-row log-likelihood and, if ``grad``, its gradient (rows x params)."""
        ...

    def p_alive(self, params: FloatArray, d: RfmArrays) -> FloatArray:
        """Probability that the customer is still alive at ``T``."""
        ...

    def expected_purchases(self, params: FloatArray, t: float, d: RfmArrays) -> FloatArray:
        """Expected repeat purchases in ``(T, T + t]`` given the history."""
        ...

    def probability_of_n_purchases(
        self, params: FloatArray, t: float, n: int, d: RfmArrays
    ) -> FloatArray:
        """P(exactly ``n`` repeat purchases in ``(T, T + t]`` | history)."""
        ...


def _log_nbd(r: FloatArray, alpha: FloatArray, t: FloatArray, n: int) -> FloatArray:
    """log P(N(t) = n), N Poisson with rate lambda ~ Gamma(r, alpha) (the NBD count)."""
    return (
        gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1.0)
        + r * (np.log(alpha) - np.log(alpha + t))
        + xlogy(n, t)
        - n * np.log(alpha + t)
    )


def _bg_alive_pmf(
    r: FloatArray, alpha: FloatArray, a: float, b: FloatArray, t: float, n: int
) -> FloatArray:
    """P(n purchases in t | alive now) when each purchase ends the relationship w.p. p.

    The rate is ``lambda ~ Gamma(r, alpha)`` and ``p ~ Beta(a, b)`` (the posteriors of an alive
    BG/NBD or MBG/NBD customer). Either the customer survives ``n`` purchases and makes exactly
    ``n``, or the ``n``-th purchase is the last:
    ``B(a, b+n)/B(a, b) NBD(n) + B(a+1, b+n-1)/B(a, b) P(NBD >= n)`` (Fader, Hardie & Lee 2005,
    eq. 8, with the posterior parameters). ``P(NBD >= n) = I_z(n, r)``, ``z = t / (alpha + t)``.
    """
    log_beta = betaln(a, b)
    first = np.exp(betaln(a, b + n) - log_beta + _log_nbd(r, alpha, t, n))
    if n == 0:
        return first
    tail = betainc(float(n), r, t / (alpha + t))
    return first + np.exp(betaln(a + 1.0, b + n - 1.0) - log_beta) * tail


def _pareto_alive_pmf(
    r: FloatArray, alpha: FloatArray, s: float, beta: FloatArray, t: float, n: int
) -> FloatArray:
    """P(n purchases in t | alive now) for exponential lifetimes ``mu ~ Gamma(s, beta)``.

    ``E[exp(-mu t)] NBD(n; t) + int_0^t E[mu exp(-mu u)] NBD(n; u) du`` (alive throughout, or
    dead at ``u`` after ``n`` purchases), the integral by 48-point Gauss-Legendre quadrature:
    the integrand is analytic on ``[0, t]`` (its singularities sit at ``-alpha`` and ``-beta``).
    """
    survive = np.exp(s * (np.log(beta) - np.log(beta + t)) + _log_nbd(r, alpha, t, n))
    u = (_GAUSS_NODES[:, None] + 1.0) * (t / 2.0)
    death = (s / beta) * np.exp(
        (s + 1.0) * (np.log(beta) - np.log(beta + u)) + _log_nbd(r, alpha, u, n)
    )
    return survive + (t / 2.0) * (_GAUSS_WEIGHTS[:, None] * death).sum(axis=0)


def _mixed_pmf(p_alive: FloatArray, alive_pmf: FloatArray, n: int) -> FloatArray:
    """``P(n) = (1 - p_alive) [n == 0] + p_alive P(n | alive)``, clipped to [0, 1]."""
    dead = (1.0 - p_alive) if n == 0 else 0.0
    return np.clip(dead + p_alive * alive_pmf, 0.0, 1.0)


def _log_hyp2f1(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """log 2F1(a, b; c; z) for 0 <= z < 1, falling back on Euler's transformation on overflow."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        bad = ~np.isfinite(direct)
        if np.any(bad):
            a_, b_, c_, z_ = (np.broadcast_to(v, direct.shape)[bad] for v in (a, b, c, z))
            alt = np.log(hyp2f1(c_ - a_, c_ - b_, c_, z_)) + (c_ - a_ - b_) * np.log1p(-z_)
            direct = direct.copy()
            direct[bad] = alt
    return direct


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD (Fader, Hardie & Lee 2005): parameters ``r, alpha, a, b``."""

    name: str = "bgnbd"
    label: str = "BG/NBD"
    param_names: tuple[str, ...] = ("r", "alpha", "a", "b")
    analytic_gradient: bool = True

    def loglik(
        self, params: FloatArray, d: RfmArrays, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        r, alpha, a, b = params
        ux, xi = d.unique("x")
        uT, Ti = d.unique("T")
        utx, txi = d.unique("t_x")
        x = d.x
        rx = r + x
        pos = x > 0
        bx1_u = np.where(ux > 0, b + ux - 1.0, 1.0)
        l_aT = np.log(alpha + uT)[Ti]
        l_atx = np.log(alpha + utx)[txi]
        a12 = (
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + ux)
            - gammaln(b)
            - gammaln(a + b + ux)
        )[xi]
        a3 = -rx * l_aT
        a4 = np.where(pos, (np.log(a) - np.log(bx1_u))[xi] - rx * l_atx, -np.inf)
        dd = np.logaddexp(a3, a4)
        ll = a12 + dd
        if not grad:
            return ll, None
        w3 = np.exp(a3 - dd)
        w4 = np.exp(a4 - dd)
        g = np.empty((ll.shape[0], 4))
        g[:, 0] = (digamma(r + ux) - digamma(r) + np.log(alpha))[xi] - w3 * l_aT - w4 * l_atx
        g[:, 1] = r / alpha - rx * (w3 / (alpha + uT)[Ti] + w4 / (alpha + utx)[txi])
        dab_u = digamma(a + b) - digamma(a + b + ux)
        g[:, 2] = dab_u[xi] + w4 / a
        g[:, 3] = (dab_u + digamma(b + ux) - digamma(b))[xi] - w4 / bx1_u[xi]
        return ll, g

    def p_alive(self, params: FloatArray, d: RfmArrays) -> FloatArray:
        r, alpha, a, b = params
        x, t_x, T = d.x, d.t_x, d.T
        pos = x > 0
        bx1 = np.where(pos, b + x - 1.0, 1.0)
        log_odds_dead = np.log(a) - np.log(bx1) + (r + x) * np.log((alpha + T) / (alpha + t_x))
        return np.where(pos, expit(-log_odds_dead), 1.0)

    def expected_purchases(self, params: FloatArray, t: float, d: RfmArrays) -> FloatArray:
        r, alpha, a, b = params
        x, T = d.x, d.T
        if t <= 0:
            return np.zeros(np.shape(x))
        z = t / (alpha + T + t)
        log_h = _log_hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        inner = -np.expm1(log_h + (r + x) * np.log((alpha + T) / (alpha + T + t)))
        numerator = (a + b + x - 1.0) / (a - 1.0) * inner
        return numerator * self.p_alive(params, d)

    def probability_of_n_purchases(
        self, params: FloatArray, t: float, n: int, d: RfmArrays
    ) -> FloatArray:
        """Alive: ``lambda ~ Gamma(r + x, alpha + T)``, ``p ~ Beta(a, b + x)``."""
        r, alpha, a, b = params
        alive = _bg_alive_pmf(r + d.x, alpha + d.T, a, b + d.x, t, n)
        return _mixed_pmf(self.p_alive(params, d), alive, n)


@dataclass(frozen=True)
class MbgNbd:
    """MBG/NBD (Batislam et al. 2007, Wagner & Hoppe 2008): parameters ``r, alpha, a, b``.

    Unlike BG/NBD a customer may drop out right after the first purchase, so ``p_alive < 1``
    even with no repeat purchase.
    """

    name: str = "mbgnbd"
    label: str = "MBG/NBD"
    param_names: tuple[str, ...] = ("r", "alpha", "a", "b")
    analytic_gradient: bool = True

    def loglik(
        self, params: FloatArray, d: RfmArrays, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        r, alpha, a, b = params
        ux, xi = d.unique("x")
        uT, Ti = d.unique("T")
        utx, txi = d.unique("t_x")
        rx = r + d.x
        l_aT = np.log(alpha + uT)[Ti]
        l_atx = np.log(alpha + utx)[txi]
        a12 = (
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + ux + 1.0)
            - gammaln(b)
            - gammaln(a + b + ux + 1.0)
        )[xi]
        a3 = -rx * l_aT
        a4 = (np.log(a) - np.log(b + ux))[xi] + rx * (l_aT - l_atx)
        ll = a12 + a3 + np.logaddexp(a4, 0.0)
        if not grad:
            return ll, None
        sig = expit(a4)
        inv_aT = (1.0 / (alpha + uT))[Ti]
        g = np.empty((ll.shape[0], 4))
        g[:, 0] = (digamma(r + ux) - digamma(r) + np.log(alpha))[xi] - l_aT + sig * (l_aT - l_atx)
        g[:, 1] = r / alpha - rx * inv_aT + sig * rx * (inv_aT - (1.0 / (alpha + utx))[txi])
        dab_u = digamma(a + b) - digamma(a + b + ux + 1.0)
        g[:, 2] = dab_u[xi] + sig / a
        g[:, 3] = (dab_u + digamma(b + ux + 1.0) - digamma(b))[xi] - sig / (b + ux)[xi]
        return ll, g

    def p_alive(self, params: FloatArray, d: RfmArrays) -> FloatArray:
        r, alpha, a, b = params
        x, t_x, T = d.x, d.t_x, d.T
        log_odds_dead = np.log(a) - np.log(b + x) + (r + x) * np.log((alpha + T) / (alpha + t_x))
        return expit(-log_odds_dead)

    def expected_purchases(self, params: FloatArray, t: float, d: RfmArrays) -> FloatArray:
        r, alpha, a, b = params
        x, T = d.x, d.T
        if t <= 0:
            return np.zeros(np.shape(x))
        z = t / (alpha + T + t)
        log_h = _log_hyp2f1(r + x, b + x + 1.0, a + b + x, z)
        inner = -np.expm1(log_h + (r + x) * np.log((alpha + T) / (alpha + T + t)))
        numerator = (a + b + x) / (a - 1.0) * inner
        return numerator * self.p_alive(params, d)

    def probability_of_n_purchases(
        self, params: FloatArray, t: float, n: int, d: RfmArrays
    ) -> FloatArray:
        """Alive: ``lambda ~ Gamma(r + x, alpha + T)``, ``p ~ Beta(a, b + x + 1)``."""
        r, alpha, a, b = params
        alive = _bg_alive_pmf(r + d.x, alpha + d.T, a, b + d.x + 1.0, t, n)
        return _mixed_pmf(self.p_alive(params, d), alive, n)


@dataclass(frozen=True)
class ParetoNbd:
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987): parameters ``r, alpha, s, beta``.

    The likelihood (Fader & Hardie note 009, eq. 18-20) is

    ``L = G(r+x) a^r b^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]``

    with ``A0 = F(t_x) / (m + t_x)^(r+s+x) - F(T) / (m + T)^(r+s+x)`` >= 0 (``m`` the larger
    of alpha and beta, ``F`` a Gauss hypergeometric term). ``log A0`` is computed as
    ``u1 + log1p(-exp(u2 - u1))``: exactly ``-inf`` when ``t_x == T`` (then the second term
    vanishes) and never NaN. The gradient is taken by central differences.
    """

    name: str = "pareto_nbd"
    label: str = "Pareto/NBD"
    param_names: tuple[str, ...] = ("r", "alpha", "s", "beta")
    analytic_gradient: bool = False

    @staticmethod
    def log_a0(params: FloatArray, d: RfmArrays) -> FloatArray:
        """``log A0`` of Fader & Hardie (2005) eq. 19-20, stable when ``t_x == T``."""
        r, alpha, s, beta = params
        ux, xi = d.unique("x")
        uT, Ti = d.unique("T")
        utx, txi = d.unique("t_x")
        if alpha < beta:
            hi, lo, second = beta, alpha, r + ux
        else:
            hi, lo, second = alpha, beta, np.full(ux.shape, s + 1.0)
        rsx = r + s + ux
        diff = hi - lo
        # the hypergeometric terms depend on the row only through (x, time): evaluate them once
        # per unique (x, t_x) and (x, T) pair
        ix, tx_u, tx_inv = d.recency_pairs
        h1 = _log_hyp2f1(rsx[ix], second[ix], rsx[ix] + 1.0, diff / (hi + tx_u))[tx_inv]
        ix, T_u, T_inv = d.tenure_pairs
        h2 = _log_hyp2f1(rsx[ix], second[ix], rsx[ix] + 1.0, diff / (hi + T_u))[T_inv]
        rsx_rows = rsx[xi]
        u1 = h1 - rsx_rows * np.log(hi + utx)[txi]
        u2 = h2 - rsx_rows * np.log(hi + uT)[Ti]
        with np.errstate(divide="ignore"):
            return u1 + np.log(-np.expm1(np.minimum(u2 - u1, 0.0)))

    def loglik(
        self, params: FloatArray, d: RfmArrays, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        r, alpha, s, beta = params
        ux, xi = d.unique("x")
        uT, Ti = d.unique("T")
        a1 = gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        b_term = -(r + d.x) * np.log(alpha + uT)[Ti] - (s * np.log(beta + uT))[Ti]
        a0_term = self.log_a0(params, d) + (np.log(s) - np.log(r + s + ux))[xi]
        return a1[xi] + np.logaddexp(b_term, a0_term), None

    def p_alive(self, params: FloatArray, d: RfmArrays) -> FloatArray:
        r, alpha, s, beta = params
        x, T = d.x, d.T
        log_odds_dead = (
            np.log(s)
            - np.log(r + s + x)
            + (r + x) * np.log(alpha + T)
            + s * np.log(beta + T)
            + self.log_a0(params, d)
        )
        return expit(-log_odds_dead)

    def expected_purchases(self, params: FloatArray, t: float, d: RfmArrays) -> FloatArray:
        r, alpha, s, beta = params
        x, T = d.x, d.T
        if t <= 0:
            return np.zeros(np.shape(x))
        # [1 - ((beta+T)/(beta+T+t))^(s-1)] / (s-1), with the s -> 1 limit log((beta+T+t)/(beta+T))
        log_ratio = np.log1p(t / (beta + T))
        sm1 = s - 1.0
        if abs(sm1) < 1e-12:
            decay = log_ratio
        else:
            decay = -np.expm1(-sm1 * log_ratio) / sm1
        return self.p_alive(params, d) * (r + x) * (beta + T) / (alpha + T) * decay

    def probability_of_n_purchases(
        self, params: FloatArray, t: float, n: int, d: RfmArrays
    ) -> FloatArray:
        """Alive: ``lambda ~ Gamma(r + x, alpha + T)``, ``mu ~ Gamma(s, beta + T)``."""
        r, alpha, s, beta = params
        alive = _pareto_alive_pmf(r + d.x, alpha + d.T, s, beta + d.T, t, n)
        return _mixed_pmf(self.p_alive(params, d), alive, n)


PURCHASE_MODELS: dict[str, PurchaseModel] = {m.name: m for m in (BgNbd(), MbgNbd(), ParetoNbd())}
"""Registry of the purchase models by name."""
