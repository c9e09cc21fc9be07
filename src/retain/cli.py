"""Command-line interface: one thin command per MLproject entry point.

Exit codes: 0 success, 1 unexpected internal error, 2 configuration or usage error (a bad
config, a malformed date on the command line), 3 data error (bad input, leakage, missing input
tables the model needs), 4 model or registry error (fit failure, no champion, a model file
that fails its integrity check, unreachable tracking server), 5 promotion refused, 6 output or
storage error (an output path retain did not write, a read-only or full disk, scores on disk
missing or damaged).

Every error ends in one line naming the problem and what to do; ``retain --debug ...`` or
``RETAIN_DEBUG=1`` prints the traceback as well.

Quiet by default: a command that succeeds prints one summary line (never hard-wrapped, so a
batch log holds it whole) and, on a terminal, a progress bar. MLflow's artifact progress bars,
the INFO logging of MLflow, alembic and urllib3, and the warnings a user cannot act on are held
back while a command runs; ``retain --verbose ...`` or ``RETAIN_VERBOSE=1`` lets them through.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from retain.config import ConfigError, RunConfig, check_day_range, load_config
from retain.names import baseline_metric, holdout_metric

app = typer.Typer(
    help="retain: churn and CLV models, batch scoring and retention actions.",
    no_args_is_help=True,
    add_completion=False,
    # plain click help and usage errors: flags read `--csv / --no-csv` (not `<bool>`), and a
    # usage error is one line in a batch log rather than a box cut at 80 columns
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# soft_wrap: a line longer than the terminal (or than 80 columns when the output is not a
# terminal) is written whole, never cut into two lines
console = Console(stderr=True, soft_wrap=True)

EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_MODEL = 4
EXIT_PROMOTION = 5
EXIT_OUTPUT = 6
EXIT_INTERNAL = 1

_DEBUG = {"on": False}
_VERBOSE = {"on": False}
_TRUE = {"1", "true", "yes"}
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ConfigOption = typer.Option(..., "--config", "-c", help="Run config YAML, e.g. configs/cdnow.yaml")


def _debug() -> bool:
    return _DEBUG["on"] or os.environ.get("RETAIN_DEBUG", "").strip().lower() in _TRUE


def _verbose() -> bool:
    return _VERBOSE["on"] or os.environ.get("RETAIN_VERBOSE", "").strip().lower() in _TRUE


# Third-party chatter a user cannot act on, held back unless --verbose.
_QUIET_ENV = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # "Downloading artifacts: 100%|..."
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # read when mlflow is first imported
}
_QUIET_LOGGERS = ("mlflow", "alembic", "urllib3", "optuna")
_QUIET_WARNINGS = (
    # (message regex, category, module regex)
    # MLflow's hint on integer columns in an inferred signature: the model's inputs are
    # retain's own features, never missing at scoring time
    (r"Hint: Inferred schema contains integer column", UserWarning, r"mlflow\."),
    # lifetimes sets a pandas option that pandas 3 deprecates, at import
    (r".*mode\.chained_assignment", Warning, r"lifetimes(\.|$)"),
)


@contextmanager
def _quiet() -> Iterator[None]:
    """Hold back third-party progress bars, INFO logging and unactionable warnings.

    Only for the time a command runs (nothing is set at import of ``retain``); with
    ``--verbose`` or ``RETAIN_VERBOSE=1`` nothing is held back. An environment variable the
    user set is left as it is.
    """
    if _verbose():
        yield
        return
    saved_env = {name: os.environ.get(name) for name in _QUIET_ENV}
    saved_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name, value in _QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message, category, module in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category, module=module)
            yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def _version(value: bool) -> None:
    if value:
        from retain import __version__  # the installed distribution's, importlib.metadata

        typer.echo(f"retain {__version__}")
        raise typer.Exit()


def _say(text: str, warnings: Sequence[str] = ()) -> None:
    """The one summary line of a command that succeeded (plain text: no markup, no colours).

    ``warnings`` (e.g. a table with many rejected rows) end the same line, so a batch log keeps
    one line per step and still shows them.
    """
    text += "".join(f"; WARNING {w}" for w in warnings)
    console.print(" ".join(text.split()), soft_wrap=True, markup=False, highlight=False)


def _fail(kind: str, message: object, code: int) -> NoReturn:
    if _debug():
        console.print_exception()
    text = " ".join(str(message).split())  # one line, whatever the message held
    console.print(
        f"[red]{kind}:[/red] {escape(text)}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def _iso_day(value: str) -> str:
    """Validate an optional ``--as-of``: empty, or a real calendar day written YYYY-MM-DD."""
    if not value:
        return value
    try:
        if not _ISO_DAY.match(value):
            raise ValueError
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date written YYYY-MM-DD") from None
    try:
        check_day_range(day)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


@app.callback()
def main(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Print the traceback of an error (also: RETAIN_DEBUG=1)."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Let MLflow's progress bars, INFO logs and warnings through (also: RETAIN_VERBOSE=1).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """retain: churn and CLV models, batch scoring and retention actions."""
    _DEBUG["on"] = debug
    _VERBOSE["on"] = verbose
    # from here to the end of the command, its imports included (lifetimes warns at import)
    ctx.with_resource(_quiet())


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Turn the package's errors into one clear message and a meaningful exit code."""
    from retain.churn import LeakageError
    from retain.clv import ClvFitError
    from retain.features.build import PointInTimeError
    from retain.io import DataError, OutputError
    from retain.tracking import TrackingError

    try:
        yield
    except ConfigError as exc:
        _fail("config error", exc, EXIT_CONFIG)
    except (LeakageError, PointInTimeError) as exc:
        _fail("leakage error (check the snapshot cutoffs and the features)", exc, EXIT_DATA)
    except DataError as exc:
        _fail("data error", exc, EXIT_DATA)
    except ClvFitError as exc:
        _fail("model error", exc, EXIT_MODEL)
    except TrackingError as exc:
        _fail("tracking/registry error", exc, EXIT_MODEL)
    except OutputError as exc:
        _fail("output error", exc, EXIT_OUTPUT)
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        _fail(
            "storage error",
            f"{exc.strerror or exc}{where}; check the path and the disk",
            EXIT_OUTPUT,
        )
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        _fail(
            "internal error",
            f"{type(exc).__name__}: {exc} (a bug in retain: run with --debug for the traceback "
            "and report it)",
            EXIT_INTERNAL,
        )


