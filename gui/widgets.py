"""Small widget factories shared by the panels: a widget with its object name (tests and styles find it by
name) and its tooltip set in one call."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton


def button(text: str, name: str, tip: str) -> QPushButton:
    b = QPushButton(text)
    b.setObjectName(name)
    b.setToolTip(tip)
    return b
