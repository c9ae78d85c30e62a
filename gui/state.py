"""The session state model: what the window is about, owned in one place (DESIGN.md, "One source of truth").

``StudioState`` holds the dataset, the model identity (its config and a run id), the run status, the selected
test example, the picked latent point, the user's encoded image, and what is derived from them: the newest weights
snapshot, the latent scatter, the metric history.
Panels take it in ``__init__``, read from it and subscribe to its signals; they keep no copy of what it owns.

Identity: ``identity()`` is a token that changes whenever the dataset or the model is replaced. A background job
records it when it starts and hands its result in with it; ``is_current(token)`` is False for a result computed
for a dataset or model that is gone, and such a result is dropped."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine.config import ModelConfig
from engine.data.dataset import as_float01
from engine.preflight import model_misfit
from engine.history import MetricHistory
from engine.inspect.user_image import EncodedImage
from engine.messages import EpochSummary, LatentSnapshot, MetricsChunk, RunStatus, WeightsSnapshot
from engine.snapshot import SnapshotModel, snapshot_model


@dataclass(frozen=True)
class Identity:
    """Which dataset and which model a result belongs to."""

    dataset: int
    model: int


class StudioState(QObject):
    dataset_changed = Signal(object)  # the new Dataset
    model_changed = Signal()  # another model (a new run, a loaded checkpoint): everything derived is gone
    snapshot_changed = Signal(object)  # newer weights of the current model (WeightsSnapshot)
    latent_changed = Signal(object)  # LatentSnapshot, or None when cleared
    history_reset = Signal()  # ``history`` was replaced
    history_grew = Signal()  # rows or an epoch were appended to ``history``
    status_changed = Signal(object)  # the new RunStatus
    example_changed = Signal(object)  # the selected test example's index, or None
    label_changed = Signal(int)  # the class a conditional model generates (gallery, generated image, scatter)
    picked_changed = Signal(object)  # the picked latent point z (d,) float32, or None
    encoded_changed = Signal(object)  # another image of the user's was encoded (EncodedImage), or None: it is gone
    encoded_updated = Signal(object)  # the same image's q(z|x) and reconstruction with newer weights (EncodedImage)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("sessionState")
        self.dataset = None
        self.model_config = None  # engine.config.ModelConfig of the current model, None before any
        self.status = RunStatus.IDLE  # the one run status: the status bar and the actions follow it
        self.source: str | None = None  # "run" | "checkpoint": where the current model lives
        self.checkpoint = None  # the loaded Checkpoint while it is the current model
        self.snapshot: WeightsSnapshot | None = None
        self.latent: LatentSnapshot | None = None
        self.history = MetricHistory()
        self.example: int | None = None
        self.label = 0  # the class a conditional model decodes for; meaningless for an unconditional one
        self.picked: np.ndarray | None = None  # the latent point the user picked (d,), float32: decoded on show
        self.encoded: EncodedImage | None = None  # an image file of the user's as the model takes it, and its q(z|x)
        self._dataset_id = 0
        self._model_id = 0

    # -- identity ------------------------------------------------------------------------------------------
    def identity(self) -> Identity:
        return Identity(self._dataset_id, self._model_id)

    def is_current(self, token: Identity) -> bool:
        return token == self.identity()

    @property
    def latent_dim(self) -> int | None:
        return None if self.model_config is None else self.model_config.latent_dim

    @property
    def n_classes(self) -> int:
        """Classes the current model is conditional on (0: not conditional, or no model)."""
        return 0 if self.model_config is None else self.model_config.n_classes

    def generation_label(self) -> int | None:
        """The label to decode prior and latent-plane points with: the chosen class for a conditional model."""
        return self.label if self.n_classes else None

    def example_label(self, index: int) -> int | None:
        """The label a conditional model encodes test example ``index`` with (None when not conditional)."""
        if not self.n_classes or self.dataset is None or self.dataset.y_test is None:
            return None
        return int(self.dataset.y_test[index])

    def model_fits_dataset(self) -> bool:
        return self.model_config is not None and self.dataset is not None and self.misfit(self.model_config) is None

    def misfit(self, model_config, dataset=None) -> str | None:
        """A sentence when a model (ModelConfig, or a snapshot's config dict) cannot take the dataset's examples
        (``dataset`` or the current one): images of another shape, or labels a conditional model has no inputs
        for. None when it can, or when there is no dataset."""
        ds = self.dataset if dataset is None else dataset
        if ds is None:
            return None
        if isinstance(model_config, dict):
            model_config = ModelConfig.from_dict(model_config)
        if (why := model_misfit(model_config, ds.image_shape, ds.n_classes)) is None:
            return None
        why = why[:1].upper() + why[1:]
        return f"{why}: open the dataset it was trained on, or train a model on this one."

    # -- changes -------------------------------------------------------------------------------------------
    def set_dataset(self, ds) -> None:
        """Another dataset: the scatter and the selected example belong to the old one and go."""
        self._dataset_id += 1
        self.dataset = ds
        self.latent = None
        self.example = None
        self.picked = None
        self.encoded = None
        self.dataset_changed.emit(ds)
        self.latent_changed.emit(None)
        self.example_changed.emit(None)
        self.picked_changed.emit(None)
        self.encoded_changed.emit(None)

    def new_model(self, model_config, source: str, history: MetricHistory | None = None, checkpoint=None) -> None:
        """Another model (a new run, a loaded checkpoint): weights, scatter, selection, the encoded image and curves
        start over."""
        self._model_id += 1
        self.model_config = model_config
        self.source = source
        self.checkpoint = checkpoint
        self.snapshot = None
        self.latent = None
        self.example = None
        self.picked = None
        self.encoded = None
        self.label = 0
        self.history = history if history is not None else MetricHistory()
        self.model_changed.emit()
        self.history_reset.emit()
        self.latent_changed.emit(None)
        self.example_changed.emit(None)
        self.picked_changed.emit(None)
        self.encoded_changed.emit(None)

    def continue_model(self, source: str = "run") -> None:
        """The same model trains on (Continue): its curves and derived views stay; newer weights will follow."""
        self.source = source
        self.checkpoint = None

    def set_status(self, status: RunStatus | str) -> None:
        status = RunStatus(status)
        if status is not self.status:
            self.status = status
            self.status_changed.emit(status)

    def run_ended(self) -> None:
        """The run's thread has ended: a run that had not finished or failed was stopped."""
        self.set_status(self.status.ended())

    def set_snapshot(self, snap: WeightsSnapshot) -> None:
        self.snapshot = snap
        self.snapshot_changed.emit(snap)

    def set_latent(self, lat: LatentSnapshot | None, token: Identity | None = None) -> bool:
        """A scatter for the current model and dataset; False (and nothing changes) for a stale one."""
        if token is not None and not self.is_current(token):
            return False
        self.latent = lat
        self.latent_changed.emit(lat)
        return True

    def add_chunk(self, chunk: MetricsChunk) -> None:
        if self.history.add_chunk(chunk):
            self.history_grew.emit()

    def add_epoch(self, summary: EpochSummary) -> None:
        self.history.add_epoch(summary)
        self.history_grew.emit()

    def select_example(self, index: int | None) -> None:
        if index is not None:
            if self.dataset is None or not (0 <= int(index) < len(self.dataset.x_test)):
                return
            index = int(index)
        self.example = index
        self.example_changed.emit(index)

    def pick(self, z) -> bool:
        """The latent point to decode (d,); refused (False, nothing changes) when it is not a point of the current
        model's latent space."""
        z = np.asarray(z, np.float32).ravel()
        if self.latent_dim is None or len(z) != self.latent_dim or not np.isfinite(z).all():
            return False
        self.picked = z
        self.picked_changed.emit(z)
        return True

    def set_encoded(self, encoded: EncodedImage | None, token: Identity | None = None) -> bool:
        """Another image of the user's, encoded by the current model (None: forget it); False (and nothing changes)
        for one encoded by a model, or read for a dataset, that is gone."""
        if token is not None and not self.is_current(token):
            return False
        self.encoded = encoded
        self.encoded_changed.emit(encoded)
        return True

    def update_encoded(self, encoded: EncodedImage) -> None:
        """The same image encoded again with newer weights (or for another class): its q and reconstruction."""
        if self.encoded is not None:
            self.encoded = encoded
            self.encoded_updated.emit(encoded)

    def set_label(self, label: int) -> None:
        """The class a conditional model generates; ignored when out of its range."""
        label = int(label)
        if label != self.label and 0 <= label < max(self.n_classes, 1):
            self.label = label
            self.label_changed.emit(label)

    # -- derived -------------------------------------------------------------------------------------------
    def model(self) -> SnapshotModel | None:
        """A CPU copy of the newest weights (one per snapshot, engine.snapshot.snapshot_model)."""
        return None if self.snapshot is None else snapshot_model(self.snapshot)

    def class_name(self, label: int) -> str:
        names = self.dataset.class_names if self.dataset is not None else None
        return names[label] if names and 0 <= label < len(names) else str(label)

    def test_image(self, index: int) -> np.ndarray:
        """Test image ``index`` as float32 in [0, 1], (C, H, W), a fresh array (the dataset may store uint8)."""
        return np.array(as_float01(self.dataset.x_test[index]), dtype=np.float32)
