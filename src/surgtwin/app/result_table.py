"""Tables of training results, one row per item, with the pass/fail cells coloured: the
training panel's implant and resection tables and the progress dialogs' attempt tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

__all__ = ["FAIL_COLOUR", "PASS_COLOUR", "fill_result_table"]

PASS_COLOUR = QColor(76, 217, 100)
FAIL_COLOUR = QColor(255, 90, 79)


def fill_result_table(
    table: QTableWidget,
    columns: Sequence[str],
    rows: Sequence[tuple[Sequence[str], bool | None]],
    stretch: int,
    coloured: Callable[[int, str], bool],
) -> None:
    """Replace the table's contents with ``rows``.

    Parameters
    ----------
    table : QTableWidget
    columns : sequence of str
        Column titles.
    rows : sequence of (cells, passed)
        The texts of a row and whether its item passed (None: not scored, no colour).
    stretch : int
        The column that takes the spare width; the others fit their contents.
    coloured : callable
        ``coloured(column, text)``: whether a cell of a scored row shows pass/fail colour.
    """
    table.clear()
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setRowCount(len(rows))
    table.verticalHeader().setVisible(False)
    for r, (cells, passed) in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if passed is not None and coloured(c, text):
                item.setForeground(QBrush(PASS_COLOUR if passed else FAIL_COLOUR))
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
