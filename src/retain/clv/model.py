"""``ClvModel``: a scikit-learn style estimator for probabilistic customer lifetime value.

A purchase model (BG/NBD, MBG/NBD or Pareto/NBD) predicts how many repeat purchases a customer
will make; the Gamma-Gamma model predicts how much each purchase is worth. The discounted CLV
combines both, month by month.

Time conventions (no hidden "4.345 weeks a month"):

- the model works in the unit of the RFM summary it is fitted on: ``time_unit="W"`` (weeks of 7
  days, columns ``recency_weeks``/``tenure_weeks``) or ``"D"`` (days);
- a month is ``365.25 / 12 = 30.4375`` days, i.e. ``30.4375 / 7 = 4.348214...`` weeks;
- ``discount_rate`` is a monthly rate ``d``; the horizon is a whole number of months ``H``;
- ``clv = sum_{k=1..H} E[purchases in month k] * E[spend per purchase] / (1 + d)^k`` where the
  purchases in month k are ``E[Y(k months)] - E[Y((k-1) months)]`` from the fitted purchase model
  (cash flows of month k are discounted by k whole months, the convention of Fader, Hardie & Lee).

Penalizers: ``penalizer`` applies to both sub-models; ``purchase_penalizer`` and
``spend_penalizer`` (None = use ``penalizer``) set each one alone. A refused fit names the
sub-model, the parameter at its limit and the setting that applies (``clv.purchase_penalizer`` or
``clv.spend_penalizer`` in the run config).

Why one module past 600 lines: it is the one estimator, with its fit, predictions (the
per-customer diagnostics among them), saved form (``to_dict``/``from_dict``) and the checks of
all three; the formulas live in ``purchase``/``spend``, the tables built from them in
``diagnostics``.
"""

from __future__ import annotations

import warnings
from functools import partial
from importlib import metadata
from typing import Any, Literal

import numpy as np
import pandas as pd

from retain.clv.mle import ClvFitError, MleResult, fit_mle, penalizer_advice
from retain.clv.purchase import PURCHASE_MODELS, PurchaseModel, RfmArrays
from retain.clv.spend import GAMMA_GAMMA, SpendArrays
from retain.contracts import CUSTOMER_ID
from retain.features.rfm import UNIT_NAMES
from retain.timeline import DAYS_PER_MONTH, UNIT_DAYS

PurchaseModelName = Literal["bgnbd", "pareto_nbd", "mbgnbd"]
SpendModelName = Literal["gamma_gamma"]


SPEND_CORRELATION_WARNING = 0.3
"""|corr(frequency, monetary_value)| above which the Gamma-Gamma independence is doubtful."""

WARM_START_CUSTOMERS = 20_000
"""Above this many distinct rows, a fit on a weighted subsample of this size gives the start."""

FORMAT = "retain.clv/1"
"""Format tag of :meth:`ClvModel.to_dict`."""

PREDICTION_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "expected_avg_value",
    "clv",
    "expected_next_purchase_days",
)


class NotFittedError(RuntimeError):
    """The model must be fitted (or loaded) before this call."""


class SpendCorrelationWarning(UserWarning):
    """Spend and purchase frequency are correlated: the Gamma-Gamma assumption is doubtful."""


class ZeroSpendWarning(UserWarning):
    """Some repeat customers spent nothing on average; they are left out of the spend fit."""


def month_length(time_unit: str) -> float:
    """Length of a CLV month in the given time unit (``"D"``: 30.4375, ``"W"``: 4.348214...)."""
    if time_unit not in UNIT_DAYS:
        raise ValueError(f"time_unit must be 'D' or 'W', got {time_unit!r}")
    return DAYS_PER_MONTH / UNIT_DAYS[time_unit]


