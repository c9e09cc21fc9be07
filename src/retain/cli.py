"""Command-line interface: one thin command per MLproject entry point."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from retain.config import ConfigError, RunConfig, load_config

app = typer.Typer(
    help="retain: churn and CLV models, batch scoring and retention actions.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_MODEL = 4
EXIT_PROMOTION = 5

ConfigOption = typer.Option(..., "--config", "-c", help="Run config YAML, e.g. configs/cdnow.yaml")


@app.command()
def features(
    config: Path = ConfigOption,
    as_of: str = typer.Option(
        "", "--as-of", help="Cutoff date (YYYY-MM-DD), included. Default: scoring.as_of."
    ),
    output: Path = typer.Option(
        Path("outputs/features.parquet"), help="Parquet file to write (atomically)."
    ),
) -> None:
    """Build every point-in-time feature as of a cutoff and write them to Parquet.

    Rows that cannot be used are written beside it as ``<output stem>.rejects.parquet``.
    """
    from retain.features.build import build_features
    from retain.io import DataError, load_inputs, write_rejects, write_table_atomic

    cfg = _load_config_or_exit(config)
    cutoff = as_of or (str(cfg.scoring.as_of) if cfg.scoring else "")
    if not cutoff:
        console.print("[red]config error:[/red] give --as-of or set scoring.as_of in the config")
        raise typer.Exit(EXIT_CONFIG)
    try:
        with console.status(f"loading and validating inputs as of {cutoff}"):
            inputs = load_inputs(cfg, cutoff)
        with console.status("building features"):
            table = build_features(inputs.transactions, cutoff, inputs.events, cfg.features)
    except DataError as exc:
        console.print(f"[red]data error:[/red] {exc}")
        raise typer.Exit(EXIT_DATA) from exc
    write_table_atomic(table.reset_index(), output)
    rejects = output.with_name(f"{output.stem}.rejects.parquet")
    write_rejects(inputs.rejects, rejects)
    console.print(
        f"wrote {len(table):,} customers x {table.shape[1]} features to {output} "
        f"({len(inputs.rejects):,} rejected rows in {rejects})"
    )


def _load_config_or_exit(config: Path) -> RunConfig:
    try:
        return load_config(config)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc


@app.command("train-clv")
def train_clv(config: Path = ConfigOption) -> None:
    """Backtest the CLV models, fit the production model, log it to MLflow as `clv`@challenger."""
    from retain.clv import ClvFitError
    from retain.io import DataError
    from retain.jobs.train_clv import train_clv as run_train_clv
    from retain.tracking import TrackingError

    cfg = _load_config_or_exit(config)
    try:
        with console.status("train-clv: starting") as status:
            result = run_train_clv(cfg, progress=lambda msg: status.update(f"train-clv: {msg}"))
    except TrackingError as exc:
        console.print(f"[red]tracking error:[/red] {exc}")
        raise typer.Exit(EXIT_MODEL) from exc
    except ClvFitError as exc:
        console.print(f"[red]model error:[/red] {exc}")
        raise typer.Exit(EXIT_MODEL) from exc
    except DataError as exc:
        console.print(f"[red]data error:[/red] {exc}")
        raise typer.Exit(EXIT_DATA) from exc
    mae = result.metrics.get("holdout_mae", float("nan"))
    console.print(
        f"clv version {result.model_version} (alias challenger), purchase model "
        f"{result.purchase_model}, holdout MAE {mae:.4f}\n"
        f"run {result.run_id} in {result.tracking_uri}"
    )


@app.command("train-churn")
def train_churn(config: Path = ConfigOption) -> None:
    """Train the calibrated LightGBM churn model, log it to MLflow as `churn`@challenger."""
    from retain.churn import LeakageError
    from retain.io import DataError
    from retain.jobs.train_churn import train_churn as run_train_churn
    from retain.tracking import TrackingError

    cfg = _load_config_or_exit(config)
    try:
        with console.status("train-churn: starting") as status:
            result = run_train_churn(cfg, progress=lambda msg: status.update(f"train-churn: {msg}"))
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except LeakageError as exc:
        console.print(f"[red]leakage error (check churn cutoffs and features):[/red] {exc}")
        raise typer.Exit(EXIT_DATA) from exc
    except DataError as exc:
        console.print(f"[red]data error:[/red] {exc}")
        raise typer.Exit(EXIT_DATA) from exc
    except TrackingError as exc:
        console.print(f"[red]tracking error:[/red] {exc}")
        raise typer.Exit(EXIT_MODEL) from exc
    m = result.metrics
    console.print(
        f"churn version {result.model_version} (alias challenger): test AUC "
        f"{m['test_roc_auc']:.4f}, PR AUC {m['test_pr_auc']:.4f}, ECE {m['test_ece']:.4f} "
        f"(raw {m['test_raw_ece']:.4f}); best baseline {result.best_baseline} AUC "
        f"{m[f'baseline_{result.best_baseline}_roc_auc']:.4f}\n"
        f"run {result.run_id} in {result.tracking_uri}"
    )


@app.command()
def promote(
    config: Path = ConfigOption,
    model: str = typer.Option(
        ..., "--model", "-m", help="Registered model to promote: churn or clv."
    ),
) -> None:
    """Move the `champion` alias to the challenger if the gate accepts it (exit 5 if refused)."""
    from retain.jobs.promote import run_promotion
    from retain.tracking import TrackingError

    if model not in ("churn", "clv"):
        console.print(f"[red]config error:[/red] --model must be churn or clv, got {model!r}")
        raise typer.Exit(EXIT_CONFIG)
    cfg = _load_config_or_exit(config)
    try:
        result = run_promotion(cfg, model)
    except TrackingError as exc:
        console.print(f"[red]registry error:[/red] {exc}")
        raise typer.Exit(EXIT_MODEL) from exc
    decision = result.decision
    if decision.accepted:
        console.print(
            f"[green]accepted:[/green] {model} version {decision.challenger_version} is champion "
            f"({decision.reason})"
        )
        return
    console.print(
        f"[yellow]refused:[/yellow] {model} version {decision.challenger_version} stays "
        f"challenger; champion remains {decision.champion_version} ({decision.reason})"
    )
    raise typer.Exit(EXIT_PROMOTION)


@app.command()
def score(
    config: Path = ConfigOption,
    as_of: str = typer.Option(
        "", "--as-of", help="Scoring date (YYYY-MM-DD), included. Default: scoring.as_of."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output folder. Default: scoring.output_dir."
    ),
    model_version: str = typer.Option(
        "",
        "--model-version",
        help="Churn model alias, version number or run id. Default: scoring.model_alias.",
    ),
    clv_version: str = typer.Option(
        "",
        "--clv-version",
        help="CLV model alias, version number or run id. Default: scoring.model_alias.",
    ),
    csv: bool = typer.Option(False, "--csv", help="Also write scores.csv."),
) -> None:
    """Score every customer (stage, tier, action, reasons) and write scores + manifest."""
    from retain.io import DataError
    from retain.jobs.score import score as run_score
    from retain.tracking import TrackingError

    cfg = _load_config_or_exit(config)
    try:
        with console.status("score: starting") as status:
            result = run_score(
                cfg,
                as_of=as_of or None,
                output_dir=output,
                model_version=model_version or None,
                clv_version=clv_version or None,
                csv=csv or None,
                progress=lambda msg: status.update(f"score: {msg}"),
            )
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except DataError as exc:
        console.print(f"[red]data error:[/red] {exc}")
        raise typer.Exit(EXIT_DATA) from exc
    except TrackingError as exc:
        console.print(f"[red]model error:[/red] {exc}")
        raise typer.Exit(EXIT_MODEL) from exc
    m = result.manifest
    c = m["customers"]
    console.print(
        f"scored {c['customers_scored']:,} customers as of {m['as_of']} "
        f"({c['customers_rejected']:,} rejected) into {result.output_dir}; "
        f"clv v{m['models']['clv']['version']}, churn v{m['models']['churn']['version']}\n"
        f"run {result.run_id}"
    )


@app.command()
def report(
    config: Path = ConfigOption,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Folder for report.html. Default: scoring.output_dir."
    ),
    model_version: str = typer.Option(
        "", "--model-version", help="Churn model alias, version or run id. Default: champion."
    ),
) -> None:
    """Write the self-contained analyst HTML report (SHAP, stages, actions, backtests)."""
    from retain.io import DataError
    from retain.jobs.report import report as run_report
    from retain.tracking import TrackingError

    cfg = _load_config_or_exit(config)
    try:
        with console.status("report: starting") as status:
            result = run_report(
                cfg,
                output_dir=output,
                model_version=model_version or None,
                progress=lambda msg: status.update(f"report: {msg}"),
            )
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except DataError as exc:
        console.print(f"[red]data error:[/red] {exc}")
        raise typer.Exit(EXIT_DATA) from exc
    except TrackingError as exc:
        console.print(f"[red]model error:[/red] {exc}")
        raise typer.Exit(EXIT_MODEL) from exc
    console.print(f"wrote {result.path} ({result.n_images} images); run {result.run_id}")


@app.command()
def demo(config: Path = ConfigOption) -> None:
    """Run the main job end to end on the configured data."""
    cfg = load_config(config)
    assert cfg.scoring is not None
    features(config, str(cfg.scoring.as_of), cfg.scoring.output_dir / "features.parquet")


if __name__ == "__main__":  # pragma: no cover
    app()
