"""The "Inside the model" page: a latent traversal around the picked point, an interpolation between two points
(Shift+click them on the latent plot), and an image file of the user's encoded (File → Encode image…, or drop it
on the window; read and encoded on a worker by gui/inside_actions.py). Everything is decoded from the state's cached
CPU model of the newest weights (engine/inspect). The page owns the path's ends (cleared when the model changes);
the encoded image is the state's (``StudioState.encoded``), shown here and encoded again with newer weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.inspect.frames import grid_image, write_gif, write_png
from engine.inspect.interpolation import METHODS, interpolate, interpolation
from engine.inspect.traversal import Traversal, traversal
from engine.inspect.user_image import encode_array
from engine.messages import RunStatus
from engine.data.dataset import as_float01
from gui.image_view import ImageView
from gui.widgets import button

NO_MODEL = "Train or load a model to look inside it."
GREY = 0.75  # inactive rows are drawn faded towards this grey
FADE = 0.6  # how far


def _caption(text: str, name: str, role: str = "caption") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setProperty("role", role)
    label.setWordWrap(True)
    return label


def _spin(name: str, lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    s = QSpinBox()
    s.setObjectName(name)
    s.setRange(lo, hi)
    s.setValue(value)
    s.setToolTip(tip)
    return s


class InsidePanel(QWidget):
    path_changed = Signal(object)  # (n, d) latent points of the interpolation path (the ends so far), or None
    export_asked = Signal(str, str)  # (what: "traversal" | "interpolation", format: "png" | "gif")

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.setObjectName("insidePanel")
        self.state = state
        self.ends: list[np.ndarray] = []  # the interpolation's ends picked so far (0, 1 or 2), latent points (d,)
        self.path: tuple[np.ndarray, np.ndarray] | None = None  # (codes (n, d), images (n, C, H, W))
        self.result: Traversal | None = None
        self._dirty = True
        self._epochs_seen = -1

        trav = QGroupBox("Latent traversal")
        trav.setObjectName("traversalBox")
        tl = QVBoxLayout(trav)
        row = QHBoxLayout()
        self.steps = _spin("traversalSteps", 3, 15, 7, "Images per row: z_i from −3 to +3 prior standard deviations")
        self.rows = _spin("traversalRows", 1, 32, 10, "Rows: the latent dimensions of largest KL")
        self.trav_png = button("PNG…", "traversalPng", "Save the grid as a PNG")
        self.trav_gif = button("GIF…", "traversalGif", "Save the traversal as an animated GIF (one frame a column)")
        for w in (QLabel("Steps"), self.steps, QLabel("Rows"), self.rows):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.trav_png)
        row.addWidget(self.trav_gif)
        tl.addLayout(row)
        self.trav_view = ImageView(NO_MODEL, name="traversalImage", min_side=120)
        self.trav_view.setToolTip(
            "Row i varies z_i around the picked point (the origin until you pick one), the other coordinates fixed; "
            "rows by KL, largest first; faded rows are inactive units (the decoder ignores them)"
        )
        tl.addWidget(self.trav_view, 1)
        self.trav_caption = _caption("", "traversalCaption")
        tl.addWidget(self.trav_caption)

        interp = QGroupBox("Interpolation")
        interp.setObjectName("interpolationBox")
        il = QVBoxLayout(interp)
        row = QHBoxLayout()
        self.method = QComboBox()
        self.method.setObjectName("interpolationMethod")
        self.method.addItems(METHODS)
        self.method.setToolTip(
            "linear: the straight line; spherical: along the great circle (stays near the prior's shell)"
        )
        self.interp_steps = _spin("interpolationSteps", 2, 25, 9, "Images along the path, both ends included")
        self.interp_png = button("PNG…", "interpolationPng", "Save the path's images as a PNG strip")
        self.interp_gif = button("GIF…", "interpolationGif", "Save the path as an animated GIF")
        self.interp_clear = button("Clear", "interpolationClear", "Forget both ends")
        for w in (self.method, self.interp_steps, self.interp_png, self.interp_gif, self.interp_clear):
            row.addWidget(w)
        il.addLayout(row)
        self.interp_view = ImageView(
            "Shift+click two points on the latent plot.", name="interpolationImage", min_side=48
        )
        il.addWidget(self.interp_view, 1)
        self.interp_caption = _caption("", "interpolationCaption")
        il.addWidget(self.interp_caption)

        mine = QGroupBox("Your image")
        mine.setObjectName("encodedBox")
        ml = QGridLayout(mine)
        self.encoded_input = ImageView("File → Encode image…\nor drop an image here", name="encodedInput", min_side=64)
        self.encoded_input.setToolTip("The image as the model takes it (the dataset's size and colour rules)")
        self.encoded_recon = ImageView("", name="encodedReconstruction", min_side=64)
        self.encoded_recon.setToolTip("E[x | z = μ(x)]: its reconstruction")
        ml.addWidget(self.encoded_input, 0, 0)
        ml.addWidget(self.encoded_recon, 0, 1)
        self.encoded_caption = _caption("", "encodedCaption")
        self.encode_message = _caption("", "encodeMessage", role="warning")
        self.encode_message.hide()
        ml.addWidget(self.encoded_caption, 1, 0, 1, 2)
        ml.addWidget(self.encode_message, 2, 0, 1, 2)

        lay = QHBoxLayout(self)
        lay.addWidget(trav, 3)
        right = QVBoxLayout()
        right.addWidget(interp, 1)
        right.addWidget(mine, 1)
        lay.addLayout(right, 2)

        self.steps.valueChanged.connect(lambda _v: self.refresh())
        self.rows.valueChanged.connect(lambda _v: self.refresh())
        self.method.currentIndexChanged.connect(lambda _i: self.refresh())
        self.interp_steps.valueChanged.connect(lambda _v: self.refresh())
        self.interp_clear.clicked.connect(self.clear_path)
        self.trav_png.clicked.connect(lambda: self.export_asked.emit("traversal", "png"))
        self.trav_gif.clicked.connect(lambda: self.export_asked.emit("traversal", "gif"))
        self.interp_png.clicked.connect(lambda: self.export_asked.emit("interpolation", "png"))
        self.interp_gif.clicked.connect(lambda: self.export_asked.emit("interpolation", "gif"))
        state.model_changed.connect(self._on_model_changed)
        state.snapshot_changed.connect(lambda _s: self._redecode())
        state.picked_changed.connect(lambda _z: self.refresh())
        state.label_changed.connect(lambda _c: self.refresh())
        state.history_grew.connect(self._on_history_grew)
        state.history_reset.connect(self.refresh)
        state.encoded_changed.connect(self._on_encoded_changed)
        state.encoded_updated.connect(self._show_encoded)
        self._update_buttons()

    # -- what the page owns -----------------------------------------------------------------------------------
    def add_end(self, z: np.ndarray) -> None:
        """A Shift+click on the latent plot: the first end, the second end, then a new first end."""
        if self.state.latent_dim is None or len(np.ravel(z)) != self.state.latent_dim:
            return
        self.ends = [np.asarray(z, np.float32).ravel()] if len(self.ends) >= 2 else [*self.ends, np.ravel(z)]
        self.refresh()

    def clear_path(self) -> None:
        self.ends, self.path = [], None
        self.refresh()

    def show_refusal(self, line: str) -> None:
        """A file the model cannot take: one line here; the image shown (the state's) stays."""
        self.encode_message.setText(line)
        self.encode_message.show()

    # -- redrawing --------------------------------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        self.ends, self.path, self.result = [], None, None
        self.encode_message.hide()
        self.refresh()

    def _on_history_grew(self) -> None:
        if len(self.state.history.epochs) != self._epochs_seen:  # a new epoch: new KL per dimension
            self._redecode()

    def _redecode(self) -> None:
        """Newer weights or a new epoch: decode again now if the page is on show and the run at rest; while a run
        trains, a redraw pass does it (``redraw``, within the window's draw budget); a hidden page waits until it
        is shown. The path on the latent plot does not depend on them, so nothing is sent to it."""
        if self.isVisible() and self.state.status is not RunStatus.RUNNING:
            self.refresh()
        else:
            self._dirty = True

    def redraw(self) -> bool:
        """A redraw pass (gui/draw_budget.py): decode with the newest weights if the page is on show and shows
        older ones. True when it drew."""
        if not (self._dirty and self.isVisible()):
            return False
        self.refresh()
        return True

    def showEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        if self._dirty:
            self.refresh()

    def refresh(self) -> None:
        """Decode again with the newest weights (at once when the page is shown, else when it next is)."""
        self._dirty = True
        if not self.isVisible():
            self._update_path_signal()
            return
        self._dirty = False
        model = self.state.model()
        self._draw_traversal(model)
        self._draw_path(model)
        if (e := self.state.encoded) is not None and model is not None:
            self.state.update_encoded(encode_array(model, e.x, e.path, self.state.generation_label()))
        self._update_buttons()

    def _update_path_signal(self) -> None:
        """The path's codes for the latent plot (no decoding: drawn whether or not this page is shown)."""
        if len(self.ends) == 2:
            self.path_changed.emit(interpolate(*self.ends, self.interp_steps.value(), self.method.currentText()))
        else:
            self.path_changed.emit(np.stack(self.ends) if self.ends else None)

    def _draw_traversal(self, model) -> None:
        epochs = self.state.history.epochs
        self._epochs_seen = len(epochs)
        if model is None:
            self.result = None
            self.trav_view.set_image(None)
            self.trav_caption.setText("")
            return
        d = model.latent_dim
        last = epochs[-1] if epochs and len(epochs[-1].kl_per_dim) == d else None
        kl = last.kl_per_dim if last is not None else np.zeros(d)
        au = last.au_variance if last is not None else np.full(d, np.inf)  # before the first epoch: none marked
        centre = self.state.picked if self.state.picked is not None else np.zeros(d, np.float32)
        t = traversal(
            model, centre, kl, au, self.steps.value(), rows=self.rows.value(), label=self.state.generation_label()
        )
        self.result = t
        shown = t.images.copy()
        shown[t.inactive] = shown[t.inactive] * (1 - FADE) + GREY * FADE
        self.trav_view.set_image(grid_image(shown))
        rows = ", ".join(
            f"z{i + 1} {k:.2f}" + (" (inactive)" if off else "") for i, k, off in zip(t.dims, t.kl, t.inactive)
        )
        where = "the picked point" if self.state.picked is not None else "the origin (pick a point to move it)"
        cls = f" · class {self.state.class_name(t.label)}" if t.label is not None else ""
        order = f"rows by KL (nats): {rows}" if last is not None else "rows by dimension until the first epoch's KL"
        self.trav_caption.setText(f"Around {where}{cls} · {order}")

    def _draw_path(self, model) -> None:
        self._update_path_signal()
        if model is None or len(self.ends) < 2:
            self.path = None
            self.interp_view.set_image(None)
            self.interp_caption.setText(
                "Shift+click a second point." if len(self.ends) == 1 else "Shift+click two points on the latent plot."
            )
            return
        method = self.method.currentText()
        z, images = interpolation(model, *self.ends, self.interp_steps.value(), method, self.state.generation_label())
        self.path = (z, images)
        self.interp_view.set_image(grid_image(images[None]))
        a, b = (", ".join(f"{v:+.2f}" for v in e[:4]) for e in self.ends)
        self.interp_caption.setText(f"{method}: ({a}) → ({b}), {len(z)} steps")

    def _on_encoded_changed(self, e) -> None:
        self.encode_message.hide()  # a refusal line belongs to the image before
        self._show_encoded(e)

    def _show_encoded(self, e) -> None:
        """The state's encoded image (None: gone, with the model or the dataset it was read for)."""
        if e is None:
            self.encoded_input.set_image(None)
            self.encoded_recon.set_image(None)
            self.encoded_caption.setText("")
            return
        self.encoded_input.set_image(as_float01(e.x[0]))
        self.encoded_recon.set_image(e.reconstruction)
        sd = np.exp(0.5 * e.log_var)
        mu = ", ".join(f"{v:+.2f}" for v in e.mu[:4]) + (", …" if len(e.mu) > 4 else "")
        sds = ", ".join(f"{v:.2f}" for v in sd[:4]) + (", …" if len(sd) > 4 else "")
        self.encoded_caption.setText(
            f"{Path(e.path).name} (left, as the model takes it) → reconstruction (right) · q(z|x): mean ({mu}), s.d. ({sds})"
        )

    def _update_buttons(self) -> None:
        for b in (self.trav_png, self.trav_gif):
            b.setEnabled(self.result is not None)
        for b in (self.interp_png, self.interp_gif):
            b.setEnabled(self.path is not None)

    # -- exports ----------------------------------------------------------------------------------------------
    def export(self, what: str, fmt: str, path: str) -> None:
        """Write the traversal or the interpolation as a PNG grid or an animated GIF (raises WriteError)."""
        if what == "traversal":
            images = self.result.images  # (rows, steps, C, H, W)
            frames = np.moveaxis(images, 1, 0)[:, :, None]  # a frame per step: the rows as a column
        else:
            images = self.path[1][None]  # (1, steps, C, H, W)
            frames = self.path[1]
        scale = max(1, 64 // images.shape[-1])
        if fmt == "gif":
            write_gif(path, frames, scale=scale)
        else:
            write_png(path, images, scale=scale)
