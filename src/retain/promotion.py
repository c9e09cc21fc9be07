"""The champion/challenger promotion gate: a pure decision on two sets of metrics.

No MLflow here: :func:`retain.tracking.promote` reads the metrics of the ``challenger`` and
``champion`` versions, asks :func:`decide` and moves the aliases. The rules:

- ``churn``: accept when the challenger's ``test_roc_auc`` is at least the champion's minus
  ``auc_tolerance`` and not below the best ``baseline_<name>_roc_auc`` logged beside it.
- ``clv``: accept when ``holdout_<clv_metric>`` (an error: lower is better) is at most the
  champion's times ``1 + clv_tolerance`` and not above the best
  ``baseline_<name>_holdout_<clv_metric>`` logged beside it.
- Without a champion, a challenger that passes the baseline check is accepted.
- A challenger (or champion) without the compared metric is refused, never waved through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from retain.config import PromotionConfig
from retain.names import ROC_AUC, TEST_ROC_AUC, holdout_metric, is_baseline

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class GateResult:
    """What the gate decided on two sets of metrics.

    Attributes
    ----------
    accepted : bool
        True when the challenger should become champion.
    reason : str
        Plain-language explanation (always set, also on refusal).
    metrics : dict
        The numbers the decision used (``challenger_*``, ``champion_*``, ``best_baseline_*``).
    """

    accepted: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of the promotion gate.

    Attributes
    ----------
    accepted : bool
        True when ``champion`` now points at the challenger.
    reason : str
        Plain-language explanation (always set, also on refusal).
    challenger_version, champion_version : str or None
        The versions compared (``champion_version`` is the champion before the decision).
    model_name : str
        Registered model name.
    metrics : dict
        The numbers the decision used.
    """

    accepted: bool
    reason: str
    challenger_version: str | None
    champion_version: str | None
    model_name: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def gate_churn(chal: Metrics, champ: Metrics | None, cfg: PromotionConfig) -> GateResult:
    """The churn rule: test AUC against the champion (with tolerance) and the best baseline.

    Parameters
    ----------
    chal, champ : mapping
        Metrics of the challenger and of the champion (None: no champion yet).
    cfg : PromotionConfig
        ``auc_tolerance``: how far below the champion's AUC the challenger may be.

    Returns
    -------
    GateResult
    """
    key = TEST_ROC_AUC
    used: dict[str, float] = {}
    if key not in chal:
        return GateResult(False, f"challenger has no {key} metric", used)
    auc = chal[key]
    used[f"challenger_{key}"] = auc
    baselines = {k: v for k, v in chal.items() if is_baseline(k, ROC_AUC)}
    if baselines:
        best_name, best = max(baselines.items(), key=lambda kv: kv[1])
        used[f"best_baseline_{ROC_AUC}"] = best
        if auc < best:
            return GateResult(
                False,
                f"challenger test AUC {auc:.4f} is below the best baseline "
                f"{best_name} = {best:.4f}",
                used,
            )
        baseline_text = f"not below the best baseline {best_name} = {best:.4f}"
    else:
        baseline_text = "no baseline AUC logged"
    if champ is None:
        return GateResult(
            True, f"no champion yet; challenger test AUC {auc:.4f}, {baseline_text}", used
        )
    if key not in champ:
        return GateResult(False, f"champion has no {key} metric to compare with", used)
    ref = champ[key]
    used[f"champion_{key}"] = ref
    floor = ref - cfg.auc_tolerance
    if auc < floor:
        return GateResult(
            False,
            f"challenger test AUC {auc:.4f} is below champion {ref:.4f} minus tolerance "
            f"{cfg.auc_tolerance:g} (= {floor:.4f})",
            used,
        )
    return GateResult(
        True,
        f"challenger test AUC {auc:.4f} >= champion {ref:.4f} - {cfg.auc_tolerance:g}, "
        f"{baseline_text}",
        used,
    )


def gate_clv(chal: Metrics, champ: Metrics | None, cfg: PromotionConfig) -> GateResult:
    """The CLV rule: holdout error against the champion (relative tolerance) and the baselines.

    Parameters
    ----------
    chal, champ : mapping
        Metrics of the challenger and of the champion (None: no champion yet).
    cfg : PromotionConfig
        ``clv_metric`` (the error compared) and ``clv_tolerance`` (relative worsening allowed).

    Returns
    -------
    GateResult
    """
    key = holdout_metric(cfg.clv_metric)
    used: dict[str, float] = {}
    if key not in chal:
        return GateResult(False, f"challenger has no {key} metric", used)
    err = chal[key]
    used[f"challenger_{key}"] = err
    baselines = {k: v for k, v in chal.items() if is_baseline(k, key)}
    if baselines:
        best_name, best = min(baselines.items(), key=lambda kv: kv[1])
        used[f"best_baseline_{key}"] = best
        if err > best:
            return GateResult(
                False,
                f"challenger {key} {err:.4f} is worse (higher) than the best baseline "
                f"{best_name} = {best:.4f}",
                used,
            )
        baseline_text = f"not worse than the best baseline {best_name} = {best:.4f}"
    else:
        baseline_text = "no baseline logged"
    if champ is None:
        return GateResult(
            True, f"no champion yet; challenger {key} {err:.4f}, {baseline_text}", used
        )
    if key not in champ:
        return GateResult(False, f"champion has no {key} metric to compare with", used)
    ref = champ[key]
    used[f"champion_{key}"] = ref
    ceiling = ref * (1.0 + cfg.clv_tolerance)
    if err > ceiling:
        return GateResult(
            False,
            f"challenger {key} {err:.4f} is worse than champion {ref:.4f} "
            f"(allowed up to {ceiling:.4f} with relative tolerance {cfg.clv_tolerance:g})",
            used,
        )
    return GateResult(
        True,
        f"challenger {key} {err:.4f} <= champion {ref:.4f} x (1 + {cfg.clv_tolerance:g}), "
        f"{baseline_text}",
        used,
    )


_GATES: dict[str, Callable[[Metrics, Metrics | None, PromotionConfig], GateResult]] = {
    "churn": gate_churn,
    "clv": gate_clv,
}
GATE_KINDS = tuple(_GATES)
"""The kinds of model the gate has a rule for."""


def decide(
    kind: str, challenger: Metrics, champion: Metrics | None, cfg: PromotionConfig
) -> GateResult:
    """Apply the promotion rule of one kind of model (see the module docstring).

    Parameters
    ----------
    kind : {"churn", "clv"}
        The kind of model.
    challenger : mapping
        The challenger's metrics (test metrics and ``baseline_*`` entries of its run).
    champion : mapping or None
        The current champion's metrics; None when there is no champion yet.
    cfg : PromotionConfig
        Tolerances and the CLV metric.

    Returns
    -------
    GateResult
        Accepted or refused, the reason and the numbers used.

    Raises
    ------
    ValueError
        When ``kind`` has no rule.
    """
    if kind not in _GATES:
        raise ValueError(f"no promotion rule for model kind {kind!r} (one of {GATE_KINDS})")
    return _GATES[kind](challenger, champion, cfg)