def collapse_rfm(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None
) -> tuple[RfmArrays, np.ndarray]:
    """Unique (x, t_x, T) rows with their counts as weights.

    ``weights`` (e.g. the counts of rows that are already distinct within parts of a
    population) are summed per unique row instead of counting rows: the same population
    collapsed from its parts gives the same arrays, in the same order, as collapsed whole.

    Returns
    -------
    (RfmArrays, ndarray)
        The collapsed rows (weights = number of customers) and, for every input row, the index
        of its collapsed row.
    """
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    if x.size == 0:
        return RfmArrays(x, t_x, T, np.zeros(0)), np.zeros(0, dtype=np.int64)
    codes = [np.unique(v, return_inverse=True)[1].ravel().astype(np.int64) for v in (x, t_x, T)]
    key = codes[0]
    for c in codes[1:]:
        key = key * (int(c.max()) + 1) + c
    _, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    if weights is None:
        w = counts.astype(float)
    else:
        w = np.zeros(len(first), dtype=float)
        np.add.at(w, inverse, np.asarray(weights, dtype=float))
    return RfmArrays(x[first], t_x[first], T[first], w), inverse


def _start_values(model: PurchaseModel, d: RfmArrays) -> np.ndarray:
    """Crude moment-based starting values (natural units)."""
    w = d.weights / d.weights.sum()
    mean_T = max(float(np.sum(w * d.T)), 1e-3)  # no BLAS dot: see fit_mle
    mean_x = max(float(np.sum(w * d.x)), 0.05)
    alpha = mean_T / mean_x  # with r = 1, E[lambda] = r / alpha = mean rate
    if model.name == "pareto_nbd":
        return np.array([1.0, alpha, 1.0, mean_T])
    return np.array([1.0, alpha, 1.0, 2.0])


