"""The champion/challenger promotion gate: a pure decision on two sets of metrics.

No MLflow here: :func:`retain.tracking.promote` reads the metrics of the ``challenger`` and
``champion`` versions, asks :func:`decide` and moves the aliases. The rules:

- ``churn``: accept when the challenger's ``test_roc_auc`` is at least the champion's minus
  ``auc_tolerance`` and not worse than the best ``baseline_<name>_roc_auc`` logged beside it
  beyond the uncertainty: the baseline refuses the challenger only when the upper bound of the
  paired 95% DeLong interval of the difference (``auc_diff_vs_<name>_ci_high``, logged by
  ``train_churn``) is below 0. Versions logged without that interval (older runs) fall back
  to the plain comparison: not below the best baseline's AUC.
- ``clv``: accept when ``holdout_<clv_metric>`` (an error: lower is better) is at most the
  champion's times ``1 + clv_tolerance`` and not above the best
  ``baseline_<name>_holdout_<clv_metric>`` logged beside it.
- ``value``: accept when ``test_ml_top20_capture`` (the share of the test cutoff's actual
  value held by the model's top 20%: higher is better) is at least the champion's minus
  ``value_tolerance``. The BTYD CLV is no gate: ``clv.method: auto`` falls back to it when it
  captured more (both figures travel with the version).
- Without a champion, a challenger that passes the baseline check is accepted.
- A challenger (or champion) without the compared metric is refused, never waved through.
- A forced promotion (``retain promote --force --reason ...``) skips the verdict, not the
  record: :func:`retain.tracking.promote` still asks the gate and logs both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from retain.config import PromotionConfig
from retain.names import (
    ROC_AUC,
    TEST_ROC_AUC,
    VALUE_GATE_METRIC,
    auc_difference_metric,
    baseline_name,
    holdout_metric,
    is_baseline,
)

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
    forced : bool
        True when ``champion`` was moved by ``--force`` whatever the gate said (``reason`` then
        holds the given reason and the gate's own verdict).
    """

    accepted: bool
    reason: str
    challenger_version: str | None
    champion_version: str | None
    model_name: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    forced: bool = False


