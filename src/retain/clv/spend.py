"""Gamma-Gamma model of the average spend per purchase (Fader, Hardie & Lee 2005, note 025).

A customer's spend per transaction is Gamma(p, nu) with nu ~ Gamma(q, v) across customers; the
average of ``x`` transactions is then Gamma(p x, nu x). Fitted on customers with ``x > 0``.
The model assumes spend is independent of purchase frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma spend model: parameters ``p, q, v``."""

    name: str = "gamma_gamma"
    label: str = "Gamma-Gamma"
    param_names: tuple[str, ...] = ("p", "q", "v")

    def loglik(
        self, params: np.ndarray, x: np.ndarray, m: np.ndarray, grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-customer log-likelihood of the mean spend ``m`` over ``x`` repeat purchases.

        Parameters
        ----------
        params : ndarray
            ``(p, q, v)``.
        x, m : ndarray
            Repeat purchases (> 0) and mean spend of those purchases (> 0).
        grad : bool
            Also return the gradient (rows x 3).

        Returns
        -------
        tuple
            Log-likelihood per row, and the gradient or None.
        """
        p, q, v = params
        px = p * x
        l_m, l_x, l_xmv = np.log(m), np.log(x), np.log(x * m + v)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1.0) * l_m
            + px * l_x
            - (px + q) * l_xmv
        )
        if not grad:
            return ll, None
        d_pq = digamma(px + q)
        g = np.empty((ll.shape[0], 3))
        g[:, 0] = x * (d_pq - digamma(px) + l_m + l_x - l_xmv)
        g[:, 1] = d_pq - digamma(q) + np.log(v) - l_xmv
        g[:, 2] = q / v - (px + q) / (x * m + v)
        return ll, g

    def expected_avg_value(self, params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[spend per purchase | x, m]: a weighted mean of ``m`` and the population mean.

        For ``x == 0`` this is the population mean ``p v / (q - 1)``.
        """
        p, q, v = params
        weight = p * x / (p * x + q - 1.0)
        population_mean = p * v / (q - 1.0)
        return (1.0 - weight) * population_mean + weight * np.where(x > 0, m, 0.0)


GAMMA_GAMMA = GammaGamma()
