"""A self-contained HTML report: sections of text, tables and embedded PNG images.

Images are embedded as base64 ``data:`` URIs and the page has no external links, scripts or
style sheets, so the file opens offline and can be mailed as it is. Figures are closed as soon
as they are rendered.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["Report", "Section", "figure_to_data_uri", "table_html"]

_STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: .6em 0; }
.note { color: #555; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.grid img { max-width: 48%; }
"""


def figure_to_data_uri(fig: Figure, dpi: int = 110) -> str:
    """Render a matplotlib figure to a PNG ``data:`` URI and close it.

    Parameters
    ----------
    fig : Figure
        The figure (closed afterwards).
    dpi : int
        Resolution.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_to_data_uri(data: bytes) -> str:
    """A PNG file's bytes as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def table_html(table: pd.DataFrame, float_format: str = "{:,.2f}", index: bool = True) -> str:
    """A DataFrame as an HTML table (values escaped, floats formatted).

    Parameters
    ----------
    table : DataFrame
        The table.
    float_format : str
        Format for floats.
    index : bool
        Include the index.

    Returns
    -------
    str
        ``<table>...</table>``.
    """
    return table.to_html(
        index=index,
        escape=True,
        border=0,
        na_rep="",
        float_format=lambda v: float_format.format(v),
    )


@dataclass
class Section:
    """One report section: a title and HTML blocks (text, tables, images) in order."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, text: str, note: bool = False) -> Section:
        """Add a paragraph (escaped)."""
        cls = ' class="note"' if note else ""
        self.blocks.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def table(self, table: pd.DataFrame, **kwargs: object) -> Section:
        """Add a table (see :func:`table_html`)."""
        self.blocks.append(table_html(table, **kwargs))  # type: ignore[arg-type]
        return self

    def figure(self, fig: Figure, alt: str) -> Section:
        """Add a matplotlib figure as an embedded PNG (the figure is closed)."""
        self.blocks.append(f'<img alt="{html.escape(alt)}" src="{figure_to_data_uri(fig)}">')
        return self

    def image(self, data_uri: str, alt: str) -> Section:
        """Add an already encoded image."""
        self.blocks.append(f'<img alt="{html.escape(alt)}" src="{data_uri}">')
        return self

    def grid(self, figures: list[tuple[Figure, str]]) -> Section:
        """Add several figures side by side."""
        imgs = "".join(
            f'<img alt="{html.escape(alt)}" src="{figure_to_data_uri(fig)}">'
            for fig, alt in figures
        )
        self.blocks.append(f'<div class="grid">{imgs}</div>')
        return self


@dataclass
class Report:
    """An HTML report made of sections."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        """Start a new section and return it."""
        sec = Section(title)
        self.sections.append(sec)
        return sec

    @property
    def n_images(self) -> int:
        """Number of embedded images."""
        return sum(block.count("<img ") for sec in self.sections for block in sec.blocks)

    def render(self) -> str:
        """The complete HTML page."""
        toc = "".join(
            f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
            for i, s in enumerate(self.sections)
        )
        body = "".join(
            f'<h2 id="s{i}">{html.escape(s.title)}</h2>' + "".join(s.blocks)
            for i, s in enumerate(self.sections)
        )
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p class='note'>{html.escape(self.subtitle)}</p>"
            f"<ul>{toc}</ul>{body}</body></html>"
        )