def gate_churn(chal: Metrics, champ: Metrics | None, cfg: PromotionConfig) -> GateResult:
    """The churn rule: test AUC against the best baseline (paired) and the champion (tolerance).

    Against the best baseline the comparison is paired: both scored the same test rows, so
    the DeLong interval of the difference (``auc_diff_vs_<name>_ci_low``/``_ci_high``) says
    how much of a gap is noise; the challenger is refused only when even the interval's upper
    bound is below 0. Without those keys (versions logged before they existed) it must simply
    not be below the baseline's AUC. Against the champion no paired test is possible (the
    champion was evaluated on an earlier test cutoff, other rows), so the fixed
    ``auc_tolerance`` stays.

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
        best_key, best = max(baselines.items(), key=lambda kv: (kv[1], kv[0]))
        used[f"best_baseline_{ROC_AUC}"] = best
        refusal, baseline_text = _against_baseline(chal, auc, best_key, best, used)
        if refusal:
            return GateResult(False, refusal, used)
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


def _against_baseline(
    chal: Metrics, auc: float, best_key: str, best: float, used: dict[str, float]
) -> tuple[str, str]:
    """The refusal (empty when none) and the sentence on the best baseline; fills ``used``."""
    name = baseline_name(best_key, ROC_AUC)
    keys = {part: auc_difference_metric(name, part) for part in ("", "ci_low", "ci_high")}
    if not all(k in chal for k in keys.values()):  # an older version: the plain comparison
        if auc < best:
            return (
                f"challenger test AUC {auc:.4f} is below the best baseline {best_key} = {best:.4f}",
                "",
            )
        return "", f"not below the best baseline {best_key} = {best:.4f}"
    diff, low, high = (chal[keys[p]] for p in ("", "ci_low", "ci_high"))
    used.update(
        {
            "best_baseline_auc_diff": diff,
            "best_baseline_auc_diff_ci_low": low,
            "best_baseline_auc_diff_ci_high": high,
        }
    )
    interval = f"difference {diff:+.4f}, 95% DeLong interval [{low:+.4f}, {high:+.4f}]"
    if high < 0:
        return (
            f"challenger test AUC {auc:.4f} is worse than the best baseline {best_key} = "
            f"{best:.4f} beyond the uncertainty ({interval}, entirely below 0)",
            "",
        )
    return "", (
        f"not worse than the best baseline {best_key} = {best:.4f} beyond the uncertainty "
        f"({interval})"
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


def gate_value(chal: Metrics, champ: Metrics | None, cfg: PromotionConfig) -> GateResult:
    """The value rule: test top-20% capture not below the champion's minus a tolerance.

    Parameters
    ----------
    chal, champ : mapping
        Metrics of the challenger and of the champion (None: no champion yet).
    cfg : PromotionConfig
        ``value_tolerance``.

    Returns
    -------
    GateResult
    """
    key = VALUE_GATE_METRIC
    used: dict[str, float] = {}
    if key not in chal:
        return GateResult(False, f"challenger has no {key} metric", used)
    got = chal[key]
    used[f"challenger_{key}"] = got
    btyd = chal.get("test_btyd_top20_capture")
    versus = "" if btyd is None else f" (BTYD CLV on the same rows: {btyd:.4f})"
    if champ is None:
        return GateResult(True, f"no champion yet; challenger {key} {got:.4f}{versus}", used)
    if key not in champ:
        return GateResult(False, f"champion has no {key} metric to compare with", used)
    ref = champ[key]
    used[f"champion_{key}"] = ref
    floor = ref - cfg.value_tolerance
    if got < floor:
        return GateResult(
            False,
            f"challenger {key} {got:.4f} is below champion {ref:.4f} minus the tolerance "
            f"{cfg.value_tolerance:g} ({floor:.4f}){versus}",
            used,
        )
    return GateResult(
        True,
        f"challenger {key} {got:.4f} >= champion {ref:.4f} - {cfg.value_tolerance:g}{versus}",
        used,
    )


_GATES: dict[str, Callable[[Metrics, Metrics | None, PromotionConfig], GateResult]] = {
    "churn": gate_churn,
    "clv": gate_clv,
    "value": gate_value,
}
GATE_KINDS = tuple(_GATES)
"""The kinds of model the gate has a rule for."""


def decide(
    kind: str, challenger: Metrics, champion: Metrics | None, cfg: PromotionConfig
) -> GateResult:
    """Apply the promotion rule of one kind of model (see the module docstring).

    Parameters
    ----------
    kind : {"churn", "clv", "value"}
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

    Notes
    -----
    A metric that is NaN or infinite counts as missing: a challenger without a finite value
    of the deciding metric is refused, and so is a comparison with such a champion.

    Raises
    ------
    ValueError
        When ``kind`` has no rule.
    """
    if kind not in _GATES:
        raise ValueError(f"no promotion rule for model kind {kind!r} (one of {GATE_KINDS})")
    # a NaN or infinite number counts as missing: every comparison with NaN is False, which
    # would otherwise wave a challenger through
    finite_champion = None if champion is None else _finite(champion)
    return _GATES[kind](_finite(challenger), finite_champion, cfg)


def _finite(metrics: Metrics) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}


def next_steps(config: str, kind: str) -> str:
    """What to run after a refusal that leaves no champion (so ``retain score`` has none).

    Parameters
    ----------
    config : str
        The config path as the user gave it.
    kind : {"churn", "clv", "value"}
        The kind of model refused.

    Returns
    -------
    str
        The two commands that go on: a forced promotion (logged as forced) or scoring with
        the challenger.
    """
    option = {"churn": "--model-version", "value": "--value-version"}.get(kind, "--clv-version")
    return (
        f"no champion exists yet, so `retain score` has no {kind} model to use. To go on, "
        f"either promote it anyway (logged as forced): retain promote --config {config} "
        f'--model {kind} --force --reason "..." ; or score with the challenger: '
        f"retain score --config {config} {option} challenger"
    )
