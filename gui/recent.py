"""File → Recent datasets: the last few dataset paths opened, remembered in QSettings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

MAX_RECENT = 8
KEY = "recent/datasets"


class RecentDatasets:
    """Fills ``menu`` with the remembered paths; choosing one calls ``open_path(path)``."""

    def __init__(self, menu: QMenu, settings: QSettings, open_path: Callable[[str], None], clear_action: QAction):
        self.menu, self.settings, self.open_path, self.clear_action = menu, settings, open_path, clear_action
        clear_action.triggered.connect(self.clear)
        self.rebuild()

    def paths(self) -> list[str]:
        v = self.settings.value(KEY, [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(p) for p in (v or [])]

    def add(self, path: str) -> None:
        items = [path] + [p for p in self.paths() if p != path]
        self.settings.setValue(KEY, items[:MAX_RECENT])
        self.rebuild()

    def clear(self) -> None:
        self.settings.setValue(KEY, [])
        self.rebuild()

    def rebuild(self) -> None:
        m = self.menu
        m.clear()
        items = self.paths()
        for i, p in enumerate(items):
            a = m.addAction(f"&{i + 1}  {Path(p).name or p}")
            a.setObjectName(f"actionRecent{i}")
            a.setToolTip(p)
            a.setStatusTip(p)
            a.setData(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_path(p))
        if not items:
            a = m.addAction("(none yet)")
            a.setObjectName("actionRecentNone")
            a.setEnabled(False)
        m.addSeparator()
        m.addAction(self.clear_action)
        self.clear_action.setEnabled(bool(items))
