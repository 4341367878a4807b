"""Render a report as one self-contained HTML page.

Self-contained means: figures are embedded as ``data:image/png;base64`` URIs, the
only CSS is an inline ``<style>``, there is no script, font, stylesheet or link
to anything outside the file, and a Content-Security-Policy meta tag tells the
browser to refuse any request that is not a ``data:`` image -- so even a
mistake here cannot make the page fetch something. Every string is HTML-escaped
(method names and config values come from users).

>>> from sparsebench.report.blocks import Paragraph, Report, Section
>>> page = render_html(Report("t", [Section("s", [Paragraph("<b>mine</b> & co")])]))
>>> "&lt;b&gt;mine&lt;/b&gt; &amp; co" in page
True
"""

from __future__ import annotations

import base64
from html import escape

from sparsebench.report.blocks import FigureBlock, Paragraph, Report, Table
from sparsebench.report.figures import VECTOR_FORMATS, has_vectors

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       max-width: 62rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1a1a1a; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: 0.8rem; padding-top: 0.3rem; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.85rem; }
td.verdict-better { background: #e6f4ea; } td.verdict-worse { background: #fce8e6; }
td.verdict-equivalent { background: #e8f0fe; } td.verdict-identical { background: #eeeeee; }
"""
# The CSS class of each verdict a table may show; identical results were not tested, so they
# are not coloured as equivalent.
VERDICT_CLASSES = {"better": "better", "worse": "worse", "equivalent": "equivalent",
                   "identical (not tested)": "identical"}


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for column, cell in zip(table.columns, row):
            # Colour only the verdict cells, so the table reads at a glance; the class is from a fixed set.
            css = (f' class="verdict-{VERDICT_CLASSES[cell]}"'
                   if column.startswith("verdict") and cell in VERDICT_CLASSES else "")
            cells.append(f"<td{css}>{escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(figure: FigureBlock, figure_dir: str) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    # The vector files are named, not linked: the page must stay whole when it travels alone.
    vectors = ("" if not has_vectors(figure.png) else " Also as vector files: " + ", ".join(
        f"{figure_dir}/{figure.name}.{fmt}" for fmt in VECTOR_FORMATS) + ".")
    return (f'<figure id="{escape(figure.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(figure.caption)}"><figcaption>{escape(figure.caption)}'
            f'{escape(vectors)}</figcaption></figure>')


def render_html(report: Report, figure_dir: str = "figures") -> str:
    """The report as an HTML5 document string; each figure's caption names its PDF and SVG
    files (``{figure_dir}/{name}.pdf``), which :func:`~sparsebench.report.write_report` writes."""
    parts = []
    for section in report.sections:
        parts.append(f"<section><h2>{escape(section.heading)}</h2>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                parts.append(f"<p>{escape(block.text)}</p>")
            elif isinstance(block, Table):
                parts.append(_table(block))
            elif isinstance(block, FigureBlock):
                parts.append(_figure(block, figure_dir))
        parts.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(report.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(report.title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n")
