"""Evaluating what was done with a date's scores, once the churn horizon has passed.

- :mod:`retain.evaluation.intervals`: the confidence intervals (Wilson, Newcombe, Welch, the
  relative reduction of a rate).
- :mod:`retain.evaluation.actions`: treated versus control per action, per (stage, tier) and
  overall: retention, revenue, uplift, cost, ROI and save rate.
- :mod:`retain.evaluation.proposal`: the measured save rate of each action rule and the
  proposed policy file.
- :mod:`retain.evaluation.realised`: how the date's churn probabilities did (AUC, Brier,
  calibration by deciles).

Pure functions: no file, registry or tracking access (:mod:`retain.jobs.evaluate_actions`
does that).
"""
