"""Promotion step: move the ``champion`` alias of ``churn`` or ``clv`` to its challenger.

The gate itself is :func:`retain.tracking.promote`; this job runs it inside an MLflow run of the
configured experiment (tags ``step=promote``, ``model_name``, ``promotion.accepted``,
``promotion.reason``, ``promotion.forced``; the decision as ``promotion/decision.json``; a
one-sentence description) so that every decision, accepted, refused or forced
(``retain promote --force --reason ...``), is recorded beside the training runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from retain.config import RunConfig
from retain.names import PROMOTION_ACCEPTED, PROMOTION_DECISION
from retain.tracking import (
    CHALLENGER,
    CHAMPION,
    PromotionDecision,
    alias_version,
    check_dataset,
    describe_run,
    log_dict,
    log_metrics,
    promote,
    registered_name,
    set_tags,
    tracked_run,
)


@dataclass(frozen=True)
class PromoteResult:
    """The decision and the MLflow run that recorded it."""

    decision: PromotionDecision
    run_id: str


def run_promotion(cfg: RunConfig, kind: str, force_reason: str | None = None) -> PromoteResult:
    """Apply the promotion gate to the config's model of one kind and log the decision.

    Parameters
    ----------
    cfg : RunConfig
        Run config; ``tracking`` selects the store, ``promotion`` holds the tolerances.
    kind : {"churn", "clv", "value"}
        The kind of model; the registered name comes from the config
        (:func:`retain.tracking.registered_name`).
    force_reason : str, optional
        Promote by force, for this reason, whatever the gate says (the gate's verdict is
        still logged; the run and the version are tagged ``promotion.forced=true``).

    Returns
    -------
    PromoteResult
        The decision (accepted or refused, with its reason) and the run id.

    Raises
    ------
    retain.tracking.TrackingError
        When the store is unreachable, the model has no challenger, or the challenger or the
        champion was trained on another data set than the config's.
    """
    model_name = registered_name(cfg, kind)
    # a challenger (or champion) of another data set never takes over this data set's alias
    for alias in (CHALLENGER, CHAMPION):
        version = alias_version(model_name, alias)
        if version is not None:
            check_dataset(version, cfg)
    forced = force_reason is not None
    run_name = f"promote-{model_name}" + ("-forced" if forced else "")
    with tracked_run(cfg, "promote", run_name=run_name, tags={"model_name": model_name}) as run:
        decision = promote(model_name, cfg.promotion, force_reason=force_reason)
        set_tags(
            {
                "promotion.accepted": str(decision.accepted).lower(),
                "promotion.forced": str(decision.forced).lower(),
                "promotion.reason": decision.reason,
                "promotion.challenger_version": str(decision.challenger_version),
                "promotion.champion_before": str(decision.champion_version),
            }
        )
        log_metrics({**decision.metrics, PROMOTION_ACCEPTED: float(decision.accepted)})
        log_dict(dataclasses.asdict(decision), PROMOTION_DECISION)
        describe_run(promotion_description(decision, cfg.data.dataset_id()))
    return PromoteResult(decision, run.info.run_id)


def promotion_description(decision: PromotionDecision, dataset: str) -> str:
    """The run's description: which versions the gate compared, on what data, and its verdict.

    Parameters
    ----------
    decision : PromotionDecision
        The gate's decision.
    dataset : str
        The data set the models were trained on (:meth:`DataConfig.dataset_id`).

    Returns
    -------
    str
        E.g. "Promotion gate for cdnow-churn (data set cdnow_master): challenger version 2
        accepted against champion version 1. <reason>" ("promoted by force" when forced).
    """
    champion = (
        f"champion version {decision.champion_version}"
        if decision.champion_version
        else "no champion"
    )
    verdict = "accepted" if decision.accepted else "refused"
    if decision.forced:
        verdict = "promoted by force"
    reason = decision.reason.strip()
    if reason and not reason.endswith("."):
        reason += "."
    return (
        f"Promotion gate for {decision.model_name} (data set {dataset}): challenger version "
        f"{decision.challenger_version} {verdict} against {champion}. {reason}"
    ).strip()
