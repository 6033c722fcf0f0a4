"""One figure (`Row`) and the plain-text table every benchmark prints its figures in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Row", "format_rows", "format_sections", "nearest_rank"]


@dataclass(frozen=True)
class Row:
    """One figure: what, how much, its unit, and the target it is held to (if any)."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None

    def cells(self) -> list[str]:
        verdict = "" if self.ok is None else ("ok" if self.ok else "MISSED")
        return [self.name, f"{self.value:,.2f}", self.unit, self.target, verdict]


_HEADER = ["measure", "value", "unit", "target", ""]


def _render(title: str, table: list[list[str]], value_column: int, *, spaced: bool) -> str:
    """Columns padded to their widest cell, the value column right-aligned, a rule under the
    header; with `spaced`, a blank line before each row that opens a section (a first cell)."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [f"## {title}"]
    for n, line in enumerate(table):
        if spaced and n > 1 and line[0]:
            lines.append("")
        lines.append(
            "  ".join(
                cell.rjust(widths[i]) if i == value_column else cell.ljust(widths[i])
                for i, cell in enumerate(line)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_rows(rows: Sequence[Row], title: str) -> str:
    """One benchmark's table: measure | value | unit | target | verdict."""
    return _render(title, [_HEADER, *(row.cells() for row in rows)], 1, spaced=False)


def format_sections(sections: Sequence[tuple[str, list[Row]]], title: str) -> str:
    """One table for several benchmarks: section | measure | value | unit | target | verdict."""
    table = [["bench", *_HEADER]]
    for section, rows in sections:
        for n, row in enumerate(rows):
            table.append([section if n == 0 else "", *row.cells()])
    return _render(title, table, 2, spaced=True)


def nearest_rank(values: list[float], q: float) -> float:
    """The `q` quantile of `values` by the nearest-rank method (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
