"""Settings panel: a form bound to ModelConfig / TrainConfig, remembered between launches through QSettings.

Widgets write through ``_on_changed`` (which stores the value); configs coming from outside (a loaded
checkpoint) are applied with the widgets' signals blocked, so there is no feedback loop. "Condition on the label"
is a wish kept apart from ModelConfig: the class count comes from the dataset when a run starts
(``model_config(image_shape, label_classes)``)."""

from __future__ import annotations

from dataclasses import fields

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.config import CONDITIONAL_BETA, ConfigError, ModelConfig, TrainConfig
from engine.limits import RANGES, bounds, range_text
from engine.threads import usable_cores


from gui.range_spin_boxes import WIDE, LogSpinBox, RangeDoubleSpinBox, RangeSpinBox

INVALID_STYLE = "border: 1px solid #cf222e;"


TIPS = {
    "arch": "Encoder/decoder networks. MLP: one hidden layer each way (Kingma & Welling's 784–400–d). "
    "Conv: stride-2 convolutions down to a 4×4 map (3 levels at 28–32 px, 4 at 64, 5 at 128), channels "
    "doubling from 32; better for natural or colour images, slower on a CPU.",
    "latent_dim": "Dimension d of the latent code z. With d = 2 the scatter is the latent space itself; "
    "for d > 2 it shows the first two principal components of the posterior means.",
    "hidden": "Width of the fully connected hidden layer in encoder and decoder.",
    "conditional": "A conditional VAE (Sohn et al. 2015): the encoder q(z|x, y) and the decoder p(x|z, y) both see "
    "the label y as a one-hot vector, so z is left to carry the style and y picks the class. Choose the class to "
    "generate beside the Generated image. Needs a labelled dataset.",
    "likelihood": "Observation model p(x|z). Bernoulli: pixels in [0, 1] treated as probabilities (the classic "
    "binarised-MNIST choice; on grey pixels not a normalised density). Gaussian: a learned per-pixel "
    "noise scale σ. Continuous Bernoulli: the Bernoulli made a true density on [0, 1], so the ELBO "
    "of grey images is a real log-likelihood bound.",
    "beta": "Weight β on the KL term (β-VAE). β = 1 optimises the true ELBO; β > 1 favours a simpler, more "
    "disentangled code, β < 1 sharper reconstructions.",
    "warmup_epochs": "KL warm-up: β rises linearly from 0 to its value over this many epochs, which helps avoid "
    "posterior collapse early on. 0 turns it off.",
    "free_bits": "Free bits (Kingma et al. 2016): each latent dimension's KL is not penalised below this many nats. "
    "0 turns it off. The curves always show the true ELBO.",
    "batch_size": "Examples per Adam step. Larger batches train faster per example on a GPU, noisier curves when small.",
    "lr": "Adam's learning rate. Arrows step 1 → 2 → 5 → 10; type any value (e.g. 3e-4).",
    "epochs": "Passes over the training set. A loaded checkpoint continues until this many epochs in all.",
    "device": "Where training runs: only devices this machine really has are listed (CUDA shown with its name).",
    "precision": "fp32: full precision. bf16: bfloat16 autocast (CPU with AMX, recent GPUs). "
    "fp16: float16 autocast with loss scaling (CUDA only).",
    "threads": "CPU threads for the training steps. Auto chooses them from the measured step rate and keeps "
    "choosing while training: fewer when other programs take cores, more when they free them. A number "
    "fixes them. The status bar shows the count in use. Ignored on a GPU.",
    "compile": "Auto: the training step is compiled (torch.compile) in the background while training starts "
    "eagerly, and training switches to it when it is ready; the status bar shows which step runs, or why it "
    "could not be compiled. A second run of the same shape starts compiled. Off: the eager step only.",
    "seed": "Seeds the weights, the batch order and the noise: two CPU runs with the same seed are identical.",
    "iwae_k": "Importance samples K for the per-epoch IWAE estimate of log p(x) (Burda et al. 2016). "
    "Larger K: a tighter bound, a slower end of epoch.",
}

LABELS = {
    "arch": "Architecture",
    "latent_dim": "Latent dimension",
    "hidden": "Hidden width",
    "likelihood": "Likelihood",
    "conditional": "Condition on label",
    "beta": "β (KL weight)",
    "warmup_epochs": "KL warm-up (epochs)",
    "free_bits": "Free bits (nats/dim)",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "epochs": "Epochs",
    "device": "Device",
    "precision": "Precision",
    "threads": "CPU threads",
    "compile": "Compile",
    "seed": "Seed",
    "iwae_k": "IWAE samples K",
}

