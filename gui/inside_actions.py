"""Wiring of the "Inside the model" and "Runs" pages to the rest of the window: Shift+clicks on the latent plot
(or on two test images of the Recon grid: their μ(x)) become the interpolation's ends, the path and the state's
encoded image's q(z|x) are drawn on the latent plot, File → Encode image… and an image file dropped on the window
are encoded off the GUI thread (gui/image_encoder.py), the page's PNG / GIF exports ask where to write; each model
that replaces another hands the old one's curves to the run list, and "Add checkpoint…" reads a checkpoint's curves
off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.checkpoint import CheckpointError
from engine.files import WriteError, display_name
from engine.runs import record_of_checkpoint
from gui.dialogs import Dialogs
from gui.image_encoder import ImageEncoder
from gui.workers import Worker

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif);;All files (*)"


class InsideActions:
    """Connects the Inside page ``page`` and the Runs page ``runs`` to ``state``, the ``latent`` plot, the Recon grid
    of ``gallery`` and ``settings_panel``; files are asked for and errors shown through ``dialogs``, what happened on
    ``status``; ``show_page(widget)`` brings a page to the front; ``parent`` owns the background jobs."""

    def __init__(
        self, state, page, runs, latent, gallery, settings_panel, status, dialogs: Dialogs, show_page, parent
    ):  # fmt: skip
        self.state, self.page, self.runs, self.status, self.dialogs = state, page, runs, status, dialogs
        self.show_page, self.parent = show_page, parent
        latent.path_end_clicked.connect(self._on_path_end)
        page.path_changed.connect(latent.show_path)
        for changed in (state.encoded_changed, state.encoded_updated):
            changed.connect(lambda e: latent.show_ellipse(None if e is None else (e.mu, e.log_var)))
        page.export_asked.connect(self.export_dialog)
        gallery.example_clicked.connect(self._on_example_clicked)
        state.model_changed.connect(lambda: runs.on_new_model(settings_panel.train_config()))
        runs.add_asked.connect(self.add_run_dialog)
        self.run_loader: Worker | None = None
        self.encoder = ImageEncoder(state, parent)
        self.encoder.refused.connect(page.show_refusal)
        self.encoder.encoded.connect(self._on_encoded)

    def add_run_dialog(self) -> None:
        path = self.dialogs.ask_open_path("Add a checkpoint's curves", "Checkpoints (*.ckpt *.pt);;All files (*)")
        if path:
            self.add_run(path)

    def add_run(self, path: str) -> None:
        """Read a checkpoint's settings and curves on a worker thread into the run list; a bad file gets one line."""
        if self.run_loader is not None:
            return

        def failed(e, _tb):
            self.runs.show_error(str(e) if isinstance(e, CheckpointError) else f"{display_name(path)}: {e}")

        def done():
            self.run_loader = None

        self.run_loader = Worker(
            lambda: record_of_checkpoint(path),
            on_result=self.runs.add_record,
            on_error=failed,
            parent=self.parent,
            name="runLoader",
        )
        self.run_loader.done.connect(done)

    def _on_path_end(self, z) -> None:
        self.page.add_end(z)
        if len(self.page.ends) == 2:
            self.status.message("Interpolation path drawn: its images are on the “Inside the model” page.", 6000)

    def _on_example_clicked(self, index: int) -> None:
        """Shift+click on a test image of the Recon grid: its posterior mean μ(x) is an end of the path."""
        st = self.state
        model = st.model()
        if model is None or not QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier:
            return
        mu, _ = model.encode(st.test_image(index)[None], st.example_label(index))
        self._on_path_end(mu[0])

    def encode_dialog(self) -> None:
        path = self.dialogs.ask_open_path("Encode image", IMAGE_FILTER)
        if path:
            self.encode(path)

    def encode(self, path: str) -> None:
        """Show the page and encode an image file on a worker (the newest file wins); a refused file gets one line
        there."""
        self.show_page(self.page)
        self.status.message(f"Encoding {display_name(path)}…", 6000)
        self.encoder.encode(path)

    def _on_encoded(self, e) -> None:
        where = " and its true posterior is on the “Posterior & gap” tab" if len(e.mu) == 2 else ""
        self.status.message(f"Encoded {display_name(e.path)}: its q(z|x) is drawn on the latent plot{where}.", 6000)

    def shutdown(self) -> None:
        self.encoder.shutdown()

    def export_dialog(self, what: str, fmt: str) -> None:
        kind = "GIF animations (*.gif)" if fmt == "gif" else "PNG images (*.png)"
        path = self.dialogs.ask_save_path(f"Export {what}", kind, f"{what}.{fmt}")
        if not path:
            return
        try:
            self.page.export(what, fmt, path)
        except OSError as e:
            self.dialogs.show_error(
                "Export failed", str(e) if isinstance(e, WriteError) else f"{display_name(path)}: {e.strerror or e}"
            )
            return
        self.status.message(f"Exported {path}", 6000)


def dropped_file(mime) -> str | None:
    """The local file a drag carries when it carries exactly one (else None)."""
    urls = mime.urls() if mime.hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    return str(Path(urls[0].toLocalFile()))
