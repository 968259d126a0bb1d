"""CSV files that open safely in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice Calc and Google Sheets, and a formula can run commands
(DDE) or send the sheet's other cells to a URL (``=HYPERLINK``). Text from outside
(customer names, reasons, actor labels, webhook ids) can start with any of them.

OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection):
prefix such a cell with a single quote, wrap every cell in double quotes and escape the
double quotes inside; ``csv.QUOTE_ALL`` does the last two. defusedcsv (PyPI) was
considered: it omits tab and carriage return, rewrites ``|`` to ``\\|`` inside a cell, and
its writer's ``writerow`` returns None, which a streamed export (``csv.writer`` as a line
formatter) needs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_neutralised(cell: Any) -> Any:
    """``cell`` with a ``'`` in front when it is text that a spreadsheet would read as a
    formula; anything else unchanged.

    Only text is changed: a number the app computed (an ``int`` or ``Decimal``, a negative
    amount included) is written as the number it is and stays summable. The same
    characters as text (``"-12.50"`` typed into a name or a reason) come from outside, and
    get the quote, as OWASP advises for every such cell.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


class _Echo:
    """A file-like object whose write returns the line: csv.writer as a line formatter."""

    def write(self, value: str) -> str:
        return value


def export_lines(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    """A CSV export line by line (for a StreamingHttpResponse), header first, every cell
    quoted and neutralised."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([formula_neutralised(cell) for cell in row])