_OF_TOTAL = re.compile(r"(\d[\d,]*)\s*(?:-\s*(\d[\d,]*))?\s+of\s+(\d[\d,]*)")

# How many phases each job announces through its progress callback (a message without
# "N of M" starts the next phase). A job that announces more only stretches the bar.
_PHASES = {
    "features": 3,
    "train-clv": 5,
    "train-churn": 4,
    "train-value": 4,
    "score": 7,
    "report": 6,
    "evaluate-actions": 5,
    "compare": 4,
    "export": 2,
}


@contextmanager
def _progress(step: str) -> Iterator[Callable[[str], None]]:
    """A rich progress bar for a long step; yields the callback the jobs report through.

    The bar counts the step's phases: each plain message (``"loading models"``) marks the
    phases before it done; a message such as ``"churn and reasons: customers 250,001-500,000
    of 1,000,000"`` moves the bar a quarter of the way through the current phase.
    """
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    # a bar only on a terminal: batch logs get the result line (or the error line) alone;
    # transient: once done the bar gives its place to that line
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        phases = {"total": _PHASES.get(step, 1), "seen": 0}
        task = bar.add_task(f"{step}: starting", total=phases["total"], completed=0)

        def note(message: str) -> None:
            match = _OF_TOTAL.search(message)
            if match:
                # "1-250,000 of N" is announced before that chunk starts
                first = int(match.group(1).replace(",", ""))
                done = first - 1 if match.group(2) else first
                total = int(match.group(3).replace(",", ""))
                within = min(max(done / total, 0.0), 1.0) if total else 0.0
            else:
                phases["seen"] += 1
                within = 0.0
            phases["total"] = max(phases["total"], phases["seen"])
            completed = max(phases["seen"] - 1, 0) + within
            bar.update(
                task,
                description=f"{step}: {message}",
                completed=completed,
                total=phases["total"],
            )

        yield note
        bar.update(task, description=f"{step}: done", completed=phases["total"])


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
        "",
        "--as-of",
        callback=_iso_day,
        help="Cutoff date (YYYY-MM-DD), included. Default: scoring.as_of.",
    ),
    output: str = typer.Option(
        "",
        "--output",
        "-o",
        help="Output root. Default: scoring.output_dir, else 'outputs'. The files go to "
        "<root>/<config name>/features/as_of=<date>/.",
    ),
) -> None:
    """Build every point-in-time feature as of a cutoff and write them to Parquet.

    The folder holds ``features.parquet`` and ``rejects.parquet`` (rows that cannot be used);
    it is written atomically and replaces only an earlier features folder of the same date.
    """
    from retain.jobs.features import write_features

    cfg = _load_config_or_exit(config)
    cutoff = as_of or (str(cfg.scoring.as_of) if cfg.scoring else "")
    if not cutoff:
        _fail("config error", "give --as-of or set scoring.as_of in the config", EXIT_CONFIG)
    with _exit_codes(), _progress("features") as note:
        result = write_features(cfg, cutoff, output_dir=_path_or_none(output), progress=note)
    _say(
        f"features: wrote {result.n_customers:,} customers x {result.n_features} features to "
        f"{result.output_dir} ({result.n_rejected:,} rejected rows)",
        result.warnings,
    )


