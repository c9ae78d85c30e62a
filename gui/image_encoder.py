"""An image file of the user's encoded off the GUI thread: read by the dataset's rules, resized and encoded with the
current model's newest weights on a gui.workers.Worker (engine/inspect/user_image.py); the result becomes
``StudioState.encoded``. A file the model cannot take gives one line naming it, and nothing else changes.

One file at a time, the newest wins: a file given while another is being encoded replaces it (the running one's
result is dropped, the newest is encoded as soon as the running read ends, any file in between is skipped)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engine.files import display_name
from engine.inspect.user_image import ImageRefused, encode_image
from engine.snapshot import snapshot_model
from gui.state import StudioState
from gui.workers import Worker

NO_MODEL = "Train or load a model first: there is no model to encode the image with."


def refusal_line(path: str, error: BaseException) -> str:
    """One line naming the file and why it could not be encoded."""
    text = str(error) if isinstance(error, ImageRefused) else f"{display_name(path)}: {type(error).__name__}: {error}"
    return text.splitlines()[0] if text else display_name(path)


class ImageEncoder(QObject):
    encoded = Signal(object)  # the EncodedImage that has just become the state's
    refused = Signal(str)  # one line: the file and the problem

    def __init__(self, state: StudioState, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("imageEncoder")
        self.state = state
        self.worker: Worker | None = None  # the file being read and encoded
        self.waiting: str | None = None  # the newest file given while one was being encoded

    def encode(self, path: str) -> None:
        """Encode ``path`` on a worker, or after the running one (whose result is then dropped)."""
        if self.worker is not None:
            self.worker.cancel()
            self.waiting = path
            return
        self._start(path)

    def _start(self, path: str) -> None:
        snap = self.state.snapshot
        if snap is None:
            self.refused.emit(NO_MODEL)
            return
        token, label = self.state.identity(), self.state.generation_label()
        self.worker = Worker(
            lambda: encode_image(snapshot_model(snap), path, label),
            on_result=lambda e: self._on_result(e, token),
            on_error=lambda e, _tb: self.refused.emit(refusal_line(path, e)),
            parent=self,
            name="imageEncoderThread",
        )
        self.worker.done.connect(self._on_done)

    def _on_result(self, encoded, token) -> None:
        if self.state.set_encoded(encoded, token):  # dropped when the model or the dataset changed meanwhile
            self.encoded.emit(encoded)

    def _on_done(self) -> None:
        self.worker = None
        if self.waiting is not None:
            path, self.waiting = self.waiting, None
            self._start(path)

    def is_running(self) -> bool:
        return self.worker is not None

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        """Drop the waiting file and the running result; True when no encoding thread is left running."""
        self.waiting = None
        if self.worker is None:
            return True
        self.worker.cancel()
        return self.worker.wait(timeout_ms)
