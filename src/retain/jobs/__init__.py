"""Pipeline steps: each job loads config and inputs, calls pure functions and logs to MLflow.

One module per step (``train_clv``, ``train_churn``, ``promote``, ``score``, ...). A job returns
a small result (run id, model version) that the CLI and ``pipelines/`` pass on; it computes
nothing that belongs in the library modules.
"""
