"""File → Open dataset…: a file dialog that accepts a file or a folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QPushButton

from engine.data import FILE_DIALOG_FILTER


class DatasetFileDialog(QFileDialog):
    """A file dialog that accepts a file *or* a folder (image folders, IDX folders): "Open" on a file opens it;
    "Open folder" opens the highlighted folder, or the one being shown."""

    def __init__(self, parent=None, start_dir: str = ""):
        super().__init__(parent, "Open dataset", start_dir, FILE_DIALOG_FILTER)
        self.setObjectName("datasetFileDialog")
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        self.setFileMode(QFileDialog.FileMode.ExistingFile)
        self.chosen: str | None = None
        btn = QPushButton("Open folder")
        btn.setObjectName("openFolderButton")
        btn.setToolTip(
            "Open the highlighted folder (or the one shown) as a dataset: a folder of images, "
            "one sub-folder per class, or a folder of IDX files"
        )
        btn.clicked.connect(self._open_folder)
        lay = self.layout()
        if lay is not None:
            lay.addWidget(btn)

    def _open_folder(self) -> None:
        sel = [p for p in self.selectedFiles() if Path(p).is_dir()]
        self.chosen = sel[0] if sel else self.directory().absolutePath()
        QDialog.done(self, QDialog.DialogCode.Accepted)

    def accept(self) -> None:
        files = self.selectedFiles()
        if files and Path(files[0]).is_file():
            self.chosen = files[0]
        super().accept()

    @classmethod
    def get_path(cls, parent, start_dir: str = "") -> str | None:
        dlg = cls(parent, start_dir)
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        return dlg.chosen or (dlg.selectedFiles() or [None])[0]
