"""Gamma-Gamma model of the average spend per purchase (Fader, Hardie & Lee 2005, note 025).

A customer's spend per transaction is Gamma(p, nu) with nu ~ Gamma(q, v) across customers; the
average of ``x`` transactions is then Gamma(p x, nu x). Fitted on customers with ``x > 0``.
The model assumes spend is independent of purchase frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln


class SpendArrays:
    """Repeat purchases ``x`` (> 0), their mean spend ``m`` (> 0) and weights, with caches.

    Parameters
    ----------
    x, m : array_like
        One entry per row.
    weights : array_like, optional
        Customers per row (default 1).
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None) -> None:
        self.x = np.asarray(x, dtype=float)
        self.m = np.asarray(m, dtype=float)
        self.weights = np.ones_like(self.x) if weights is None else np.asarray(weights, float)
        ux, xi = np.unique(self.x, return_inverse=True)
        self.x_unique, self.x_index = ux, xi.ravel()
        self.log_m = np.log(self.m)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @classmethod
    def collapsed(cls, x: np.ndarray, m: np.ndarray) -> SpendArrays:
        """Unique (x, m) pairs with their counts as weights."""
        pairs = np.asarray(x, dtype=float) + 1j * np.asarray(m, dtype=float)
        uniq, counts = np.unique(pairs, return_counts=True)  # complex sort: by x, then m
        return cls(uniq.real.copy(), uniq.imag.copy(), counts.astype(float))


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma spend model: parameters ``p, q, v``."""

    name: str = "gamma_gamma"
    label: str = "Gamma-Gamma"
    param_names: tuple[str, ...] = ("p", "q", "v")

    def loglik(
        self, params: np.ndarray, d: SpendArrays, grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-customer log-likelihood of the mean spend ``m`` over ``x`` repeat purchases.

        Parameters
        ----------
        params : ndarray
            ``(p, q, v)``.
        d : SpendArrays
            Repeat purchases (> 0) and the mean spend of those purchases (> 0).
        grad : bool
            Also return the gradient (rows x 3).

        Returns
        -------
        tuple
            Log-likelihood per row, and the gradient or None.
        """
        p, q, v = params
        ux, xi = d.x_unique, d.x_index
        x, l_m = d.x, d.log_m
        pux = p * ux
        l_ux = np.log(ux)
        px = pux[xi]
        xmv = x * d.m + v
        l_xmv = np.log(xmv)
        per_x = gammaln(pux + q) - gammaln(pux) - gammaln(q) + q * np.log(v) + pux * l_ux
        ll = per_x[xi] + (px - 1.0) * l_m - (px + q) * l_xmv
        if not grad:
            return ll, None
        d_pq = digamma(pux + q)
        g = np.empty((ll.shape[0], 3))
        g[:, 0] = (ux * (d_pq - digamma(pux) + l_ux))[xi] + x * (l_m - l_xmv)
        g[:, 1] = (d_pq - digamma(q) + np.log(v))[xi] - l_xmv
        g[:, 2] = q / v - (px + q) / xmv
        return ll, g

    def expected_avg_value(self, params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[spend per purchase | x, m]: a weighted mean of ``m`` and the population mean.

        For ``x == 0`` this is the population mean ``p v / (q - 1)`` (``m`` is ignored); a
        missing ``m`` with ``x > 0`` gives NaN.
        """
        p, q, v = params
        weight = p * x / (p * x + q - 1.0)
        population_mean = p * v / (q - 1.0)
        with np.errstate(invalid="ignore"):
            return (1.0 - weight) * population_mean + weight * np.where(x > 0, m, 0.0)


GAMMA_GAMMA = GammaGamma()
