"""Dataset panel: what is loaded (counts, image shape, classes, what loading did), a grid of sample images, the
image size and colour to load with, and while loading a progress bar with Cancel."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from engine.data import RESOLUTIONS, LoadProgress
from engine.data.dataset import as_float01
from gui.imaging import mosaic
from gui.state import StudioState
from gui.image_view import ImageView

PREVIEW = 32  # sample images in the preview grid
PREVIEW_COLS = 8


COLOURS = (("Auto colour", None), ("Grey", 1), ("RGB", 3))


class _ProgressRelay(QObject):
    """Carries a loader's progress from its thread to the GUI thread (a queued signal)."""

    progressed = Signal(int, int, str)


class DatasetPanel(QGroupBox):
    load_options_changed = Signal()  # the image size or colour choice changed (the window reloads)

    def __init__(self, state: StudioState, parent=None):
        super().__init__("Dataset", parent)
        self.setObjectName("datasetPanel")
        self.dataset = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 12, 8, 8)
        lay.setSpacing(6)
        self.title = QLabel("No dataset loaded")
        self.title.setObjectName("datasetTitle")
        self.title.setStyleSheet("font-weight: 600; font-size: 11pt;")
        self.title.setWordWrap(True)
        self.summary = QLabel("File → Open dataset… (Ctrl+O) loads IDX, NPZ, CSV or a folder of images.")
        self.summary.setObjectName("datasetSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setProperty("role", "caption")
        self.busy = QProgressBar()
        self.busy.setObjectName("datasetBusy")
        self.busy.setAccessibleName("Loading dataset")
        self.busy.setRange(0, 0)  # indeterminate until a loader reports counts
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("datasetCancel")
        self.cancel_button.setToolTip("Stop loading; the dataset you had stays loaded")
        self.cancel_button.clicked.connect(self.cancel_load)
        self.busy_row = QHBoxLayout()
        self.busy_row.addWidget(self.busy, 1)
        self.busy_row.addWidget(self.cancel_button)
        self.busy.hide()
        self.cancel_button.hide()
        self._relay = _ProgressRelay(self)
        self._relay.progressed.connect(self._on_progress)
        self._cancel: threading.Event | None = None
        self.resolution_box = QComboBox()
        self.resolution_box.setObjectName("datasetResolution")
        self.resolution_box.setAccessibleName("Image size")
        self.resolution_box.setToolTip(
            "Size the images are brought to (scale the shorter side, crop the centre). "
            "Auto: a folder's most common size up to 64 px, else 64; files keep theirs"
        )
        self.resolution_box.addItem("Auto size", None)
        for r in RESOLUTIONS:
            self.resolution_box.addItem(f"{r}×{r}", r)
        self.colour_box = QComboBox()
        self.colour_box.setObjectName("datasetColour")
        self.colour_box.setAccessibleName("Colour")
        self.colour_box.setToolTip("Grey or RGB images; Auto: grey when every image is grey")
        for text, c in COLOURS:
            self.colour_box.addItem(text, c)
        options = QHBoxLayout()
        options.addWidget(self.resolution_box)
        options.addWidget(self.colour_box)
        for box in (self.resolution_box, self.colour_box):
            box.currentIndexChanged.connect(lambda _i: self.load_options_changed.emit())
        self.preview = ImageView("", name="datasetPreview", min_side=60)
        self.preview.setToolTip("A few training images, as the model sees them")
        self.preview.setFixedHeight(140)
        lay.addWidget(self.title)
        lay.addLayout(self.busy_row)
        lay.addLayout(options)
        lay.addWidget(self.summary)
        lay.addWidget(self.preview)
        state.dataset_changed.connect(self.set_dataset)

    def resolution(self) -> int | None:
        return self.resolution_box.currentData()

    def channels(self) -> int | None:
        return self.colour_box.currentData()

    def set_load_options(self, resolution: int | None, channels: int | None) -> None:
        """Show these choices without emitting load_options_changed (restoring settings)."""
        for box, value in ((self.resolution_box, resolution), (self.colour_box, channels)):
            i = box.findData(value)
            box.blockSignals(True)
            box.setCurrentIndex(max(i, 0))
            box.blockSignals(False)

    def start_load(self) -> LoadProgress:
        """A LoadProgress for the next load: its progress drives the bar, Cancel sets its cancel event."""
        self._cancel = threading.Event()
        self.busy.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        relay = self._relay
        return LoadProgress(lambda done, total, text: relay.progressed.emit(done, total, text), self._cancel)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        if self._cancel is None:
            return  # a late report from a load that has ended
        self.busy.setRange(0, max(total, 1))
        self.busy.setValue(done)
        self.busy.setToolTip(f"{text}: {done:,} / {total:,}")
        self.title.setText(f"{text}… {done:,} / {total:,}")

    def cancel_load(self) -> None:
        """Ask the running load to stop (it raises LoadCancelled; the window keeps its dataset)."""
        if self._cancel is not None:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.title.setText("Cancelling…")

    def set_busy(self, text: str | None) -> None:
        """Show the bar (with Cancel) and ``text`` while loading; ``None`` hides them."""
        self.busy.setVisible(text is not None)
        self.cancel_button.setVisible(text is not None)
        self.resolution_box.setEnabled(text is None)
        self.colour_box.setEnabled(text is None)
        if text is not None:
            self.title.setText(text)
        else:
            self._cancel = None
            if self.dataset is not None:
                self.title.setText(self.dataset.name)

    def set_dataset(self, ds) -> None:
        self.dataset = ds
        self.busy.hide()
        self.title.setText(ds.name)
        self.title.setToolTip(ds.source)
        c, h, w = ds.image_shape
        lines = [
            f"<b>{len(ds.x_train):,}</b> train · <b>{len(ds.x_test):,}</b> test images",
            f"image shape {c}×{h}×{w} ({'grey' if c == 1 else 'colour'})",
        ]
        if ds.note:
            lines.append(ds.note)
        if ds.y_train is not None:
            names = ds.class_names or tuple(str(i) for i in range(ds.n_classes))
            shown = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
            lines.append(f"{ds.n_classes} classes: {shown}")
        else:
            lines.append("unlabelled")
        self.summary.setText("<br>".join(lines))
        n = min(PREVIEW, len(ds.x_train))
        idx = np.linspace(0, len(ds.x_train) - 1, n).astype(int) if n else np.zeros(0, int)
        self.preview.set_image(mosaic(as_float01(ds.x_train[idx]), PREVIEW_COLS, pad=1) if n else None)
