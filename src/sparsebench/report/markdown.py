r"""Render a report as Markdown with the figures as PNG files beside it (and PDF, SVG).

Figures are referenced by relative paths (``figures/<name>.png``), so the folder
can be moved or zipped as a whole. Every string is escaped for Markdown: table
pipes, emphasis, code and link characters, and ``<``/``>``/``&`` (Markdown viewers
render raw HTML, and method names come from users).

>>> md_escape("my|method_<x>")
'my\\|method\\_&lt;x&gt;'
"""

from __future__ import annotations

from sparsebench.report.blocks import FigureBlock, Paragraph, Report, Table
from sparsebench.report.figures import VECTOR_FORMATS, has_vectors

# Enough for inline text and table cells: every block this module emits starts with fixed
# text ("## ", "| ", "![", "*"), so line-start syntax such as "#" or "+" cannot be triggered.
_ESCAPED = "\\`*_[]|"


def md_escape(text: str) -> str:
    """Escape text so Markdown shows it literally (also inside a table cell)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = "".join("\\" + ch if ch in _ESCAPED else ch for ch in text)
    return " ".join(text.splitlines())  # a newline would end a table row


def _table(table: Table) -> str:
    lines = ["| " + " | ".join(md_escape(c) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in table.rows]
    if table.caption:
        lines += ["", f"*{md_escape(table.caption)}*"]
    return "\n".join(lines)


def _figure(block: FigureBlock, figure_dir: str) -> str:
    text = f"![{md_escape(block.caption)}]({figure_dir}/{block.name}.png)\n\n*{md_escape(block.caption)}*"
    if has_vectors(block.png):
        text += " Vector files: " + ", ".join(f"[{fmt.upper()}]({figure_dir}/{block.name}.{fmt})"
                                            for fmt in VECTOR_FORMATS) + "."
    return text


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    """The report as Markdown; figure ``name`` is shown as ``{figure_dir}/{name}.png``, and
    its PDF and SVG files (written by :func:`~sparsebench.report.write_report`) are linked
    below it."""
    parts = [f"# {md_escape(report.title)}"]
    for section in report.sections:
        parts.append(f"## {md_escape(section.heading)}")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                parts.append(md_escape(block.text))
            elif isinstance(block, Table):
                parts.append(_table(block))
            elif isinstance(block, FigureBlock):
                parts.append(_figure(block, figure_dir))
    return "\n\n".join(parts) + "\n"
