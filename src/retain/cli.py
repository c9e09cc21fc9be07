"""Command-line interface: one thin command per MLproject entry point.

Exit codes: 0 success, 2 configuration error, 3 data error (bad input, leakage), 4 model or
registry error (fit failure, no champion, unreachable tracking server), 5 promotion refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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


def _fail(kind: str, message: object, code: int) -> NoReturn:
    console.print(f"[red]{kind}:[/red] {message}")
    raise typer.Exit(code)


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Turn the package's errors into one clear message and a meaningful exit code."""
    from retain.churn import LeakageError
    from retain.clv import ClvFitError
    from retain.features.build import PointInTimeError
    from retain.io import DataError
    from retain.tracking import TrackingError

    try:
        yield
    except ConfigError as exc:
        _fail("config error", exc, EXIT_CONFIG)
    except (LeakageError, PointInTimeError) as exc:
        _fail("leakage error (check the churn cutoffs and the features)", exc, EXIT_DATA)
    except DataError as exc:
        _fail("data error", exc, EXIT_DATA)
    except ClvFitError as exc:
        _fail("model error", exc, EXIT_MODEL)
    except TrackingError as exc:
        _fail("tracking/registry error", exc, EXIT_MODEL)


_OF_TOTAL = re.compile(r"(\d[\d,]*)\s*(?:-\s*(\d[\d,]*))?\s+of\s+(\d[\d,]*)")


@contextmanager
def _progress(step: str) -> Iterator[Callable[[str], None]]:
    """A rich progress bar for a long step; yields the callback the jobs report through.

    A message such as ``"churn and reasons: customers 1-250,000 of 1,000,000"`` moves the bar
    to 250,000 of 1,000,000; other messages only change the description (the bar pulses).
    """
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"{step}: starting", total=None)

        def note(message: str) -> None:
            match = _OF_TOTAL.search(message)
            if match:
                done = int((match.group(2) or match.group(1)).replace(",", ""))
                total = int(match.group(3).replace(",", ""))
                bar.update(task, description=f"{step}: {message}", completed=done, total=total)
            else:
                bar.update(task, description=f"{step}: {message}", total=None)

        yield note
        bar.update(task, description=f"{step}: done", completed=1, total=1)


def _load_config_or_exit(config: Path) -> RunConfig:
    try:
        return load_config(config)
    except ConfigError as exc:
        _fail("config error", exc, EXIT_CONFIG)


def _path_or_none(value: str) -> Path | None:
    """An optional path option: empty means "use the config's" (MLproject passes '')."""
    return Path(value) if value else None


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
    from retain.io import load_inputs, write_rejects, write_table_atomic

    cfg = _load_config_or_exit(config)
    cutoff = as_of or (str(cfg.scoring.as_of) if cfg.scoring else "")
    if not cutoff:
        _fail("config error", "give --as-of or set scoring.as_of in the config", EXIT_CONFIG)
    with _exit_codes():
        with _progress("features") as note:
            note(f"loading and validating inputs as of {cutoff}")
            inputs = load_inputs(cfg, cutoff)
            note("building features")
            table = build_features(inputs.transactions, cutoff, inputs.events, cfg.features)
    write_table_atomic(table.reset_index(), output)
    rejects = output.with_name(f"{output.stem}.rejects.parquet")
    write_rejects(inputs.rejects, rejects)
    console.print(
        f"wrote {len(table):,} customers x {table.shape[1]} features to {output} "
        f"({len(inputs.rejects):,} rejected rows in {rejects})"
    )


@app.command("train-clv")
def train_clv(config: Path = ConfigOption) -> None:
    """Backtest the CLV models, fit the production model, log it to MLflow as `clv`@challenger."""
    from retain.jobs.train_clv import train_clv as run_train_clv

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("train-clv") as note:
        result = run_train_clv(cfg, progress=note)
    mae = result.metrics.get("holdout_mae", float("nan"))
    console.print(
        f"clv version {result.model_version} (alias challenger), purchase model "
        f"{result.purchase_model}, holdout MAE {mae:.4f}\n"
        f"run {result.run_id} in {result.tracking_uri}"
    )


@app.command("train-churn")
def train_churn(config: Path = ConfigOption) -> None:
    """Train the calibrated LightGBM churn model, log it to MLflow as `churn`@challenger."""
    from retain.jobs.train_churn import train_churn as run_train_churn

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("train-churn") as note:
        result = run_train_churn(cfg, progress=note)
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

    if model not in ("churn", "clv"):
        _fail("config error", f"--model must be churn or clv, got {model!r}", EXIT_CONFIG)
    cfg = _load_config_or_exit(config)
    with _exit_codes():
        result = run_promotion(cfg, model)
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
    output: str = typer.Option(
        "", "--output", "-o", help="Output folder. Default: scoring.output_dir."
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
    from retain.jobs.score import score as run_score

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("score") as note:
        result = run_score(
            cfg,
            as_of=as_of or None,
            output_dir=_path_or_none(output),
            model_version=model_version or None,
            clv_version=clv_version or None,
            csv=csv or None,
            progress=note,
        )
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
    output: str = typer.Option(
        "", "--output", "-o", help="Folder for report.html. Default: scoring.output_dir."
    ),
    model_version: str = typer.Option(
        "", "--model-version", help="Churn model alias, version or run id. Default: champion."
    ),
) -> None:
    """Write the self-contained analyst HTML report (SHAP, stages, actions, backtests)."""
    from retain.jobs.report import report as run_report

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("report") as note:
        result = run_report(
            cfg,
            output_dir=_path_or_none(output),
            model_version=model_version or None,
            progress=note,
        )
    console.print(f"wrote {result.path} ({result.n_images} images); run {result.run_id}")


@app.command()
def rollback(
    config: Path = ConfigOption,
    model: str = typer.Option(..., "--model", "-m", help="Registered model: churn or clv."),
) -> None:
    """Point `champion` back at `previous_champion` (a second call undoes the first)."""
    from retain.tracking import configure
    from retain.tracking import rollback as run_rollback

    if model not in ("churn", "clv"):
        _fail("config error", f"--model must be churn or clv, got {model!r}", EXIT_CONFIG)
    cfg = _load_config_or_exit(config)
    with _exit_codes():
        configure(cfg.tracking)
        version = run_rollback(model)
    console.print(f"{model}: champion is version {version} again")


if __name__ == "__main__":  # pragma: no cover
    app()
