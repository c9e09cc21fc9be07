"""Maximum-likelihood fitting shared by the purchase and spend models.

The optimiser works on log-parameters (all parameters are positive) with L-BFGS-B, box bounds
and an analytic gradient when the model has one (central differences otherwise). A fit that does
not converge, has a non-finite likelihood or ends on a bound raises :class:`ClvFitError`: such
estimates are never returned silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

LogLik = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]
"""Per-row log-likelihood (and optionally gradient rows x params) at natural parameters."""

PARAM_BOUNDS = (1e-6, 1e8)
"""Box for every parameter in natural units. An estimate on it means the MLE is degenerate."""

GRADIENT_TOLERANCE = 1e-5
"""Largest accepted |gradient| of the mean negative log-likelihood in log-parameters."""


class ClvFitError(RuntimeError):
    """A CLV model could not be fitted reliably (non-convergence, NaN/inf, bound hit)."""


def penalizer_advice(
    label: str, key: str, penalizer: float, *, shrunk: bool, inherited_from: str | None = None
) -> str:
    """What to do about the penalizer when a fit is refused.

    Parameters
    ----------
    label : str
        The sub-model (e.g. ``"Gamma-Gamma"``), only used to suggest another model.
    key : str
        The setting that applies to this sub-model, e.g. ``"clv.spend_penalizer"``.
    penalizer : float
        Its value.
    shrunk : bool
        A parameter ended at its lower limit (the penalty pulls every parameter towards 0, so
        a positive penalizer is then the likely cause) rather than at its upper limit or in a
        non-converged or non-finite state.
    inherited_from : str, optional
        The setting ``penalizer`` came from when ``key`` itself is not set (e.g.
        ``"clv.penalizer"``).

    Returns
    -------
    str
    """
    source = f" (from {inherited_from})" if inherited_from else ""
    if penalizer > 0 and shrunk:
        return (
            f"{key} is {penalizer:g}{source} and pulls the parameters towards 0: lower it "
            "(e.g. to 0), or check the data."
        )
    if penalizer > 0:
        return (
            f"{key} is {penalizer:g}{source}: try a larger value, check the data, or choose "
            f"another model than {label}."
        )
    return (
        f"Try a positive {key} (e.g. 0.001), check the data, or choose another model than {label}."
    )


@dataclass(frozen=True)
class MleResult:
    """Outcome of :func:`fit_mle` (natural parameters)."""

    params: np.ndarray
    log_likelihood: float
    """Total weighted log-likelihood at the estimate, without the penalty."""
    standard_errors: np.ndarray
    """Asymptotic standard errors (delta method from the observed information; NaN if singular)."""
    n_iterations: int
    n_evaluations: int


def _penalised_objective(
    loglik: LogLik, weights: np.ndarray, penalizer: float, analytic: bool
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Mean negative log-likelihood plus ``penalizer * sum(params**2)`` and its gradient."""
    total = float(weights.sum())

    def value(theta: np.ndarray) -> float:
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            ll, _ = loglik(params, False)
            f = -float(weights @ ll) / total + penalizer * float(params @ params)
        return f if np.isfinite(f) else np.inf

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(theta)
        if not analytic:
            f = value(theta)
            h = 1e-5
            g = np.empty_like(theta)
            for i in range(theta.size):
                step = np.zeros_like(theta)
                step[i] = h
                g[i] = (value(theta + step) - value(theta - step)) / (2 * h)
            return f, g
        with np.errstate(all="ignore"):
            ll, grad_rows = loglik(params, True)
            f = -float(weights @ ll) / total + penalizer * float(params @ params)
            g_nat = -(weights @ grad_rows) / total + 2 * penalizer * params
        g = g_nat * params
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return np.inf, np.zeros_like(theta)
        return f, g

    value_and_grad.value = value  # type: ignore[attr-defined]
    return value_and_grad