RETUNABLE = ("lr", "precision")  # may change while a run is paused or diverged: applied when it resumes
MODEL_KEYS = ("arch", "latent_dim", "hidden", "likelihood", "conditional")
NO_LABELS_TIP = "This dataset has no labels (or only one class): there is nothing to condition on."
TRAIN_KEYS = (
    "beta",
    "warmup_epochs",
    "free_bits",
    "batch_size",
    "lr",
    "epochs",
    "device",
    "precision",
    "threads",
    "compile",
    "seed",
    "iwae_k",
)


def _typed(value, like):
    """A QSettings value (often a string from an ini file) as the type of ``like``."""
    if isinstance(like, bool):
        return str(value).lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(float(value))
    if isinstance(like, float):
        return float(value)
    return str(value)


class SettingsPanel(QGroupBox):
    """``model_config(image_shape)`` / ``train_config()`` read the form; ``set_configs`` writes it."""

    changed = Signal()

    def __init__(self, settings: QSettings, devices: list[tuple[str, str]], parent=None):
        super().__init__("Settings", parent)
        self.setObjectName("settingsPanel")
        self._settings = settings
        self._model = self._load(ModelConfig, "model")
        self._conditional = _typed(settings.value("model/conditional", False), True)
        self._label_classes = 0  # the current dataset's classes (0: unlabelled)
        self._editable = True
        self._train = self._load(TrainConfig, "train")
        self.widgets: dict[str, QWidget] = {}
        self.invalid: dict[str, str] = {}  # field -> why its typed value is refused (out of range)
        self._advice: str | None = None  # advice from outside (show_note)
        self._beta_note: str | None = None  # why β is CONDITIONAL_BETA
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 12, 8, 8)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(5)
        outer.addLayout(form)

        def combo(key, items):
            w = QComboBox()
            # sized for about 16 characters, not for the longest entry, so the column fits a 1024-px window
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(16)
            for value, label in items:
                w.addItem(label, value)
            w.currentIndexChanged.connect(lambda _i, k=key: self._on_changed(k))
            return w

        def spin(key, step=1, lo=None, hi=None):
            w = RangeSpinBox()
            w.setRange(-WIDE, WIDE)
            w.limits = (lo, hi) if lo is not None else bounds(key)
            w.setKeyboardTracking(False)
            w.setSingleStep(step)
            w.valueChanged.connect(lambda _v, k=key: self._on_changed(k))
            return w

        def dspin(key, decimals, step):
            w = RangeDoubleSpinBox()
            w.setRange(-WIDE, WIDE)
            w.limits = bounds(key)
            w.setKeyboardTracking(False)
            w.setDecimals(decimals)
            w.setSingleStep(step)
            w.valueChanged.connect(lambda _v, k=key: self._on_changed(k))
            return w

        self.devices = list(devices)
        lr = LogSpinBox(*bounds("lr"))
        lr.setKeyboardTracking(False)  # judged when typed in full (Enter, Tab): "1e9" never passes as "1"
        lr.valueChanged.connect(lambda _v: self._on_changed("lr"))
        self.widgets = {
            "arch": combo("arch", [("mlp", "MLP"), ("conv", "Convolutional")]),
            "latent_dim": spin("latent_dim"),
            "hidden": spin("hidden", 50, 8, 8192),
            "likelihood": combo(
                "likelihood",
                [
                    ("bernoulli", "Bernoulli"),
                    ("gaussian", "Gaussian (learned σ)"),
                    ("continuous_bernoulli", "Continuous Bernoulli"),
                ],
            ),
            "conditional": QCheckBox("cVAE"),
            "beta": dspin("beta", 2, 0.1),
            "warmup_epochs": dspin("warmup_epochs", 1, 1.0),
            "free_bits": dspin("free_bits", 2, 0.1),
            "batch_size": spin("batch_size", 32),
            "lr": lr,
            "epochs": spin("epochs"),
            "device": combo("device", self.devices),
            "precision": combo("precision", [("fp32", "fp32"), ("bf16", "bf16 autocast"), ("fp16", "fp16 autocast")]),
            "threads": combo(
                "threads", [(0, "Auto (adapts to the load)")] + [(n, str(n)) for n in range(1, usable_cores() + 1)]
            ),
            "compile": combo("compile", [("auto", "Auto (when ready)"), ("off", "Off")]),
            "seed": spin("seed"),
            "iwae_k": spin("iwae_k", 10),
        }
        self.widgets["conditional"].toggled.connect(lambda _on: self._on_changed("conditional"))
        heading_model = QLabel("Model")
        heading_train = QLabel("Training")
        for h in (heading_model, heading_train):
            h.setStyleSheet("font-weight: 600; color: #57606a; margin-top: 2px;")
        form.addRow(heading_model)
        for key in MODEL_KEYS + TRAIN_KEYS:
            if key == "beta":
                form.addRow(heading_train)
            w = self.widgets[key]
            w.setObjectName(f"setting_{key}")
            w.setAccessibleName(LABELS[key])
            tip = TIPS[key] + (f" Range: {range_text(key)}." if key in RANGES and key != "threads" else "")
            w.setToolTip(tip)
            label = QLabel(LABELS[key])
            label.setToolTip(tip)
            label.setBuddy(w)
            form.addRow(label, w)
        self.problem = QLabel()
        self.problem.setObjectName("settingsProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #cf222e;")
        self.problem.hide()
        outer.addWidget(self.problem)
        self.note = QLabel()  # advice that refuses nothing (e.g. too few steps per epoch to learn much)
        self.note.setObjectName("settingsNote")
        self.note.setWordWrap(True)
        self.note.setProperty("role", "warning")
        self.note.hide()
        outer.addWidget(self.note)
        self._apply_to_widgets()
        self._update_conditional()

    def show_note(self, text: str | None) -> None:
        """Advice from outside (e.g. too few steps per epoch); shown with the panel's own (the β a ticked
        "Condition on label" suggests)."""
        self._advice = text
        shown = " ".join(t for t in (self._beta_note, text) if t)
        appears = bool(shown) and not self.note.isVisibleTo(self)
        self.note.setText(shown)
        self.note.setVisible(bool(shown))
        if appears:
            QTimer.singleShot(0, lambda: self._reveal(self.note))  # once the column's layout has made room for it

    def _reveal(self, widget: QWidget) -> None:
        """Scroll the column this panel sits in so that ``widget`` is on screen: a note or a refusal sits below the
        last field, under the column's fold in a small window, while the change that caused it is above."""
        area = self.parentWidget()
        while area is not None and not isinstance(area, QScrollArea):
            area = area.parentWidget()
        if area is not None and widget.isVisible():
            for _ in range(4):  # the column laid out with the new text: each layout up the chain posts the next
                QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
            area.ensureWidgetVisible(widget, 0, 8)

    def _suggest_beta(self, conditional: bool) -> None:
        """Ticking "Condition on label" with β at its plain default suggests CONDITIONAL_BETA (and unticking with β
        still there takes it back), so that prior draws decode to their class; the note says so."""
        plain, suggested = TrainConfig().beta, CONDITIONAL_BETA
        if self._train.beta == (plain if conditional else suggested):
            self._train = self._train.replace(beta=suggested if conditional else plain)
            box = self.widgets["beta"]
            box.blockSignals(True)
            box.setValue(self._train.beta)
            box.blockSignals(False)
        self._beta_note = (
            f"β = {suggested:g} for a conditional VAE: prior draws then decode to their class (β = 1 is the true "
            "ELBO, but leaves parts of the prior that no class's q(z|x, y) reaches)."
            if conditional and self._train.beta == suggested
            else None
        )
        self.show_note(self._advice)

    def refusal(self) -> str | None:
        """Why nothing may start or resume now: the first field holding a value out of its range (None: none)."""
        return next(iter(self.invalid.values()), None)

    def show_problem(self, text: str | None) -> None:
        """Why these settings cannot start a run on the current dataset (None: no problem)."""
        self.problem.setText(text or "")
        self.problem.setVisible(bool(text))

    def refuse(self, text: str) -> None:
        """Start was pressed and these settings cannot start: the reason on screen, and the first field out of
        range (if one is) focused with its typed value selected, ready to be corrected."""
        self.show_problem(text)
        field = self.widgets.get(next(iter(self.invalid), ""))
        if field is not None:
            field.setFocus(Qt.FocusReason.OtherFocusReason)
            if hasattr(field, "selectAll"):  # a spin box: its typed text selected, so typing replaces it
                field.selectAll()
        QTimer.singleShot(0, lambda: self._reveal(self.problem))  # once the layout has made room for it

    # -- persistence ---------------------------------------------------------------------------------------
    def _load(self, cls, group: str):
        base = cls()
        kw = {}
        for f in fields(cls):
            if f.name in ("image_shape", "n_classes"):
                continue
            key = f"{group}/{f.name}"
            if self._settings.contains(key):
                try:
                    kw[f.name] = _typed(self._settings.value(key), getattr(base, f.name))
                except (TypeError, ValueError):
                    pass
        cfg = base
        for name, value in kw.items():  # one at a time: a damaged value falls back alone, the others are kept
            try:
                cfg = cfg.replace(**{name: value})
            except (ConfigError, TypeError):
                pass
        return cfg

    def _store(self) -> None:
        for group, cfg in (("model", self._model), ("train", self._train)):
            for f in fields(cfg):
                if f.name not in ("image_shape", "n_classes"):
                    self._settings.setValue(f"{group}/{f.name}", getattr(cfg, f.name))
        self._settings.setValue("model/conditional", self._conditional)

    # -- widget <-> config -----------------------------------------------------------------------------------
    def _apply_to_widgets(self) -> None:
        for key in self.invalid:  # the values shown now are the settings' own
            self.widgets[key].setStyleSheet("")
        self.invalid.clear()
        for key, w in self.widgets.items():
            if key == "conditional":
                w.blockSignals(True)
                w.setChecked(self._conditional and self._label_classes >= 2)
                w.blockSignals(False)
                continue
            value = getattr(self._model if key in MODEL_KEYS else self._train, key)
            if key == "device":
                choice = str(self._settings.value("ui/device_choice", value))
                value = choice if _device_value(choice) == value else value
            w.blockSignals(True)
            try:
                if isinstance(w, QComboBox):
                    i = w.findData(value)
                    if i < 0 and key in ("device", "threads"):  # remembered from another machine: its default
                        self._train = self._train.replace(**{key: getattr(TrainConfig(), key)})
                        i = w.findData(getattr(self._train, key))
                    w.setCurrentIndex(max(i, 0))
                else:
                    w.setValue(value)
            finally:
                w.blockSignals(False)

    def _read(self, key: str):
        w = self.widgets[key]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        return w.currentData() if isinstance(w, QComboBox) else w.value()

    def _on_changed(self, key: str) -> None:
        value = self._read(key)
        try:
            if key == "conditional":
                self._conditional = bool(value)
                self._suggest_beta(self._conditional)
            elif key in MODEL_KEYS:
                self._model = self._model.replace(**{key: value})
            else:
                self._train = self._train.replace(**{key: _device_value(value) if key == "device" else value})
        except ConfigError as e:  # shown where it was typed, not clamped; Start refuses while it stands
            why = str(e).removeprefix(f"{key} ")  # "batch_size must lie in …": the field's label says which
            self.invalid[key] = f"{LABELS[key]}: {why}"
            self.widgets[key].setStyleSheet(INVALID_STYLE)
            self.show_problem(self.invalid[key])
            return
        if self.invalid.pop(key, None) is not None:
            self.widgets[key].setStyleSheet("")
        if key == "device":
            self._settings.setValue("ui/device_choice", value)
        self.show_problem(next(iter(self.invalid.values()), None))
        self._store()
        self.changed.emit()

    def model_config(self, image_shape: tuple[int, int, int], label_classes: int = 0) -> ModelConfig:
        """The model these settings describe for a dataset of this image shape and class count (0: unlabelled);
        conditional on its labels when asked for and the dataset has two classes or more."""
        n_classes = label_classes if self._conditional and label_classes >= 2 else 0
        return self._model.replace(image_shape=tuple(int(s) for s in image_shape), n_classes=n_classes)

    def set_label_classes(self, k: int) -> None:
        """The current dataset's class count: "Condition on label" is offered only for two classes or more."""
        self._label_classes = int(k)
        self._update_conditional()
        self._apply_to_widgets()

    def train_config(self) -> TrainConfig:
        return self._train

    def set_configs(self, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None) -> None:
        """Apply configs from outside (a checkpoint, a test) without feedback; remembered like user edits."""
        if model_cfg is not None:
            self._model = model_cfg.replace(n_classes=0)
            self._conditional = model_cfg.conditional
        if train_cfg is not None:
            self._train = train_cfg
        if self._beta_note and not (self._conditional and self._train.beta == CONDITIONAL_BETA):
            self._beta_note = None  # the β on show is no longer the suggested one
            self.show_note(self._advice)
        self._apply_to_widgets()
        self._store()
        self.changed.emit()

    def set_train_config(self, train_cfg: TrainConfig) -> None:
        self.set_configs(None, train_cfg)

    def set_editable(self, editable: bool, retunable: bool = False) -> None:
        """All fields editable, or none; ``retunable`` (a paused or diverged run) keeps those a resume applies."""
        self._editable = editable
        for key, w in self.widgets.items():
            w.setEnabled(editable or (retunable and key in RETUNABLE))
        self._update_conditional()

    def _update_conditional(self) -> None:
        box, labelled = self.widgets["conditional"], self._label_classes >= 2
        box.setEnabled(self._editable and labelled)
        box.setToolTip(TIPS["conditional"] if labelled else NO_LABELS_TIP)


def _device_value(value: str) -> str:
    """A device combo value as TrainConfig accepts it ('cuda:1' stays: a second GPU can be chosen)."""
    try:
        return TrainConfig(device=value).device
    except ConfigError:
        return "auto"
