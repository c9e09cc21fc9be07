"""Command-line interface: one thin command per MLproject entry point."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from retain.config import ConfigError, load_config

app = typer.Typer(
    help="retain: churn and CLV models, batch scoring and retention actions.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_DATA = 3

ConfigOption = typer.Option(..., "--config", "-c", help="Run config YAML, e.g. configs/cdnow.yaml")


@app.command()
def features(
    config: Path = ConfigOption,
    as_of: str = typer.Option(..., "--as-of", help="Cutoff date (YYYY-MM-DD), included."),
    output: Path = typer.Option(Path("outputs/features.parquet"), help="Parquet file to write."),
) -> None:
    """Build the RFM summary as of a cutoff and write it to Parquet."""
    from retain.datasets import load_cdnow
    from retain.features.rfm import rfm_summary

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    kind = "sample" if cfg.data.source == "cdnow_sample" else "master"
    summary = rfm_summary(load_cdnow(kind), as_of, "D")
    output.parent.mkdir(parents=True, exist_ok=True)
    summary.to_parquet(output)
    console.print(f"wrote {len(summary):,} customers to {output}")


@app.command()
def demo(config: Path = ConfigOption) -> None:
    """Run the main job end to end on the configured data."""
    cfg = load_config(config)
    assert cfg.scoring is not None
    features(config, str(cfg.scoring.as_of), cfg.scoring.output_dir / "features.parquet")


if __name__ == "__main__":  # pragma: no cover
    app()