def _fit_purchase(
    model: PurchaseModel,
    d: RfmArrays,
    penalizer: float,
    penalizer_key: str = "penalizer",
    penalizer_from: str | None = None,
) -> MleResult:
    """Fit a purchase model, warm-started from a weighted subsample when the data are large.

    ``penalizer_key`` and ``penalizer_from`` name the setting in error messages (see
    :func:`fit_mle`).
    """
    x0 = _start_values(model, d)

    def loglik(params: np.ndarray, grad: bool, data: RfmArrays) -> Any:
        return model.loglik(params, data, grad)

    warm = False
    if len(d) > WARM_START_CUSTOMERS:
        rng = np.random.default_rng(0)
        counts = rng.multinomial(WARM_START_CUSTOMERS, d.weights / d.weights.sum())
        keep = counts > 0
        sub = RfmArrays(d.x[keep], d.t_x[keep], d.T[keep], counts[keep])
        try:
            x0 = fit_mle(
                model.label,
                lambda p, g: loglik(p, g, sub),
                sub.weights,
                x0,
                penalizer=penalizer,
                analytic=model.analytic_gradient,
                param_names=model.param_names,
                standard_errors=False,
                penalizer_key=penalizer_key,
                penalizer_from=penalizer_from,
            ).params
            warm = True
        except ClvFitError:
            pass  # the full fit starts from the moment values and reports its own failure
    return fit_mle(
        model.label,
        lambda p, g: loglik(p, g, d),
        d.weights,
        x0,
        penalizer=penalizer,
        analytic=model.analytic_gradient,
        param_names=model.param_names,
        newton_start=warm and not model.analytic_gradient,
        penalizer_key=penalizer_key,
        penalizer_from=penalizer_from,
    )


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("retain", "numpy", "scipy", "pandas", "lifetimes"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


class ClvModel:
    """Probabilistic CLV estimator: a purchase model plus the Gamma-Gamma spend model.

    Parameters
    ----------
    purchase_model : {"bgnbd", "pareto_nbd", "mbgnbd"}
        Repeat-purchase model. (Choosing by holdout error: :func:`retain.clv.fit_auto`.)
    spend_model : {"gamma_gamma"} or None
        Spend model; ``None`` skips it (``expected_avg_value`` and ``clv`` are then NaN).
    penalizer : float
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative log-likelihood per
        customer of each sub-model (parameters in the model's time unit). 0 = plain MLE.
    purchase_penalizer, spend_penalizer : float or None
        The penalty of the purchase model and of the spend model alone; None (default) uses
        ``penalizer``. Gamma-Gamma's ``v`` is in money units, so a penalty that suits the
        purchase model can push its ``q`` below 1 (e.g. 0.01 on CDNOW). Fit errors name these
        settings by their run-config keys (``clv.purchase_penalizer``, ...).
    time_unit : {"W", "D"}
        Unit of the summary's recency/tenure (``recency_weeks`` or ``recency_days``).
    discount_rate : float
        Monthly discount rate ``d`` (0.01 = 1 % a month).
    horizon : int
        CLV horizon in months.

    Attributes
    ----------
    purchase_params_ : dict
        Purchase-model estimates (``r, alpha, a, b`` or ``r, alpha, s, beta``; rates per
        ``time_unit``).
    purchase_standard_errors_ : dict
        Asymptotic standard errors of the purchase estimates.
    spend_params_ : dict or None
        Gamma-Gamma estimates ``p, q, v``.
    spend_standard_errors_ : dict or None
    log_likelihood_ : float
        Total log-likelihood of the purchase model at the estimate.
    spend_log_likelihood_ : float or None
    spend_frequency_corr_ : float or None
        Pearson correlation of frequency and monetary value among repeat customers.
    n_customers_, n_rows_, n_spend_customers_, n_spend_excluded_ : int
        Customers fitted, distinct (frequency, recency, tenure) rows, repeat customers used by
        the spend model.

    Notes
    -----
    See the module docstring for the month and discounting convention. ``fit`` keeps no copy of
    the data; predictions never refit.
    """

    def __init__(
        self,
        purchase_model: PurchaseModelName = "bgnbd",
        spend_model: SpendModelName | None = "gamma_gamma",
        penalizer: float = 0.0,
        time_unit: Literal["W", "D"] = "W",
        discount_rate: float = 0.01,
        horizon: int = 12,
        purchase_penalizer: float | None = None,
        spend_penalizer: float | None = None,
    ) -> None:
        self.purchase_model = purchase_model
        self.spend_model = spend_model
        self.penalizer = penalizer
        self.purchase_penalizer = purchase_penalizer
        self.spend_penalizer = spend_penalizer
        self.time_unit = time_unit
        self.discount_rate = discount_rate
        self.horizon = horizon

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        return {
            "purchase_model": self.purchase_model,
            "spend_model": self.spend_model,
            "penalizer": self.penalizer,
            "time_unit": self.time_unit,
            "discount_rate": self.discount_rate,
            "horizon": self.horizon,
            "purchase_penalizer": self.purchase_penalizer,
            "spend_penalizer": self.spend_penalizer,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"ClvModel({args})"

    def _validate_params(self) -> PurchaseModel:
        if self.purchase_model == "auto":
            raise ValueError(
                "purchase_model='auto' selects a model by holdout error: use "
                "retain.clv.fit_auto(transactions, calibration_end, holdout_end, ...)"
            )
        if self.purchase_model not in PURCHASE_MODELS:
            raise ValueError(
                f"purchase_model must be one of {sorted(PURCHASE_MODELS)}, "
                f"got {self.purchase_model!r}"
            )
        if self.spend_model not in ("gamma_gamma", None):
            raise ValueError(f"spend_model must be 'gamma_gamma' or None, got {self.spend_model!r}")
        for name in ("penalizer", "purchase_penalizer", "spend_penalizer"):
            value = getattr(self, name)
            if value is None and name != "penalizer":
                continue
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        month_length(self.time_unit)
        if not (0 <= self.discount_rate < 1):
            raise ValueError(
                f"discount_rate is monthly and must be in [0, 1), got {self.discount_rate}"
            )
        if int(self.horizon) != self.horizon or self.horizon < 1:
            raise ValueError(f"horizon is a whole number of months >= 1, got {self.horizon!r}")
        return PURCHASE_MODELS[self.purchase_model]

    def _penalizer(self, part: Literal["purchase", "spend"]) -> tuple[float, str, str | None]:
        """The penalizer of a sub-model, its config key, and the key it came from if unset."""
        own = getattr(self, f"{part}_penalizer")
        key = f"clv.{part}_penalizer"
        if own is None:
            return float(self.penalizer), key, "clv.penalizer"
        return float(own), key, None

    # ------------------------------------------------------------------ inputs
    def _columns(self) -> tuple[str, str]:
        name = UNIT_NAMES[self.time_unit]
        return f"recency_{name}", f"tenure_{name}"

    def _rfm(self, summary: pd.DataFrame) -> RfmArrays:
        """Validated (x, t_x, T) arrays from an RFM summary in this model's time unit."""
        rec_col, ten_col = self._columns()
        if rec_col not in summary or ten_col not in summary:
            found = [c for c in summary.columns if c.startswith(("recency_", "tenure_"))]
            other = {"W": "D", "D": "W"}[self.time_unit]
            raise ValueError(
                f"ClvModel(time_unit={self.time_unit!r}) needs columns {rec_col!r} and "
                f"{ten_col!r} but the summary has {found or list(summary.columns)}; build it "
                f"with rfm_summary(..., time_unit={self.time_unit!r}) or use "
                f"ClvModel(time_unit={other!r}) if the summary is in "
                f"{UNIT_NAMES[other]}."
            )
        if "frequency" not in summary:
            raise ValueError("the summary has no 'frequency' column (see rfm_summary)")
        x = summary["frequency"].to_numpy(dtype=float, na_value=np.nan)
        t_x = summary[rec_col].to_numpy(dtype=float, na_value=np.nan)
        T = summary[ten_col].to_numpy(dtype=float, na_value=np.nan)
        problems = []
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
            problems.append("missing or infinite values")
        else:
            if np.any(x < 0) or np.any(x != np.round(x)):
                problems.append("frequency must be a whole number >= 0")
            if np.any(t_x < 0) or np.any(t_x > T):
                problems.append(f"need 0 <= {rec_col} <= {ten_col}")
            if np.any((x == 0) & (t_x != 0)):
                problems.append(f"{rec_col} must be 0 when frequency is 0")
        if problems:
            raise ValueError("invalid RFM summary: " + "; ".join(problems))
        return RfmArrays(x, t_x, T)

    @staticmethod
    def _spend_rows(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if "monetary_value" not in summary:
            raise ValueError("the summary has no 'monetary_value' column (needed by Gamma-Gamma)")
        x = summary["frequency"].to_numpy(dtype=float)
        m = summary["monetary_value"].to_numpy(dtype=float, na_value=np.nan)
        return x, m

    # ------------------------------------------------------------------ fit
    def fit(self, summary: pd.DataFrame, weights: np.ndarray | None = None) -> ClvModel:
        """Fit the purchase and spend models on an RFM summary.

        Parameters
        ----------
        summary : DataFrame
            Output of :func:`retain.features.rfm.rfm_summary` in this model's time unit:
            ``frequency``, ``recency_<unit>``, ``tenure_<unit>`` and ``monetary_value``.
        weights : ndarray, optional
            Number of customers each row stands for (a summary of distinct rows with their
            counts, as the global step of a partitioned run gives); purchase model only.

        Returns
        -------
        ClvModel
            ``self``, with the fitted attributes set.

        Raises
        ------
        ValueError
            Wrong columns (e.g. a summary in days for a weekly model) or invalid values.
        ClvFitError
            A sub-model did not converge, had a NaN/infinite likelihood or a parameter on a
            bound (or Gamma-Gamma's ``q <= 1``); the message names the sub-model, the parameter
            and the penalizer setting that applies to it, and what to do with it.

        Warns
        -----
        SpendCorrelationWarning
            When ``|corr(frequency, monetary_value)| > 0.3`` among repeat customers.
        """
        model = self._validate_params()
        d = self._rfm(summary)
        if len(d) == 0:
            raise ValueError("cannot fit a CLV model on an empty summary")
        if weights is not None and self.spend_model is not None:
            raise ValueError("weighted rows fit a purchase model only (spend_model=None)")
        collapsed, _ = collapse_rfm(d.x, d.t_x, d.T, weights)
        res = _fit_purchase(model, collapsed, *self._penalizer("purchase"))
        self.purchase_params_ = dict(zip(model.param_names, map(float, res.params), strict=True))
        self.purchase_standard_errors_ = dict(
            zip(model.param_names, map(float, res.standard_errors), strict=True)
        )
        self.log_likelihood_ = res.log_likelihood
        self.n_customers_ = len(d) if weights is None else int(np.sum(weights))
        self.n_rows_ = len(collapsed)
        self.spend_params_ = None
        self.spend_standard_errors_ = None
        self.spend_log_likelihood_ = None
        self.spend_frequency_corr_ = None
        self.n_spend_customers_ = 0
        self.n_spend_excluded_ = 0
        if self.spend_model is not None:
            self._fit_spend(summary)
        return self

    def _fit_spend(self, summary: pd.DataFrame) -> None:
        x, m = self._spend_rows(summary)
        repeat = x > 0
        x, m = x[repeat], m[repeat]
        label = GAMMA_GAMMA.label
        if x.size < 2:
            raise ClvFitError(f"{label}: needs at least 2 customers with repeat purchases")
        bad = ~np.isfinite(m)
        if bad.any():
            raise ValueError(
                f"{label}: monetary_value must be a finite number for customers with repeat "
                f"purchases; {int(bad.sum())} of {x.size} are not"
            )
        free = m <= 0
        self.n_spend_excluded_ = int(free.sum())
        if free.any():
            # Zero-value repeat occasions (free items, fully discounted orders) carry no spend
            # information the Gamma model can use: they are left out of the spend fit, and their
            # predicted spend comes from the fitted prior shrunk towards their own zero mean.
            warnings.warn(
                f"{label}: {int(free.sum())} of {x.size} repeat customers have a mean repeat "
                "spend <= 0 and are left out of the spend fit",
                ZeroSpendWarning,
                stacklevel=3,
            )
            x, m = x[~free], m[~free]
            if x.size < 2:
                raise ClvFitError(f"{label}: needs at least 2 customers with positive spend")
        corr = float(np.corrcoef(x, m)[0, 1]) if np.std(x) > 0 and np.std(m) > 0 else 0.0
        if abs(corr) > SPEND_CORRELATION_WARNING:
            warnings.warn(
                f"{label}: frequency and monetary value are correlated (Pearson r = {corr:.2f}, "
                f"|r| > {SPEND_CORRELATION_WARNING}); the model assumes independence, so "
                "expected spend and CLV may be biased",
                SpendCorrelationWarning,
                stacklevel=3,
            )
        data = SpendArrays.collapsed(x, m)
        x0 = np.array([1.0, 2.0, float(np.mean(m))])
        penalizer, key, source = self._penalizer("spend")
        fit = partial(
            fit_mle,
            label,
            penalizer=penalizer,
            analytic=True,
            bounds=(1e-6, 1e12),
            param_names=GAMMA_GAMMA.param_names,
            penalizer_key=key,
            penalizer_from=source,
        )
        if len(data) > WARM_START_CUSTOMERS:
            rng = np.random.default_rng(0)
            counts = rng.multinomial(WARM_START_CUSTOMERS, data.weights / data.weights.sum())
            keep = counts > 0
            sub = SpendArrays(data.x[keep], data.m[keep], counts[keep])
            try:
                x0 = fit(
                    lambda p, g: GAMMA_GAMMA.loglik(p, sub, g),
                    sub.weights,
                    x0,
                    standard_errors=False,
                ).params
            except ClvFitError:
                pass  # the full fit reports its own failure
        res = fit(lambda p, g: GAMMA_GAMMA.loglik(p, data, g), data.weights, x0)
        params = dict(zip(GAMMA_GAMMA.param_names, map(float, res.params), strict=True))
        if params["q"] <= 1.0:
            values = ", ".join(f"{k}={v:.3g}" for k, v in params.items())
            raise ClvFitError(
                f"{label}: q reached {params['q']:.3g}, at or below its limit 1 ({values}): the "
                "population mean spend p v / (q - 1) is not finite. "
                + penalizer_advice(label, key, penalizer, shrunk=True, inherited_from=source)
            )
        self.spend_params_ = params
        self.spend_standard_errors_ = dict(
            zip(GAMMA_GAMMA.param_names, map(float, res.standard_errors), strict=True)
        )
        self.spend_log_likelihood_ = res.log_likelihood
        self.spend_frequency_corr_ = corr
        self.n_spend_customers_ = int(x.size)

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> PurchaseModel:
        if not hasattr(self, "purchase_params_"):
            raise NotFittedError("ClvModel is not fitted: call fit(summary) or from_dict(d)")
        return PURCHASE_MODELS[self.purchase_model]

    def _purchase_array(self) -> np.ndarray:
        model = self._check_fitted()
        return np.array([self.purchase_params_[n] for n in model.param_names])

    def expected_purchases(self, summary: pd.DataFrame, t: float) -> pd.Series:
        """Expected repeat purchases in the next ``t`` time units (the model's unit).

        Parameters
        ----------
        summary : DataFrame
            RFM summary in the model's time unit.
        t : float
            Length of the window after each customer's tenure, in ``time_unit``.

        Returns
        -------
        Series
            Indexed like ``summary``.
        """
        model = self._check_fitted()
        d = self._rfm(summary)
        collapsed, inverse = collapse_rfm(d.x, d.t_x, d.T)
        with np.errstate(all="ignore"):
            values = model.expected_purchases(self._purchase_array(), float(t), collapsed)
        return pd.Series(values[inverse], index=summary.index, name="expected_purchases")

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """P(alive at the end of the summary's tenure | history) per customer.

        The ``p_alive`` column of :meth:`predict` (lifetimes' ``conditional_probability_alive``).

        Parameters
        ----------
        summary : DataFrame
            RFM summary in the model's time unit.

        Returns
        -------
        Series
            Indexed like ``summary``.
        """
        model = self._check_fitted()
        d = self._rfm(summary)
        collapsed, inverse = collapse_rfm(d.x, d.t_x, d.T)
        with np.errstate(all="ignore"):
            values = model.p_alive(self._purchase_array(), collapsed)
        return pd.Series(values[inverse], index=summary.index, name="p_alive")

    def probability_of_n_purchases(
        self, t: float, n: int, summary: pd.DataFrame | None = None
    ) -> pd.Series | float:
        """P(exactly ``n`` repeat purchases in the next ``t`` time units).

        With a ``summary``, conditional on each customer's history (frequency, recency,
        tenure), in ``(T, T + t]`` (lifetimes' ``conditional_probability_of_n_purchases_up_to_
        time``); without one, for a new customer who has just made a first purchase, in
        ``(0, t]`` (lifetimes' ``probability_of_n_purchases_up_to_time``).

        Parameters
        ----------
        t : float
            Window length in the model's ``time_unit`` (>= 0).
        n : int
            Number of repeat purchases (>= 0).
        summary : DataFrame, optional
            RFM summary in the model's time unit.

        Returns
        -------
        Series or float
            Indexed like ``summary``; a float without one.

        Notes
        -----
        An alive customer's rate and dropout have Gamma/Beta posteriors, so the window count
        mixes "no purchase because dead" with the model's count for an alive customer:
        ``P(n) = (1 - p_alive) [n = 0] + p_alive P(n | alive)``. BG/NBD and MBG/NBD use the
        closed form of Fader, Hardie & Lee (2005, eq. 8) at the posterior parameters;
        Pareto/NBD integrates over the death time by 48-point Gauss-Legendre quadrature.
        """
        model = self._check_fitted()
        t = float(t)
        if not (np.isfinite(t) and t >= 0):
            raise ValueError(f"t must be a finite number >= 0, got {t!r}")
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a whole number >= 0, got {n!r}")
        n = int(n)
        params = self._purchase_array()
        if summary is None:
            zero = np.zeros(1)
            if t == 0:
                return float(n == 0)
            with np.errstate(all="ignore"):
                value = model.probability_of_n_purchases(params, t, n, RfmArrays(zero, zero, zero))
            return float(value[0])
        d = self._rfm(summary)
        collapsed, inverse = collapse_rfm(d.x, d.t_x, d.T)
        if t == 0:
            values = np.full(len(collapsed), float(n == 0))
        else:
            with np.errstate(all="ignore"):
                values = model.probability_of_n_purchases(params, t, n, collapsed)
        return pd.Series(values[inverse], index=summary.index, name=f"p_{n}_purchases")

    def probability_no_purchase(
        self, t: float, summary: pd.DataFrame | None = None
    ) -> pd.Series | float:
        """P(no repeat purchase in the next ``t`` time units), given the history if any.

        ``probability_of_n_purchases(t, 0, summary)``: the customer is dead, or alive and does
        not buy. For BG/NBD and MBG/NBD this is
        ``1 - p_alive + p_alive ((alpha + T) / (alpha + T + t)) ** (r + x)``.

        Parameters
        ----------
        t : float
            Window length in the model's ``time_unit``.
        summary : DataFrame, optional
            RFM summary in the model's time unit; None = a new customer.

        Returns
        -------
        Series or float
            Indexed like ``summary`` (named ``p_no_purchase``); a float without one.
        """
        value = self.probability_of_n_purchases(t, 0, summary)
        if isinstance(value, pd.Series):
            return value.rename("p_no_purchase")
        return value

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a customer whose first purchase is at 0.

        lifetimes' ``expected_number_of_purchases_up_to_time``: the conditional expectation at
        the history ``x = t_x = T = 0``.

        Parameters
        ----------
        t : float or array_like
            Time(s) since the first purchase, in the model's ``time_unit``.

        Returns
        -------
        float or ndarray
            Same shape as ``t``.
        """
        model = self._check_fitted()
        times = np.asarray(t, dtype=float)
        if not np.all(np.isfinite(times)):
            raise ValueError("t must be finite")
        params = self._purchase_array()
        zero = np.zeros(1)
        new = RfmArrays(zero, zero, zero)
        uniq, inverse = np.unique(times.ravel(), return_inverse=True)
        with np.errstate(all="ignore"):
            values = np.array(
                [model.expected_purchases(params, u, new)[0] if u > 0 else 0.0 for u in uniq]
            )
        out = values[inverse.ravel()].reshape(times.shape)
        return float(out) if out.ndim == 0 else out

    def predict(self, summary: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """Per-customer predictions over a horizon of whole months.

        Parameters
        ----------
        summary : DataFrame
            RFM summary (as for :meth:`fit`), as of the scoring cutoff.
        horizon : int, optional
            Months; default ``self.horizon``.

        Returns
        -------
        DataFrame
            Indexed like ``summary`` (``customer_id``), columns:

            - ``p_alive``: probability the customer is still active at the cutoff;
            - ``expected_purchases``: expected repeat purchases within the horizon;
            - ``expected_avg_value``: Gamma-Gamma expected spend per purchase (the population
              mean for customers without repeat purchases; NaN when a repeat customer's
              ``monetary_value`` is missing);
            - ``clv``: discounted expected spend within the horizon (module docstring);
            - ``expected_next_purchase_days``: ``(alpha + T) / (r + x)`` converted to days,
              the mean gap between purchases at the posterior mean purchase rate of an *alive*
              customer (combine with ``p_alive``).
        """
        model = self._check_fitted()
        months = self.horizon if horizon is None else horizon
        if int(months) != months or months < 1:
            raise ValueError(f"horizon is a whole number of months >= 1, got {months!r}")
        months = int(months)
        d = self._rfm(summary)
        collapsed, inverse = collapse_rfm(d.x, d.t_x, d.T)
        params = self._purchase_array()
        month = month_length(self.time_unit)
        with np.errstate(all="ignore"):
            p_alive = model.p_alive(params, collapsed)
            cumulative = np.stack(
                [model.expected_purchases(params, k * month, collapsed) for k in range(months + 1)]
            )
        per_month = np.diff(cumulative, axis=0)
        discount = (1.0 + self.discount_rate) ** -np.arange(1, months + 1)
        # an elementwise sum over the months, not a BLAS product: each customer's value must
        # not depend on how many others are predicted with them (customer partitions)
        discounted_purchases = np.sum(discount[:, None] * per_month, axis=0)[inverse]
        r, alpha = params[0], params[1]
        next_days = ((alpha + d.T) / (r + d.x)) * UNIT_DAYS[self.time_unit]
        if self.spend_params_ is not None:
            x, m = self._spend_rows(summary)
            spend_params = np.array([self.spend_params_[n] for n in GAMMA_GAMMA.param_names])
            avg_value = GAMMA_GAMMA.expected_avg_value(spend_params, x, m)
        else:
            avg_value = np.full(len(d), np.nan)
        out = pd.DataFrame(
            {
                "p_alive": p_alive[inverse],
                "expected_purchases": cumulative[-1][inverse],
                "expected_avg_value": avg_value,
                "clv": discounted_purchases * avg_value,
                "expected_next_purchase_days": next_days,
            },
            index=summary.index.copy(),
        )
        if out.index.name is None:
            out.index.name = CUSTOMER_ID
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The fitted model as plain JSON-serialisable data (no pickle).

        Returns
        -------
        dict
            ``format``, constructor parameters, estimates, standard errors, fit statistics and
            package ``versions``. Floats round-trip exactly through :mod:`json`.
        """
        self._check_fitted()
        spend_se = self.spend_standard_errors_
        return {
            "format": FORMAT,
            "params": self.get_params(),
            "month_days": DAYS_PER_MONTH,
            "purchase_params": dict(self.purchase_params_),
            "purchase_standard_errors": {
                k: _json_float(v) for k, v in self.purchase_standard_errors_.items()
            },
            "spend_params": None if self.spend_params_ is None else dict(self.spend_params_),
            "spend_standard_errors": (
                None if spend_se is None else {k: _json_float(v) for k, v in spend_se.items()}
            ),
            "log_likelihood": _json_float(self.log_likelihood_),
            "spend_log_likelihood": (
                None
                if self.spend_log_likelihood_ is None
                else _json_float(self.spend_log_likelihood_)
            ),
            "spend_frequency_corr": (
                None
                if self.spend_frequency_corr_ is None
                else _json_float(self.spend_frequency_corr_)
            ),
            "n_customers": int(self.n_customers_),
            "n_rows": int(self.n_rows_),
            "n_spend_customers": int(self.n_spend_customers_),
            "n_spend_excluded": int(getattr(self, "n_spend_excluded_", 0)),
            "versions": _versions(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClvModel:
        """Rebuild a fitted model from :meth:`to_dict` output (predictions are identical).

        Raises
        ------
        ValueError
            Unknown format or parameters that do not match the model type.
        """
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} model dictionary (format={data.get('format')!r})")
        model = cls(**data["params"])
        purchase = model._validate_params()
        if set(data["purchase_params"]) != set(purchase.param_names):
            raise ValueError(
                f"{purchase.label} needs parameters {purchase.param_names}, "
                f"got {sorted(data['purchase_params'])}"
            )
        if (data["spend_params"] is None) != (model.spend_model is None):
            raise ValueError("spend_params do not match spend_model")

        def floats(d: dict[str, Any] | None) -> dict[str, float] | None:
            if d is None:
                return None
            return {k: (np.nan if v is None else float(v)) for k, v in d.items()}

        model.purchase_params_ = floats(data["purchase_params"])
        model.purchase_standard_errors_ = floats(data["purchase_standard_errors"])
        model.spend_params_ = floats(data["spend_params"])
        model.spend_standard_errors_ = floats(data["spend_standard_errors"])
        ll = data.get("log_likelihood")
        model.log_likelihood_ = np.nan if ll is None else float(ll)
        model.spend_log_likelihood_ = data.get("spend_log_likelihood")
        model.spend_frequency_corr_ = data.get("spend_frequency_corr")
        model.n_customers_ = int(data.get("n_customers", 0))
        model.n_rows_ = int(data.get("n_rows", 0))
        model.n_spend_customers_ = int(data.get("n_spend_customers", 0))
        model.n_spend_excluded_ = int(data.get("n_spend_excluded", 0))
        return model