@app.command()
def init(
    data_file: Path = typer.Argument(..., help="The transactions file (CSV or Parquet)."),
    config: Path = typer.Option(..., "--config", "-c", help="The config YAML to write."),
    events: str = typer.Option("", "--events", help="The events file, if any."),
    customers: str = typer.Option("", "--customers", help="The customers file, if any."),
    force: bool = typer.Option(False, "--force", help="Replace an existing config file."),
) -> None:
    """Inspect your files and write a commented run config for them.

    Reads the first 200,000 rows of each file (and the transactions' dates to the end), guesses
    the column mapping, the timestamp format, the CSV dialect, returns and id normalisation, and
    places the churn horizon, the cutoffs and the CLV backtest inside the data's span. Prints
    what it chose and why; what it could not decide is a '# QUESTION:' line in the file.
    """
    from retain.jobs.init import init_config

    with _exit_codes():
        result = init_config(
            data_file,
            config,
            events=_path_or_none(events),
            customers=_path_or_none(customers),
            force=force,
        )
    _say(result.summary)
    for decision in result.decisions:
        _say(decision.line())
    for question in result.questions:
        _say(f"QUESTION: {question}")


@app.command("train-clv")
def train_clv(config: Path = ConfigOption) -> None:
    """Backtest the CLV models, fit the production model, log it to MLflow as `clv`@challenger."""
    from retain.jobs.train_clv import train_clv as run_train_clv

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("train-clv") as note:
        result = run_train_clv(cfg, progress=note)
    mae = result.metrics.get(holdout_metric("mae"), float("nan"))
    _say(
        f"train-clv: clv version {result.model_version} (alias challenger), purchase model "
        f"{result.purchase_model}, holdout MAE {mae:.4f}; run {result.run_id} in "
        f"{result.tracking_uri}",
        result.warnings,
    )


@app.command("train-churn")
def train_churn(config: Path = ConfigOption) -> None:
    """Train the calibrated LightGBM churn model, log it to MLflow as `churn`@challenger."""
    from retain.jobs.train_churn import train_churn as run_train_churn

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("train-churn") as note:
        result = run_train_churn(cfg, progress=note)
    m = result.metrics
    _say(
        f"train-churn: churn version {result.model_version} (alias challenger), test AUC "
        f"{m['test_roc_auc']:.4f}, PR AUC {m['test_pr_auc']:.4f}, ECE {m['test_ece']:.4f} "
        f"(raw {m['test_raw_ece']:.4f}), best baseline {result.best_baseline} AUC "
        f"{m[baseline_metric(result.best_baseline, 'roc_auc')]:.4f}; run {result.run_id} in "
        f"{result.tracking_uri}",
        result.warnings,
    )


@app.command("train-value")
def train_value(config: Path = ConfigOption) -> None:
    """Train the machine-learned CLV, compare it with BTYD, log it as `value`@challenger."""
    from retain.jobs.train_value import summary_line
    from retain.jobs.train_value import train_value as run_train_value

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("train-value") as note:
        result = run_train_value(cfg, progress=note)
    _say(summary_line(result), result.warnings)


