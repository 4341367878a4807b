"""The report as plain data: sections of paragraphs, tables and figures.

The content is built once (:mod:`sparsebench.report.content`) and rendered twice,
to HTML and to Markdown, so the two documents always say the same thing. All
strings here are raw text; each renderer escapes them for its own format.

>>> report = Report("Title", [Section("Verdicts", [Paragraph("At sparsity 0.9 ...")])])
>>> [type(block).__name__ for block in report.sections[0].blocks]
['Paragraph']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class FigureBlock:
    """A rendered figure: ``name`` is its file stem (``figures/<name>.png``).

    ``png`` is the PNG; when it is a :class:`~sparsebench.report.figures.FigureImage` (what
    :func:`~sparsebench.report.figures.png_bytes` returns) it also gives the figure as PDF
    and SVG, which the report writes beside the PNG and names in both documents.
    """

    name: str
    caption: str
    png: bytes


Block = Union[Paragraph, Table, FigureBlock]


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    title: str
    sections: list[Section]

    def figures(self) -> list[FigureBlock]:
        """All figures, in document order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, FigureBlock)]
