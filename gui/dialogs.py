"""The window's questions and messages, one method each, so that tests can replace any of them. The window's
actions (gui/run_actions.py, checkpoints.py, exports.py, inside_actions.py) take it as their ``dialogs``: the
``Dialogs`` protocol below is what they may ask of it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.files import quote
from engine.outputs import find_clash
from gui.dataset_dialog import DatasetFileDialog


class Dialogs(Protocol):
    """The questions and messages the window's actions use (DialogsMixin implements them; tests replace them)."""

    def show_error(self, title: str, text: str, detail: str = "") -> None: ...
    def ask_start_choice(self, described: str, cannot_continue: str | None) -> str: ...
    def ask_replace_model(self, described: str, file_name: str) -> str: ...
    def ask_save_model_before_close(self, described: str) -> str: ...
    def ask_open_path(self, title: str, file_filter: str) -> str | None: ...
    def ask_save_path(self, title: str, file_filter: str, suggested: str) -> str | None: ...


class DialogsMixin:
    """Mixed into MainWindow (which provides ``settings``, ``state`` and ``open_boxes``, the error boxes on show)."""

    def show_error(self, title: str, text: str, detail: str = "") -> None:
        """A non-blocking error box (the window keeps running)."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        if detail:
            box.setDetailedText(detail)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda _r, b=box: self.open_boxes.remove(b) if b in self.open_boxes else None)
        self.open_boxes.append(box)
        box.open()

    def ask_start_choice(self, described: str, cannot_continue: str | None) -> str:
        """Start with a trained model present: 'continue', 'new' or 'cancel'. ``cannot_continue`` says why
        continuing is impossible (its button is then disabled)."""
        box = QMessageBox(
            QMessageBox.Icon.Question, "Start training", described, QMessageBox.StandardButton.NoButton, self
        )
        box.setObjectName("startChoiceDialog")
        cont = box.addButton("Continue training this model", QMessageBox.ButtonRole.AcceptRole)
        cont.setObjectName("continueButton")
        new = box.addButton("Start a new model", QMessageBox.ButtonRole.DestructiveRole)
        new.setObjectName("newModelButton")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        if cannot_continue:
            cont.setEnabled(False)
            box.setInformativeText(
                f"{cannot_continue}\nA new model starts from scratch; save this one first (Ctrl+S) to keep it."
            )
            box.setDefaultButton(cancel)
        else:
            box.setInformativeText(
                "Continuing keeps its weights, optimizer state and curves. A new model starts "
                "from scratch; save this one first (Ctrl+S) to keep it."
            )
            box.setDefaultButton(cont)
        box.exec()
        return {cont: "continue", new: "new"}.get(box.clickedButton(), "cancel")

    def ask_close_model(self, described: str, dataset_name: str) -> str:
        """Another dataset whose images do not fit the trained model: 'save', 'discard' or 'cancel'."""
        return self._ask_save_model(
            "Open another dataset", f"{described} Its images do not fit {dataset_name}, so it will be closed."
        )

    def ask_replace_model(self, described: str, file_name: str) -> str:
        """A checkpoint is about to replace the trained model: 'save', 'discard' or 'cancel'."""
        return self._ask_save_model("Load checkpoint", f"{described} Loading {file_name} replaces it.")

    def _ask_save_model(self, title: str, text: str) -> str:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            title,
            f"{text} Save it first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("closeModelDialog")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        r = box.exec()
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(r), "cancel"
        )

    def ask_save_model_before_close(self, described: str) -> str:
        """Closing with a trained model no checkpoint file holds: 'save', 'discard' or 'cancel'."""
        return self._ask_save_model("Close ELBO Studio", f"{described} It is not saved; closing discards it.")

    def ask_save_before_close(self) -> str:
        """'save', 'discard' or 'cancel'."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Training is running",
            "Training is still running. Save a checkpoint before closing?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("closeDialog")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        r = box.exec()
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(r), "cancel"
        )

    def ask_dataset_path(self) -> str | None:
        start = str(self.settings.value("ui/last_dataset_dir", str(Path.home())))
        return DatasetFileDialog.get_path(self, start)

    def ask_open_path(self, title: str, file_filter: str) -> str | None:
        start = str(self.settings.value("ui/last_file_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, title, start, file_filter)
        return path or None

    def ask_save_path(self, title: str, file_filter: str, suggested: str) -> str | None:
        """A file to write, or None. A name typed without an extension gets the filter's (vae → vae.pt); only a
        folder that can be written to becomes the next dialog's start. A name that is the open dataset (or one of
        its files) or the loaded checkpoint file is asked about first (engine/outputs.py compares files, not
        strings): No gives None."""
        start = Path(str(self.settings.value("ui/last_file_dir", str(Path.home())))) / suggested
        path = self.pick_save_file(title, str(start), file_filter)
        if not path:
            return None
        ext = re.search(r"\(\*(\.\w+)", file_filter)
        if ext and not Path(path).suffix:
            path += ext.group(1)
        if os.access(Path(path).parent, os.W_OK | os.X_OK):
            self.settings.setValue("ui/last_file_dir", str(Path(path).parent))
        ds, ck = self.state.dataset, self.state.checkpoint
        inputs = {"the open dataset": ds.source if ds is not None else None, "the loaded checkpoint": ck and ck.path}
        clash = find_clash({"the file": path}, inputs)
        if clash is not None and not self.ask_replace_input(clash):
            return None
        return path

    def pick_save_file(self, title: str, start: str, file_filter: str) -> str:
        """The platform's save dialog: the chosen name, or ""."""
        return QFileDialog.getSaveFileName(self, title, start, file_filter)[0]

    def ask_replace_input(self, clash) -> bool:
        """A save would write over something the window has open (an engine.outputs.Clash): replace it?"""
        what = f"a file of {clash.other_role}" if clash.inside else clash.other_role
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Replace an open file?",
            f"{quote(clash.output)} is {what} ({quote(clash.other)}). Writing it replaces that file. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("replaceInputDialog")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About ELBO Studio",
            "<b>ELBO Studio</b><br>Train variational autoencoders and watch amortized variational "
            "inference happen: the ELBO and its terms, the IWAE bound, the latent space, and the decoder "
            "at any point you click.",
        )