@app.command()
def promote(
    config: Path = ConfigOption,
    model: str = typer.Option(
        ..., "--model", "-m", help="Registered model to promote: churn, clv or value."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Make the challenger champion whatever the gate says (needs --reason; the gate's "
        "verdict is still logged and the version is tagged promotion.forced=true).",
    ),
    reason: str = typer.Option(
        "", "--reason", help="Why the promotion is forced (with --force; kept as a tag)."
    ),
) -> None:
    """Move the `champion` alias to the challenger if the gate accepts it (exit 5 if refused)."""
    from retain.jobs.promote import run_promotion
    from retain.promotion import next_steps

    if model not in ("churn", "clv", "value"):
        _fail("config error", f"--model must be churn, clv or value, got {model!r}", EXIT_CONFIG)
    if force and not reason.strip():
        _fail("usage error", '--force needs --reason "why" (kept with the version)', EXIT_CONFIG)
    if reason.strip() and not force:
        _fail("usage error", "--reason goes with --force", EXIT_CONFIG)
    cfg = _load_config_or_exit(config)
    with _exit_codes():
        result = run_promotion(cfg, model, force_reason=reason.strip() if force else None)
    decision = result.decision
    if decision.forced:
        _say(
            f"promote: forced, {model} version {decision.challenger_version} is champion "
            f"({decision.reason}); logged as forced in run {result.run_id}"
        )
        return
    if decision.accepted:
        _say(
            f"promote: accepted, {model} version {decision.challenger_version} "
            f"is champion ({decision.reason})"
        )
        return
    message = (
        f"promote: refused, {model} version {decision.challenger_version} "
        f"stays challenger; champion remains {decision.champion_version} ({decision.reason})"
    )
    if decision.champion_version is None:
        message = (
            f"promote: refused, {model} version {decision.challenger_version} stays challenger "
            f"({decision.reason}). {next_steps(str(config), model)}"
        )
    _say(message)
    raise typer.Exit(EXIT_PROMOTION)


@app.command()
def score(
    config: Path = ConfigOption,
    as_of: str = typer.Option(
        "",
        "--as-of",
        callback=_iso_day,
        help="Scoring date (YYYY-MM-DD), included. Default: scoring.as_of.",
    ),
    output: str = typer.Option(
        "",
        "--output",
        "-o",
        help="Output root. Default: scoring.output_dir. The scores go to "
        "<root>/<config name>/scores/as_of=<date>/.",
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
    value_version: str = typer.Option(
        "",
        "--value-version",
        help="Value model alias, version number or run id (with clv.method ml or auto). "
        "Default: scoring.model_alias.",
    ),
    csv: bool | None = typer.Option(
        None, "--csv/--no-csv", help="Write scores.csv as well. Default: scoring.write_csv."
    ),
    allow_other_dataset: bool = typer.Option(
        False,
        "--allow-other-dataset",
        help="Score with models trained on another data set than the config's.",
    ),
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
            csv=csv,
            allow_other_dataset=allow_other_dataset,
            progress=note,
            value_version=value_version or None,
        )
    m = result.manifest
    c = m["customers"]
    _say(
        f"score: scored {c['customers_scored']:,} customers as of {m['as_of']} "
        f"({c['customers_rejected']:,} rejected) into {result.output_dir} with "
        f"clv v{m['models']['clv']['version']}, churn v{m['models']['churn']['version']}; "
        f"run {result.run_id}",
        result.warnings,
    )


@app.command()
def report(
    config: Path = ConfigOption,
    as_of: str = typer.Option(
        "",
        "--as-of",
        callback=_iso_day,
        help="Date of the scores to report (YYYY-MM-DD). Default: scoring.as_of.",
    ),
    output: str = typer.Option(
        "",
        "--output",
        "-o",
        help="Output root holding the scores. Default: scoring.output_dir. The report goes to "
        "<root>/<config name>/report/as_of=<date>/report.html.",
    ),
    model_version: str = typer.Option(
        "",
        "--model-version",
        help="Churn model alias, version or run id; must be the one the scores were made with. "
        "Default: that one.",
    ),
    allow_other_dataset: bool = typer.Option(
        False,
        "--allow-other-dataset",
        help="Accept models trained on another data set than the config's.",
    ),
) -> None:
    """Write the self-contained analyst HTML report on the scores of one date."""
    from retain.jobs.report import report as run_report

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("report") as note:
        result = run_report(
            cfg,
            as_of=as_of or None,
            output_dir=_path_or_none(output),
            model_version=model_version or None,
            allow_other_dataset=allow_other_dataset,
            progress=note,
        )
    _say(
        f"report: wrote {result.path} ({result.n_images} images); run {result.run_id}",
        result.warnings,
    )


@app.command("evaluate-actions")
def evaluate_actions(
    config: Path = ConfigOption,
    scores_date: str = typer.Option(
        ...,
        "--scores-date",
        callback=_iso_day,
        help="Date of the scores whose actions are evaluated (YYYY-MM-DD); its churn horizon "
        "must have passed in the data.",
    ),
    until: str = typer.Option(
        "",
        "--until",
        callback=_iso_day,
        help="Use the data up to this day only (YYYY-MM-DD). Default: the data's last day "
        "(data.observed_until).",
    ),
    output: str = typer.Option(
        "",
        "--output",
        "-o",
        help="Output root holding the scores. Default: scoring.output_dir. The evaluation "
        "goes to <root>/<config name>/evaluation/as_of=<scores date>/.",
    ),
) -> None:
    """Measure what the actions of a scoring date did: treated versus control, after the horizon.

    Reports per action, per (stage, tier) and overall the retention rate (a purchase within
    the churn horizon) and revenue of the treated and control groups, the uplift with its 95%
    interval, the cost and the return on the contact budget; measures each action rule's save
    rate and writes proposed_policy.yaml (the current policy with those rates, for review);
    judges the date's churn probabilities on what happened. Exit 3 when the scores have no
    control groups or the horizon has not passed in the data.
    """
    from retain.jobs.evaluate_actions import evaluate_actions as run_evaluate

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("evaluate-actions") as note:
        result = run_evaluate(
            cfg,
            scores_date=scores_date,
            until=until or None,
            output_dir=_path_or_none(output),
            progress=note,
        )
    s = result.summary
    o = s["overall"]
    uplift = o.get("retention_uplift")
    shown = "n/a" if uplift is None else f"{uplift:+.1%}"
    _say(
        f"evaluate-actions: scores as of {s['scores_date']}, {s['horizon_days']}-day horizon to "
        f"{s['window']['last_day']}: {o['n_treatment']:,} treated, {o['n_control']:,} control, "
        f"retention uplift {shown}; wrote {result.output_dir}; run {result.run_id}",
        result.warnings,
    )


@app.command()
def compare(
    config: Path = ConfigOption,
    date_from: str = typer.Option(
        ..., "--from", callback=_iso_day, help="The earlier scoring date (YYYY-MM-DD)."
    ),
    date_to: str = typer.Option(
        ..., "--to", callback=_iso_day, help="The later scoring date (YYYY-MM-DD)."
    ),
    output: str = typer.Option(
        "",
        "--output",
        "-o",
        help="Output root holding the scores. Default: scoring.output_dir. The tables go to "
        "<root>/<config name>/compare/from=<date>_to=<date>/.",
    ),
) -> None:
    """Compare the scores of two dates: stage and tier transitions, saved, new, reactivated."""
    from retain.jobs.compare import compare as run_compare

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("compare") as note:
        result = run_compare(
            cfg, date_from, date_to, output_dir=_path_or_none(output), progress=note
        )
    c = result.transitions.counts
    saved = result.transitions.at_risk.set_index("outcome")["customers"]
    _say(
        f"compare: {c['customers_from']:,} customers as of {date_from}, {c['customers_to']:,} "
        f"as of {date_to}; {c['stage_changed']:,} changed stage, {int(saved['saved']):,} of "
        f"{int(saved.sum()):,} at risk saved, {c['new']:,} new, {c['only_from']:,} no longer "
        f"scored, {c['reactivated']:,} reactivated; tables in {result.output_dir}; run "
        f"{result.run_id}"
    )


@app.command()
def export(
    config: Path = ConfigOption,
    date: str = typer.Option(
        "",
        "--date",
        callback=_iso_day,
        help="Date of the scores (YYYY-MM-DD). Default: scoring.as_of.",
    ),
    channel: str = typer.Option(
        ..., "--channel", help="The channel of the list: email, sms, phone or social."
    ),
    output: str = typer.Option(
        "",
        "--output",
        "-o",
        help="Output root holding the scores. Default: scoring.output_dir. The list goes to "
        "<root>/<config name>/export/as_of=<date>/<channel>.csv.",
    ),
) -> None:
    """Write one channel's contact list (priority order, within the budget) as CSV for a CRM."""
    from retain.jobs.export import export_channel

    cfg = _load_config_or_exit(config)
    with _exit_codes(), _progress("export") as note:
        result = export_channel(
            cfg, channel, as_of=date or None, output_dir=_path_or_none(output), progress=note
        )
    _say(f"export: wrote {result.customers:,} {channel} contacts to {result.path}")


@app.command()
def rollback(
    config: Path = ConfigOption,
    model: str = typer.Option(..., "--model", "-m", help="Registered model: churn, clv or value."),
) -> None:
    """Point `champion` back at `previous_champion` (a second call undoes the first)."""
    from retain.tracking import configure, registered_name
    from retain.tracking import rollback as run_rollback

    if model not in ("churn", "clv", "value"):
        _fail("config error", f"--model must be churn, clv or value, got {model!r}", EXIT_CONFIG)
    cfg = _load_config_or_exit(config)
    with _exit_codes():
        configure(cfg.tracking)
        version = run_rollback(registered_name(cfg, model))
    _say(f"rollback: {model} champion is version {version} again")


if __name__ == "__main__":  # pragma: no cover
    app()
