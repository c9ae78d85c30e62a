"""Image grids from the session state's newest model snapshot (gui/state.py): the latent manifold over the latent
plot's visible window, test images beside their reconstructions, and samples from the prior. Only the visible tab
is computed, and only when its inputs changed (a new snapshot, a new view window, a new dataset); another model
empties every grid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QTabWidget, QVBoxLayout, QWidget

from engine.data.dataset import as_float01
from engine.snapshot import SnapshotModel, prior_samples
from gui.imaging import mosaic
from gui.image_view import ImageView

N_RECON = 16  # test images shown with their reconstructions (two rows of 8, each above its reconstruction)
PRIOR_GRID = 8  # 8×8 prior samples
KINDS = ("manifold", "recon", "prior")
NO_MODEL_HINT = "Appears with the first model snapshot (press Start or load a checkpoint)."
TRAINING_HINT = "Appears with the first trained weights, a second or two after the start."


def manifold_points(rect: tuple[float, float, float, float], n: int) -> np.ndarray:
    """Centres of an n×n grid over (x0, x1, y0, y1), row-major from the top row (largest y) down: (n², 2)."""
    x0, x1, y0, y1 = rect
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y1 - (np.arange(n) + 0.5) * (y1 - y0) / n
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1)


class _Tab(QWidget):
    def __init__(self, name: str, placeholder: str):
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(3)
        self.view = ImageView(placeholder, name=name, min_side=140)
        self.caption = QLabel("")
        self.caption.setObjectName(name + "Caption")
        self.caption.setWordWrap(True)
        self.caption.setProperty("role", "hint")
        lay.addWidget(self.view, 1)
        lay.addWidget(self.caption)


class GalleryPanel(QGroupBox):
    example_clicked = Signal(int)  # a test image (or its reconstruction) clicked: its index in the test split

    def __init__(self, state, parent=None):
        super().__init__("Decoded images", parent)
        self.setObjectName("galleryPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 12, 6, 6)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("galleryTabs")
        self.tabs.setDocumentMode(True)
        # all three tabs readable at the window's smallest size (1024 px wide): narrower tabs, no scroll arrows
        self.tabs.setUsesScrollButtons(False)
        # the chosen tab stands out: bold, with a coloured bar under it
        self.tabs.setStyleSheet(
            "QTabBar::tab { padding: 4px 4px; color: #57606a; border-bottom: 2px solid transparent; }"
            "QTabBar::tab:selected { color: #1f2328; font-weight: 600; border-bottom: 2px solid #0969da; }"
        )
        self.pages = {
            "manifold": _Tab("manifoldImage", NO_MODEL_HINT),
            "recon": _Tab("reconImage", NO_MODEL_HINT),
            "prior": _Tab("priorImage", NO_MODEL_HINT),
        }
        self.tabs.addTab(self.pages["manifold"], "Manifold")
        self.tabs.addTab(self.pages["recon"], "Recon")
        self.tabs.addTab(self.pages["prior"], "Prior")
        self.tabs.setTabToolTip(
            0, "Decoded images on a grid over the latent plot's visible window: zoom the plot to zoom the manifold"
        )
        self.tabs.setTabToolTip(1, "Test images (rows 1, 3) above their reconstructions E[x | z = μ(x)] (rows 2, 4)")
        self.tabs.setTabToolTip(2, "E[x | z] for z drawn from the prior N(0, I), the same draws at every refresh")
        self.tabs.currentChanged.connect(lambda _i: self.refresh())
        lay.addWidget(self.tabs)
        self.state = state
        self.view_rect: tuple[float, float, float, float] | None = None
        self.to_latent: Callable[[np.ndarray], np.ndarray] | None = None  # (n, 2) plot points -> (n, d)
        self.axis_names = ("z₁", "z₂")
        self.dirty = {k: True for k in KINDS}
        self.images: dict[str, np.ndarray | None] = {k: None for k in KINDS}
        self.recon_layout: tuple[np.ndarray, int, int, int] | None = None  # (test indices, half, tile h, tile w)
        self.pages["recon"].view.clicked.connect(self._on_recon_clicked)
        state.snapshot_changed.connect(lambda _s: self._mark_dirty(*KINDS))
        state.dataset_changed.connect(lambda _d: self._clear_pages("recon"))
        state.model_changed.connect(lambda: self._clear_pages(*KINDS))
        state.label_changed.connect(lambda _c: self._mark_dirty("manifold", "prior"))  # a conditional model's class
        for signal in (state.status_changed, state.snapshot_changed, state.model_changed):
            signal.connect(lambda *_: self._update_placeholders())

    @property
    def model(self) -> SnapshotModel | None:
        return self.state.model()

    @property
    def dataset(self):
        return self.state.dataset

    def _untrained(self) -> bool:
        """A new model's first weights (step 0: grey noise) while it starts to train: not worth a picture."""
        snap = self.state.snapshot
        return snap is not None and snap.step == 0 and self.state.status in ("starting", "running")

    def _update_placeholders(self) -> None:
        """What an empty grid says follows the run status: never "press Start" while a model trains or is loaded."""
        if self.state.snapshot is not None and not self._untrained():
            hint = f"Drawing the model at step {self.state.snapshot.step:,}…"
        elif self.state.status in ("starting", "running") or self._untrained():
            hint = TRAINING_HINT
        else:
            hint = NO_MODEL_HINT
        for page in self.pages.values():
            page.view.set_placeholder(hint)

    def _mark_dirty(self, *kinds: str) -> None:
        for k in kinds:
            self.dirty[k] = True

    def _clear_pages(self, *kinds: str) -> None:
        for k in kinds:
            page = self.pages[k]
            page.view.set_image(None)
            page.caption.setText("")
            self.images[k] = None
            self.dirty[k] = True
        if "recon" in kinds:
            self.recon_layout = None

    def current_kind(self) -> str:
        """'manifold', 'recon' or 'prior'."""
        return KINDS[max(0, self.tabs.currentIndex())]

    def current_image(self) -> np.ndarray | None:
        return self.images.get(self.current_kind())

    def set_view(self, rect, to_latent, axis_names=("z₁", "z₂")) -> None:
        self.view_rect, self.to_latent, self.axis_names = rect, to_latent, axis_names
        self.dirty["manifold"] = True

    # -- drawing -------------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Compute and show the visible grid if its inputs changed. True when it drew."""
        kind = self.current_kind()
        if not self.dirty[kind] or self.model is None or self._untrained():
            return False
        self.dirty[kind] = False
        img, caption = getattr(self, f"_make_{kind}")()
        page = self.pages[kind]
        self.images[kind] = img
        page.view.set_image(img)
        page.caption.setText(caption)
        return True

    def _on_recon_clicked(self, col: int, row: int) -> None:
        if self.recon_layout is None:
            return
        idx, half, th, tw = self.recon_layout
        tile_row, tile_col = row // th, col // tw
        k = (tile_row // 2) * half + tile_col  # rows 0-1 show the first half, rows 2-3 the second
        if tile_col < half and 0 <= k < len(idx):
            self.example_clicked.emit(int(idx[k]))

    def grid_size(self) -> int:
        if self.model is None:
            return 15
        _, h, w = self.model.config.image_shape
        return 15 if max(h, w) <= 32 else 10 if max(h, w) <= 64 else 6

    def _for_class(self) -> str:
        label = self.state.generation_label()
        return "" if label is None else f" · class {self.state.class_name(label)}"

    def _make_manifold(self):
        if self.view_rect is None or self.to_latent is None:
            return None, "Waiting for the latent plot."
        n = self.grid_size()
        pts = manifold_points(self.view_rect, n)
        z = self.to_latent(pts)
        imgs = self.model.decode(z, self.state.generation_label())
        x0, x1, y0, y1 = self.view_rect
        a, b = self.axis_names
        cap = (
            f"{n}×{n} over the latent plot's view: {a} ∈ [{x0:.2f}, {x1:.2f}], {b} ∈ [{y0:.2f}, {y1:.2f}]"
            f"{self._for_class()} · step {self.model.step:,}"
        )
        return mosaic(imgs, n, pad=0), cap

    def _make_recon(self):
        ds = self.dataset
        if ds is None:
            return None, "No dataset loaded."
        if (why := self.state.misfit(self.model.config)) is not None:
            return None, why
        n = min(N_RECON, len(ds.x_test))
        idx = np.linspace(0, len(ds.x_test) - 1, n).astype(int)
        x = as_float01(ds.x_test[idx])
        r = self.model.reconstruct(x, ds.y_test[idx] if self.model.n_classes else None)  # with their own labels
        half = (n + 1) // 2
        rows = [x[:half], r[:half], x[half:], r[half:]]
        tiles = np.concatenate(
            [np.concatenate([row, np.ones((half - len(row),) + row.shape[1:], np.float32)]) for row in rows if len(row)]
            if half
            else [x]
        )
        self.recon_layout = (idx, half, x.shape[2] + 1, x.shape[3] + 1)
        cap = f"Rows 1, 3: test images · rows 2, 4: E[x | z = μ(x)] · step {self.model.step:,} · click one"
        return mosaic(tiles, half, pad=1), cap

    def _make_prior(self):
        imgs = prior_samples(self.model, PRIOR_GRID * PRIOR_GRID, seed=0, y=self.state.generation_label())
        cap = (
            f"E[x | z], {PRIOR_GRID * PRIOR_GRID} fixed draws z ~ N(0, I){self._for_class()} · step {self.model.step:,}"
        )
        return mosaic(imgs, PRIOR_GRID, pad=1), cap
