"""A self-contained HTML report: sections of text, tables and embedded PNG images.

Images are embedded as base64 ``data:`` URIs and the page has no external links, scripts or
style sheets, so the file opens offline and can be mailed as it is. Figures are closed as soon
as they are rendered. The layout is responsive: a viewport meta tag, tables that scroll inside
their own block, and one column of charts on narrow screens.
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
* { box-sizing: border-box; }
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; font-size: 1.6em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: .8em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
.note { color: #555; font-size: 13px; }
.howto { color: #333; font-size: 13px; background: #f6f8fa; border-left: 3px solid #8aa;
         padding: .3em .6em; }
.banner { border: 2px solid #b35900; background: #fff4e5; padding: .6em .8em; margin: 1em 0;
          font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px; }
.grid img { width: 100%; }
@media (max-width: 700px) {
  body { margin: 1em auto; padding: 0 .6em; }
  td:last-child { overflow-wrap: anywhere; }
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; }
  table.stack tr { border: 1px solid #ccc; margin-bottom: .6em; }
  table.stack td { border: none; border-bottom: 1px solid #eee; text-align: left; }
  table.stack td::before { content: attr(data-label) ": "; font-weight: 600; }
  .grid { grid-template-columns: minmax(0, 1fr); }
  h1 { font-size: 1.3em; }
}
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


def table_html(
    table: pd.DataFrame, float_format: str = "{:,.2f}", index: bool = True, stack: bool = False
) -> str:
    """A DataFrame as an HTML table (values escaped, floats formatted).

    Parameters
    ----------
    table : DataFrame
        The table.
    float_format : str
        Format for floats.
    index : bool
        Include the index.
    stack : bool
        On narrow screens show each row as a card of "column: value" lines instead of a row
        (for wide tables such as the contact list).

    Returns
    -------
    str
        ``<table>...</table>`` inside a ``table-wrap`` block, which scrolls sideways on
        its own when the table is wider than the screen.
    """
    if stack:
        return f'<div class="table-wrap">{_stacked_table(table, float_format, index)}</div>'
    inner = table.to_html(
        index=index,
        escape=True,
        border=0,
        na_rep="",
        float_format=lambda v: float_format.format(v),
    )
    return f'<div class="table-wrap">{inner}</div>'


def _stacked_table(table: pd.DataFrame, float_format: str, index: bool) -> str:
    """A plain table whose cells carry their column name (``data-label``) for the card view."""
    frame = table.reset_index() if index else table

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else float_format.format(value)
        return "" if value is None or value is pd.NA else str(value)

    labels = [html.escape(str(c)) for c in frame.columns]
    head = "".join(f"<th>{c}</th>" for c in labels)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{c}">{html.escape(cell(v))}</td>'
            for c, v in zip(labels, row, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f'<table class="stack"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


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

    def howto(self, text: str) -> Section:
        """Add a short "how to read" line (escaped), shown above a chart or table."""
        self.blocks.append(f'<p class="howto">How to read: {html.escape(text)}</p>')
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
    banners: list[str] = field(default_factory=list)
    """Warnings shown above everything else (plain text, escaped)."""

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
        banners = "".join(
            f'<div class="banner" role="alert">{html.escape(b)}</div>' for b in self.banners
        )
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p class='note'>{html.escape(self.subtitle)}</p>"
            f"{banners}<ul>{toc}</ul>{body}</body></html>"
        )
