"""What the CLI prints: a version, paired boolean flags, one summary line, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import yaml
from typer.testing import CliRunner

from retain import __version__, cli
from retain.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    cfg = {
        "name": "cli-output-test",
        "data": {"source": "cdnow_sample"},
        "clv": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
        "scoring": {"as_of": "1998-06-30", "output_dir": str(tmp_path / "out")},
        "policy": str(ROOT / "configs" / "policy.yaml"),
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_version_is_the_installed_distributions():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"retain {version('retain')}\n"
    assert __version__ == version("retain")


def test_boolean_options_read_as_flags_in_the_help():
    text = runner.invoke(app, ["score", "--help"], terminal_width=200).output
    assert "--csv / --no-csv" in text
    assert "--allow-other-dataset" in text
    assert "<bool>" not in text
    top = runner.invoke(app, ["--help"], terminal_width=200).output
    assert "--verbose" in top and "--version" in top and "--debug" in top


def test_a_successful_command_prints_one_unwrapped_line(tmp_path):
    # a real process, as a batch job runs it: output not a terminal, no --verbose
    out = tmp_path / ("a-long-output-root-so-that-the-summary-line-is-far-past-80-columns" * 2)
    env = {k: v for k, v in os.environ.items() if k not in ("RETAIN_VERBOSE", "COLUMNS")}
    proc = subprocess.run(
        [sys.executable, "-m", "retain.cli", "features", "--config", str(_config(tmp_path))]
        + ["--as-of", "1997-09-30", "--output", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("features: wrote 2,357 customers x ")
    assert str(out) in line and len(line) > 160  # whole, not cut at 80 columns
    for noise in ("Downloading artifacts", "INFO", "Warning", "warn"):
        assert noise not in line


def test_verbose_is_accepted_and_leaves_no_setting_behind(tmp_path):
    args = ["features", "--config", str(_config(tmp_path)), "--as-of", "1997-09-30"]
    before = {name: os.environ.get(name) for name in cli._QUIET_ENV}
    for extra in ([], ["--verbose"]):
        result = runner.invoke(app, [*extra, *args, "-o", str(tmp_path / f"f{len(extra)}")])
        assert result.exit_code == 0, result.output
        assert "features: wrote 2,357 customers" in result.output
        assert {name: os.environ.get(name) for name in cli._QUIET_ENV} == before


def test_quiet_holds_back_only_what_a_user_cannot_act_on(monkeypatch):
    monkeypatch.setitem(cli._VERBOSE, "on", False)  # as a run without --verbose leaves it
    monkeypatch.delenv("RETAIN_VERBOSE", raising=False)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    hint = "Hint: Inferred schema contains integer column(s). Integer columns in Python ..."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with cli._quiet():
            assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
            warnings.warn_explicit(hint, UserWarning, "utils.py", 1, module="mlflow.types.utils")
            warnings.warn_explicit("something else", UserWarning, "utils.py", 2, module="mlflow")
            warnings.warn_explicit(hint, UserWarning, "mine.py", 3, module="retain.jobs")
        assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
        monkeypatch.setenv("RETAIN_VERBOSE", "1")
        with cli._quiet():
            assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
            warnings.warn_explicit(hint, UserWarning, "utils.py", 4, module="mlflow.types.utils")
    assert [w.lineno for w in caught] == [2, 3, 4]


def test_the_progress_bar_advances_within_a_step(monkeypatch):
    seen: list[tuple[float, float]] = []

    class Recording(cli.Progress):
        def update(self, task_id, **kwargs):
            super().update(task_id, **kwargs)
            task = self._tasks[task_id]
            seen.append((task.completed, task.total))

    monkeypatch.setattr(cli, "Progress", Recording)
    messages = [
        "loading models",
        "loading inputs as of 1998-06-30",
        "building features",
        "predicting CLV",
        "churn and reasons: customers 1-500 of 1,000",
        "churn and reasons: customers 501-1,000 of 1,000",
        "applying the policy",
        "writing 1,000 rows to out",
        "logging to MLflow",
    ]
    with cli._progress("score") as note:
        for message in messages:
            note(message)
    fractions = [done / total for done, total in seen]
    assert fractions == sorted(fractions)  # never backwards
    assert 0 < fractions[3] < fractions[5] < fractions[-2] < 1  # moves before the end
    assert fractions[-1] == 1
