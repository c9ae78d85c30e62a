"""The "Generated" panel: the decoder's mean image E[x|z] at the latent point the user picked, and its coordinates."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from gui.image_view import ImageView


HINT = "Click or drag in the latent plot to decode a point."


def _fmt_vec(z: np.ndarray, limit: int = 6) -> str:
    parts = [f"{v:+.2f}" for v in np.asarray(z).ravel()[:limit]]
    more = "" if len(np.asarray(z).ravel()) <= limit else f", … ({len(np.asarray(z).ravel())} dims)"
    return "(" + ", ".join(parts) + more + ")"


class GeneratedPanel(QGroupBox):
    def __init__(self, state=None, parent=None):
        super().__init__("Generated", parent)
        self.setObjectName("generatedPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 12, 6, 6)
        lay.setSpacing(4)
        self.view = ImageView(HINT, name="generatedImage", min_side=120)
        self.view.setToolTip("E[x | z]: the decoder's mean image at the picked latent point")
        self.coords = QLabel("z = —")
        self.coords.setObjectName("generatedCoords")
        self.coords.setWordWrap(True)
        self.coords.setProperty("role", "caption")
        lay.addWidget(self.view, 1)
        lay.addWidget(self.coords)
        self.z: np.ndarray | None = None
        self.plane_xy: tuple[float, float] | None = None
        self.step: int | None = None
        if state is not None:  # a gui.state.SessionState: the image belongs to one model
            state.model_changed.connect(lambda: self.clear(HINT))

    @property
    def image(self) -> np.ndarray | None:
        """The (C, H, W) array on show, exactly as the decoder returned it."""
        return self.view.array

    def show_image(self, image: np.ndarray, z: np.ndarray, plane_xy: tuple[float, float] | None, step: int) -> None:
        self.view.set_image(image)
        self.z, self.plane_xy, self.step = np.asarray(z), plane_xy, step
        text = f"z = {_fmt_vec(z)}"
        if plane_xy is not None and len(np.asarray(z).ravel()) > 2:
            text = f"PC = ({plane_xy[0]:+.2f}, {plane_xy[1]:+.2f}) → " + text
        self.coords.setText(f"{text}<br><span style='color:#6a737d'>decoder at step {step:,}</span>")

    def clear(self, hint: str | None = None) -> None:
        self.view.set_image(None)
        if hint:
            self.view.set_placeholder(hint)
        self.z = self.plane_xy = self.step = None
        self.coords.setText("z = —")
