"""Rows for a person or for a pipe: a rich table on a terminal, tab-separated otherwise.

On a terminal the table fits its width by wrapping cells (never cutting them short);
piped, every value is printed whole on one line, so `cut`, `sort` and `awk` work. Either
way each value is escaped first (`schemas.ids.escaped`): stored text may hold tabs,
newlines or terminal escape sequences.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from schemas.ids import escaped


def print_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    title: Callable[[int], str] | None = None,
    table_order: Callable[[Sequence[str]], Any] | None = None,
) -> int:
    """Print `rows` under `columns`; returns how many were printed.

    Piped, rows stream as they come. The table holds them all anyway, so it can show
    them in `table_order` and with `title(count)` above.
    """
    if sys.stdout.isatty():
        held = list(rows)
        if table_order is not None:
            held.sort(key=table_order)
        return _print_table(columns, held, title(len(held)) if title else None)
    count = 0
    for row in rows:
        if not count:  # the header once there is something: a read failing first prints nothing
            print("\t".join(columns))
        print("\t".join(escaped(value) for value in row), flush=True)
        count += 1
    if not count:
        print("\t".join(columns), flush=True)
    return count


def _print_table(columns: Sequence[str], rows: list[Sequence[str]], title: str | None) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Rules under the header only: the width of a full grid's borders goes to the cells.
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(escaped(value)) for value in row))  # Text: no rich markup
    Console(highlight=False).print(table)
    return len(rows)
