"""File → Export: the generated image or the grid on show as PNG, the metrics as CSV, the latent codes as TSV
(TensorBoard projector format). Each action says in its tooltip and status tip why it is disabled."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from engine.files import WriteError, atomic_write, display_name, quote
from gui.dialogs import Dialogs
from gui.imaging import save_png

WHY_NOT = {
    "generated": "Nothing to export yet: click or drag in the latent plot to decode an image first.",
    "grid": "Nothing to export yet: the image grids appear with the first model snapshot (press Start or load a "
    "checkpoint).",
    "metrics": "No metrics yet: train a model or load a checkpoint.",
    "latents": "No latent codes yet: train a model, or load a checkpoint that fits the open dataset.",
}


class Exports(QObject):
    """Writes the image on show in ``generated`` or ``gallery`` and ``state``'s metrics and latent codes; asks where
    and reports failures through ``dialogs``, success on ``status``."""

    def __init__(self, state, generated, gallery, status, dialogs: Dialogs, parent=None):
        super().__init__(parent)
        self.state, self.generated, self.gallery, self.status, self.dialogs = state, generated, gallery, status, dialogs
        self.tips = {}  # action -> its tooltip when enabled

    def available(self) -> dict[str, bool]:
        return {
            "generated": self.generated.image is not None,
            "grid": self.gallery.current_image() is not None,
            "metrics": len(self.state.history) > 0,
            "latents": self.state.latent is not None,
        }

    def update(self, actions: dict) -> None:
        """Enable each export action that has something to write; a disabled one says why."""
        for key, ok in self.available().items():
            a = actions[key]
            base = self.tips.setdefault(a, a.toolTip())
            if a.isEnabled() != ok or (not ok and a.toolTip() != WHY_NOT[key]):
                a.setEnabled(ok)
                a.setToolTip(base if ok else WHY_NOT[key])
                a.setStatusTip(base if ok else WHY_NOT[key])

    # -- the dialogs -------------------------------------------------------------------------------------------
    def generated_dialog(self) -> None:
        img = self.generated.image
        if img is None:
            return
        path = self.dialogs.ask_save_path("Export generated image", "PNG images (*.png)", "generated.png")
        if path:
            self._export(lambda: save_png(path, img), path)

    def grid_dialog(self) -> None:
        img = self.gallery.current_image()
        if img is None:
            return
        path = self.dialogs.ask_save_path(
            "Export image grid", "PNG images (*.png)", f"{self.gallery.current_kind()}.png"
        )
        if path:
            self._export(lambda: save_png(path, img), path)

    def metrics_dialog(self) -> None:
        if not len(self.state.history):
            return
        path = self.dialogs.ask_save_path("Export metrics", "CSV files (*.csv)", "metrics.csv")
        if path:
            text = self.state.history.to_csv()
            self._export(lambda: atomic_write(path, lambda f: f.write(text.encode("utf-8"))), path)

    def latents_dialog(self) -> None:
        if self.state.latent is None:
            return
        path = self.dialogs.ask_save_path(
            "Export latent codes (TensorBoard projector)", "TSV files (*.tsv)", "latents.tsv"
        )
        if path:
            self._export(lambda: self.export_latents(path), path)

    def export_latents(self, path: str) -> tuple[str, str]:
        """Two files, as the TensorBoard projector reads them: ``path`` holds one tab-separated vector per line
        (no header); ``<stem>_metadata.tsv`` beside it holds each point's label (header ``label\\tclass``)."""
        lat = self.state.latent
        p = Path(path)
        meta = p.with_name(p.stem + "_metadata.tsv")
        vec_text = "".join("\t".join(f"{v:.6g}" for v in row) + "\n" for row in lat.means.tolist())
        if lat.labels is None:
            meta_text = "".join(f"{int(i)}\n" for i in lat.indices)  # one column: no header (projector rule)
        else:
            meta_text = "label\tclass\n" + "".join(f"{int(y)}\t{self.state.class_name(int(y))}\n" for y in lat.labels)
        atomic_write(p, lambda f: f.write(vec_text.encode("utf-8")))
        atomic_write(meta, lambda f: f.write(meta_text.encode("utf-8")))
        return str(p), str(meta)

    def _export(self, fn, path: str) -> None:
        try:
            fn()
        except OSError as e:
            self.dialogs.show_error(
                "Export failed", str(e) if isinstance(e, WriteError) else f"{display_name(path)}: {e.strerror or e}"
            )
            return
        self.status.message(f"Exported {quote(path)}", 6000)
