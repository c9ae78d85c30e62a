"""A tab page whose content is built the first time it is shown or asked for.

The VI explorer (with its gradient lab) and the 2-D Lab hold about twenty plots between them, and building them
was about 60% of the time to build the window. Neither depends on the run on show, so each is built when its tab
is first opened (or when code asks for it: ``content()``), not at start-up."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyPage(QWidget):
    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None):
        super().__init__(parent)
        self._factory = factory
        self._content: QWidget | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)

    @property
    def is_built(self) -> bool:
        return self._content is not None

    def content(self) -> QWidget:
        """The page's widget, built now if it was not yet."""
        if self._content is None:
            self._content = self._factory()
            self.layout().addWidget(self._content)
        return self._content

    def showEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.content()
        super().showEvent(event)