def _hessian(
    func: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta: np.ndarray,
    g0: np.ndarray | None = None,
) -> np.ndarray:
    """Symmetrised forward-difference Hessian of ``func`` from its (analytic) gradient.

    ``k`` gradient evaluations (plus one when ``g0`` is not given); the O(h) = 1e-6 relative
    error is immaterial for standard errors and Newton steps.
    """
    k = theta.size
    h = 1e-6
    if g0 is None:
        g0 = func(theta)[1]
    hess = np.empty((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = h
        hess[i] = (func(theta + step)[1] - g0) / h
    return (hess + hess.T) / 2


def _hessian_from_values(func: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray:
    """Central-difference Hessian from function values only (1 + 2k^2 evaluations)."""
    k = theta.size
    h = 1e-4
    f0 = func(theta)
    hess = np.empty((k, k))
    e = np.eye(k) * h
    for i in range(k):
        hess[i, i] = (func(theta + e[i]) - 2 * f0 + func(theta - e[i])) / h**2
        for j in range(i):
            hess[i, j] = hess[j, i] = (
                func(theta + e[i] + e[j])
                - func(theta + e[i] - e[j])
                - func(theta - e[i] + e[j])
                + func(theta - e[i] - e[j])
            ) / (4 * h**2)
    return hess


def _newton_polish(
    func: Callable[[np.ndarray], tuple[float, np.ndarray]],
    hessian: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    f: float,
    g: np.ndarray,
    lo: float,
    hi: float,
    max_steps: int = 20,
) -> tuple[np.ndarray, float, np.ndarray, int, np.ndarray | None]:
    """Damped Newton iterations (step halving, inside the box) from a near-optimal point.

    Returns the point, its value and gradient, the number of Newton steps taken, and the
    Hessian of the last step when that step moved less than 1e-3 in every log-parameter
    (close enough to the final point to serve for standard errors), else None.
    """
    steps = 0
    last_hess = None
    for _ in range(max_steps):
        if float(np.max(np.abs(g))) <= GRADIENT_TOLERANCE * 1e-3:
            break
        try:
            hess = hessian(theta)
            step = np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or float(step @ g) <= 0:
            break  # not a descent direction: the Hessian is not positive definite here
        scale = 1.0
        while scale > 1e-6:
            cand = np.clip(theta - scale * step, lo, hi)
            fc, gc = func(cand)
            if np.isfinite(fc) and fc <= f:
                break
            scale /= 2
        else:
            break
        if float(np.max(np.abs(gc))) >= float(np.max(np.abs(g))) and fc >= f:
            break
        last_hess = hess if float(np.max(np.abs(cand - theta))) < 1e-3 else None
        theta, f, g = cand, fc, gc
        steps += 1
    return theta, f, g, steps, last_hess


def fit_mle(
    label: str,
    loglik: LogLik,
    weights: np.ndarray,
    x0: np.ndarray,
    *,
    penalizer: float = 0.0,
    analytic: bool = True,
    bounds: tuple[float, float] = PARAM_BOUNDS,
    param_names: tuple[str, ...] = (),
    standard_errors: bool = True,
    newton_start: bool = False,
    penalizer_key: str = "penalizer",
    penalizer_from: str | None = None,
) -> MleResult:
    """Maximise a weighted likelihood over positive parameters.

    The likelihood sums are BLAS dot products of one long vector, where multi-threaded BLAS
    only loses time to thread start-up (tens of ms per call on a busy machine): the fit runs
    with one BLAS thread.

    Parameters
    ----------
    label : str
        Model name used in error messages (e.g. ``"Pareto/NBD"``).
    loglik : callable
        ``loglik(params, grad) -> (per_row_ll, per_row_grad or None)``.
    weights : ndarray
        Customers per row.
    x0 : ndarray
        Starting parameters (natural units, positive).
    penalizer : float
        Coefficient of the L2 penalty ``penalizer * sum(params**2)`` added to the *mean*
        negative log-likelihood per customer.
    analytic : bool
        Whether ``loglik`` returns gradients; otherwise central differences are used.
    bounds : (float, float)
        Box for every parameter.
    param_names : tuple of str
        Names used in error messages.
    standard_errors : bool
        Compute standard errors from a numerical Hessian (skipped for warm-start fits).
    newton_start : bool
        ``x0`` is already close to the optimum (e.g. a fit on a subsample): try damped Newton
        steps first, which need far fewer likelihood evaluations than L-BFGS when the gradient
        is numerical. L-BFGS-B runs only if Newton does not converge.
    penalizer_key : str
        Name of the setting that holds ``penalizer`` (e.g. ``"clv.purchase_penalizer"``), used
        in the advice of a :class:`ClvFitError` (see :func:`penalizer_advice`).
    penalizer_from : str, optional
        The setting the value came from when ``penalizer_key`` is not set.

    Returns
    -------
    MleResult

    Raises
    ------
    ClvFitError
        Non-finite likelihood at the start or the end, no convergence, or an estimate on a bound.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_mle(
            label,
            loglik,
            weights,
            x0,
            penalizer=penalizer,
            analytic=analytic,
            bounds=bounds,
            param_names=param_names,
            standard_errors=standard_errors,
            newton_start=newton_start,
            penalizer_key=penalizer_key,
            penalizer_from=penalizer_from,
        )


def _hessian_of(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]], analytic: bool
) -> Callable[[np.ndarray], np.ndarray]:
    """Hessian of the objective in log-parameters: from its gradient, or from its values."""
    if analytic:

        def hessian(theta: np.ndarray) -> np.ndarray:
            return _hessian(objective, theta)
    else:

        def hessian(theta: np.ndarray) -> np.ndarray:
            return _hessian_from_values(objective.value, theta)  # type: ignore[attr-defined]

    return hessian


@dataclass
class _Optimum:
    """Where the optimiser stopped (log-parameters), and how it got there."""

    theta: np.ndarray
    f: float
    g: np.ndarray
    success: bool
    message: str
    n_iter: int
    n_eval: int
    hess: np.ndarray | None
    """The Hessian at ``theta`` when the last Newton step computed it, else None."""


def _minimise(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    hessian: Callable[[np.ndarray], np.ndarray],
    theta0: np.ndarray,
    f0: float,
    lo: float,
    hi: float,
    newton_start: bool,
) -> _Optimum:
    """Newton steps from a warm start (optional), else L-BFGS-B polished by Newton steps."""
    theta, f, g = theta0, f0, None
    success, message, n_iter, n_eval = False, "", 0, 0
    final_hess = None
    if newton_start:
        f, g = objective(theta0)
        theta, f, g, n_iter, final_hess = _newton_polish(objective, hessian, theta0, f, g, lo, hi)
        success = bool(np.isfinite(f) and np.max(np.abs(g)) <= GRADIENT_TOLERANCE * 1e-2)
        message = "Newton steps from the warm start"
    if not success:
        res = minimize(
            objective,
            theta,
            jac=True,
            method="L-BFGS-B",
            bounds=[(lo, hi)] * theta0.size,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
        )
        theta, success, message = res.x, bool(res.success), str(res.message)
        final_hess = None
        n_iter, n_eval = n_iter + int(res.nit), int(res.nfev)
        f, g = objective(theta)
        if np.isfinite(f) and float(np.max(np.abs(g))) > GRADIENT_TOLERANCE:
            # L-BFGS can stall on ill-conditioned surfaces; polish with damped Newton steps
            theta, f, g, steps, final_hess = _newton_polish(objective, hessian, theta, f, g, lo, hi)
            n_iter += steps
    assert g is not None  # set by the Newton start or by L-BFGS-B
    return _Optimum(theta, f, g, success, message, n_iter, n_eval, final_hess)


def _check_optimum(
    label: str,
    opt: _Optimum,
    names: tuple[str, ...],
    bounds: tuple[float, float],
    hint: Callable[[bool], str],
) -> None:
    """Refuse a non-finite likelihood, an estimate on a bound, or a fit that did not converge.

    ``hint(shrunk)`` gives the advice; ``shrunk`` is True when a parameter is at its lower bound.
    """
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    theta = opt.theta
    if not np.isfinite(opt.f):
        raise ClvFitError(
            f"{label}: the log-likelihood is NaN or infinite at the estimate. {hint(False)}"
        )
    low = [n for n, t in zip(names, theta, strict=True) if t <= lo + 1e-6]
    high = [n for n, t in zip(names, theta, strict=True) if t >= hi - 1e-6]
    if low or high:
        values = ", ".join(f"{n}={np.exp(t):.3g}" for n, t in zip(names, theta, strict=True))
        where = []
        if low:
            where.append(f"{', '.join(low)} reached the lower bound {bounds[0]:g}")
        if high:
            where.append(f"{', '.join(high)} reached the upper bound {bounds[1]:g}")
        raise ClvFitError(
            f"{label}: parameter(s) {'; '.join(where)} ({values}); the maximum-likelihood "
            f"estimate is degenerate. {hint(bool(low))}"
        )
    gnorm = float(np.max(np.abs(opt.g)))
    if (not opt.success and gnorm > GRADIENT_TOLERANCE) or gnorm > 100 * GRADIENT_TOLERANCE:
        raise ClvFitError(
            f"{label}: the optimiser did not converge ({opt.message}; max |gradient| "
            f"{gnorm:.2e} after {opt.n_iter} iterations). {hint(False)}"
        )


def _standard_errors(params: np.ndarray, information: np.ndarray) -> np.ndarray:
    """Delta-method standard errors from the observed information in log-parameters."""
    try:
        var_log = np.diag(np.linalg.inv(information))
    except np.linalg.LinAlgError:
        return np.full_like(params, np.nan)
    return params * np.sqrt(np.where(var_log > 0, var_log, np.nan))


def _fit_mle(
    label: str,
    loglik: LogLik,
    weights: np.ndarray,
    x0: np.ndarray,
    *,
    penalizer: float = 0.0,
    analytic: bool = True,
    bounds: tuple[float, float] = PARAM_BOUNDS,
    param_names: tuple[str, ...] = (),
    standard_errors: bool = True,
    newton_start: bool = False,
    penalizer_key: str = "penalizer",
    penalizer_from: str | None = None,
) -> MleResult:
    """Body of :func:`fit_mle` (run with one BLAS thread)."""
    objective = _penalised_objective(loglik, weights, penalizer, analytic)

    def hint(shrunk: bool) -> str:
        return penalizer_advice(
            label, penalizer_key, penalizer, shrunk=shrunk, inherited_from=penalizer_from
        )

    theta0 = np.log(np.asarray(x0, dtype=float))
    f0, _ = objective(theta0)
    if not np.isfinite(f0):
        raise ClvFitError(
            f"{label}: the log-likelihood is NaN or infinite at the start. {hint(False)}"
        )
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    hessian = _hessian_of(objective, analytic)
    opt = _minimise(objective, hessian, theta0, f0, lo, hi, newton_start)
    names = param_names or tuple(f"p{i}" for i in range(opt.theta.size))
    _check_optimum(label, opt, names, bounds, hint)
    params = np.exp(opt.theta)
    total = float(weights.sum())
    with np.errstate(all="ignore"):
        ll, _ = loglik(params, False)
    se = np.full_like(params, np.nan)
    if standard_errors:
        # observed information of the total log-likelihood in log-parameters, delta method back
        info = (hessian(opt.theta) if opt.hess is None else opt.hess) * total
        se = _standard_errors(params, info)
    return MleResult(
        params=params,
        log_likelihood=float(weights @ ll),
        standard_errors=se,
        n_iterations=opt.n_iter,
        n_evaluations=opt.n_eval,
    )
