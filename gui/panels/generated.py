"""The "Generated" panel: the decoder's mean image E[x|z] at the latent point the user picked, and its coordinates.

For a conditional VAE it also holds the class selector (the class every generated image, the manifold, the prior
samples and the highlighted scatter follow; the session state owns the choice) and the row "same z, every class":
E[x | z, y] for the picked z and each class y, showing that z carries the style and y the class."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QGroupBox, QLabel, QVBoxLayout, QWidget

from gui.image_view import ImageView
from gui.imaging import mosaic
from gui.state import StudioState

HINT = "Click or drag in the latent plot to decode a point."
ROW_COLUMNS = 5  # "same z, every class" tiles per row (10 classes: two rows of 5)
ROW_CLASSES = 20  # at most this many classes in that row: the block of 20 that holds the chosen class


def _fmt_vec(z: np.ndarray, limit: int = 6) -> str:
    parts = [f"{v:+.2f}" for v in np.asarray(z).ravel()[:limit]]
    more = "" if len(np.asarray(z).ravel()) <= limit else f", … ({len(np.asarray(z).ravel())} dims)"
    return "(" + ", ".join(parts) + more + ")"


class GeneratedPanel(QGroupBox):
    def __init__(self, state: StudioState, parent=None):
        super().__init__("Generated", parent)
        self.setObjectName("generatedPanel")
        self.state = state
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 12, 6, 6)
        lay.setSpacing(4)

        self.class_row = QWidget()
        self.class_row.setObjectName("classRow")
        row = QVBoxLayout(self.class_row)  # the label above the box: the whole width for a class name
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(1)
        self.class_combo = QComboBox()
        self.class_combo.setObjectName("classSelector")
        self.class_combo.setAccessibleName("Class")
        # long class names must not widen the panel (and the window) past its usual size: they are elided
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_combo.setMinimumContentsLength(3)
        tip = (
            "The class y the conditional decoder p(x|z, y) generates: the image below, the manifold, the prior "
            "samples and the highlighted points of the latent plot follow it (Alt+1 … Alt+9, Alt+0: the first ten classes)"
        )
        self.class_combo.setToolTip(tip)
        label = QLabel("&Class")
        label.setBuddy(self.class_combo)
        label.setToolTip(tip)
        row.addWidget(label)
        row.addWidget(self.class_combo)
        lay.addWidget(self.class_row)

        self.view = ImageView(HINT, name="generatedImage", min_side=96)
        self.view.setToolTip("E[x | z]: the decoder's mean image at the picked latent point")
        self.coords = QLabel("z = —")
        self.coords.setObjectName("generatedCoords")
        self.coords.setWordWrap(True)
        self.coords.setProperty("role", "caption")
        lay.addWidget(self.view, 2)
        lay.addWidget(self.coords)

        self.every_caption = QLabel("Same z, every class")
        self.every_caption.setObjectName("everyClassCaption")
        self.every_caption.setProperty("role", "hint")
        self.every_caption.setWordWrap(True)  # the panel stays narrow enough for a 1024-px window
        self.every_caption.setToolTip(
            "E[x | z, y] at the picked z for each class y: z keeps the style, y sets the class. Click one to choose "
            "its class."
        )
        self.every_view = ImageView("Pick a point to see it in every class.", name="everyClassImage", min_side=60)
        self.every_view.setToolTip(self.every_caption.toolTip())
        self.every_view.clicked.connect(self._on_every_clicked)
        # wrapped in a narrow panel: their minimum heights say so, or the layout (which sizes by one line) lays
        # them over the image (1024×700)
        line = self.coords.fontMetrics().lineSpacing()
        self.coords.setMinimumHeight(3 * line + 2)
        self.every_caption.setMinimumHeight(2 * line + 2)
        lay.addWidget(self.every_caption)
        lay.addWidget(self.every_view, 1)

        self._every_tile: tuple[int, int, int] | None = None  # (tile height + pad, tile width + pad, classes)
        self.class_combo.currentIndexChanged.connect(self._on_combo)
        state.model_changed.connect(self._on_model_changed)  # the image belongs to one model
        state.dataset_changed.connect(lambda _d: self._fill_classes())
        state.label_changed.connect(self._on_label_changed)
        self._fill_classes()
        for i in range(10):  # Alt+1 … Alt+9, Alt+0: classes 0 … 9
            key = QShortcut(QKeySequence(f"Alt+{(i + 1) % 10}"), self)
            key.activated.connect(lambda c=i: self.state.set_label(c))

    @property
    def image(self) -> np.ndarray | None:
        """The (C, H, W) array on show, exactly as the decoder returned it."""
        return self.view.array

    @property
    def every_class_image(self) -> np.ndarray | None:
        """The "same z, every class" mosaic on show (C, H', W'), or None."""
        return self.every_view.array

    # -- the class selector -----------------------------------------------------------------------------------
    def _fill_classes(self) -> None:
        """One entry per class of a conditional model (named from the dataset); hidden for other models."""
        k = self.state.n_classes
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for c in range(k):
            self.class_combo.addItem(f"{c}: {self.state.class_name(c)}", c)
        if k:
            self.class_combo.setCurrentIndex(min(self.state.label, k - 1))
        self.class_combo.blockSignals(False)
        for w in (self.class_row, self.every_caption, self.every_view):
            w.setVisible(bool(k))

    def _on_model_changed(self) -> None:
        self.clear(HINT)
        self._fill_classes()

    def _on_combo(self, index: int) -> None:
        if index >= 0:
            self.state.set_label(self.class_combo.itemData(index))

    def _on_label_changed(self, label: int) -> None:
        i = self.class_combo.findData(label)
        if i >= 0 and i != self.class_combo.currentIndex():
            self.class_combo.blockSignals(True)
            self.class_combo.setCurrentIndex(i)
            self.class_combo.blockSignals(False)

    def row_classes(self) -> range:
        """The classes the "same z, every class" row shows: all of them, or the block of ROW_CLASSES that holds
        the chosen class."""
        k = self.state.n_classes
        start = (self.state.label // ROW_CLASSES) * ROW_CLASSES if k > ROW_CLASSES else 0
        return range(start, min(k, start + ROW_CLASSES))

    def _on_every_clicked(self, col: int, row: int) -> None:
        if self._every_tile is None:
            return
        th, tw, first, n = self._every_tile
        c = (row // th) * ROW_COLUMNS + col // tw
        if col % tw < tw - 1 and row % th < th - 1 and 0 <= c < n:  # on a tile, not on the padding
            self.state.set_label(first + c)

    # -- showing ----------------------------------------------------------------------------------------------
    def show_image(
        self,
        image: np.ndarray,
        z: np.ndarray,
        plane_xy: tuple[float, float] | None,
        step: int,
        every_class: np.ndarray | None = None,
    ) -> None:
        """The decoded image at z (and, for a conditional model, z decoded for each class of ``row_classes()``,
        (n, C, H, W)); ``plane_xy``: where z lies in the latent plot."""
        self.view.set_image(image)
        text = f"z = {_fmt_vec(z)}"
        if plane_xy is not None and len(np.asarray(z).ravel()) > 2:
            text = f"PC = ({plane_xy[0]:+.2f}, {plane_xy[1]:+.2f}) → " + text
        if self.state.n_classes:
            text += f", y = {self.state.class_name(self.state.label)}"
        self.coords.setText(f"{text}<br><span style='color:#6a737d'>decoder at step {step:,}</span>")
        if every_class is None:
            self.every_view.set_image(None)
            self._every_tile = None
            return
        n, _, h, w = every_class.shape
        classes = self.row_classes()
        self.every_view.set_image(mosaic(every_class, ROW_COLUMNS, pad=1))
        self._every_tile = (h + 1, w + 1, classes.start, n)
        k = self.state.n_classes
        shown = "every class" if n == k else f"classes {classes.start}–{classes.stop - 1} of {k}"
        self.every_caption.setText(f"Same z, {shown}")

    def clear(self, hint: str | None = None) -> None:
        self.view.set_image(None)
        self.every_view.set_image(None)
        self._every_tile = None
        if hint:
            self.view.set_placeholder(hint)
        self.coords.setText("z = —")
