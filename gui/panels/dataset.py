"""Dataset panel: what is loaded (counts, image shape, classes), a grid of sample images, a busy indicator."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QProgressBar, QVBoxLayout

from gui.imaging import mosaic
from gui.image_view import ImageView

PREVIEW = 32  # sample images in the preview grid
PREVIEW_COLS = 8


class DatasetPanel(QGroupBox):
    def __init__(self, state=None, parent=None):
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
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.busy.hide()
        self.preview = ImageView("", name="datasetPreview", min_side=60)
        self.preview.setToolTip("A few training images, as the model sees them")
        self.preview.setFixedHeight(140)
        lay.addWidget(self.title)
        lay.addWidget(self.busy)
        lay.addWidget(self.summary)
        lay.addWidget(self.preview)
        if state is not None:  # a gui.state.SessionState
            state.dataset_changed.connect(self.set_dataset)

    def set_busy(self, text: str | None) -> None:
        """Show the indeterminate bar and ``text`` while loading; ``None`` hides it."""
        self.busy.setVisible(text is not None)
        if text is not None:
            self.title.setText(text)
        elif self.dataset is not None:
            self.title.setText(self.dataset.name)

    def set_dataset(self, ds) -> None:
        self.dataset = ds
        self.busy.hide()
        self.title.setText(ds.name)
        self.title.setToolTip(ds.source)
        c, h, w = ds.image_shape
        lines = [f"<b>{len(ds.x_train):,}</b> train · <b>{len(ds.x_test):,}</b> test images",
                 f"image shape {c}×{h}×{w} ({'grey' if c == 1 else 'colour'})"]
        if ds.y_train is not None:
            names = ds.class_names or tuple(str(i) for i in range(ds.n_classes))
            shown = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
            lines.append(f"{ds.n_classes} classes: {shown}")
        else:
            lines.append("unlabelled")
        self.summary.setText("<br>".join(lines))
        n = min(PREVIEW, len(ds.x_train))
        idx = np.linspace(0, len(ds.x_train) - 1, n).astype(int) if n else np.zeros(0, int)
        self.preview.set_image(mosaic(ds.x_train[idx], PREVIEW_COLS, pad=1) if n else None)
