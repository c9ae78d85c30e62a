"""GUI test fixtures: offscreen Qt, a temp QSettings, a tiny dataset, windows with dialogs replaced, and a check
that no test leaves a QThread (or any new Python thread) running, nor a QTimer ticking in a closed main window
(napari's dangling-thread idea)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import gc  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QThread, QTimer  # noqa: E402

from engine.config import ModelConfig, TrainConfig  # noqa: E402
from engine.data.dataset import Dataset  # noqa: E402
from tests.conftest import make_blobs  # noqa: E402

_STARTED: list = []
_orig_start = QThread.start


def _tracking_start(self, *args, **kwargs):
    _STARTED.append(self)
    return _orig_start(self, *args, **kwargs)


QThread.start = _tracking_start  # every QThread started from Python is checked after each test


def _running_qthreads() -> list:
    out = []
    for t in list(_STARTED):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:  # C++ object deleted: it is not running
            pass
    return out


@pytest.fixture(scope="session", autouse=True)
def app_style(qapp):
    """The look the app gives itself (gui/app.py): its font and style sheet, so that what a test measures (a text
    that fits its widget, a window's minimum size) is what a user sees."""
    from gui import style

    style.apply_app_style(qapp)
    # what exists now (torch, Qt, the app's modules, all imported at collection) lives for the whole session: out
    # of the cyclic collector's sight, so the collection between tests scans only what the tests made
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def collect_garbage_between_tests():
    """As in the app (gui/app.py), Python's cyclic collector never runs by itself during a GUI test: started inside
    a Qt call, freeing an earlier test's widgets there deadlocks on Qt's connection mutex. Collected here, between
    tests, where no Qt call is on the stack."""
    gc.disable()
    yield
    gc.collect()
    gc.enable()


@pytest.fixture(autouse=True)
def no_dangling_threads(qapp):
    before = {t.ident for t in threading.enumerate()}
    _STARTED.clear()
    yield
    deadline = time.monotonic() + 5.0  # background tasks (a finished load) may take a moment to wind down
    while time.monotonic() < deadline and _running_qthreads():
        qapp.processEvents()
        time.sleep(0.01)
    left = _running_qthreads()
    new = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
    ]
    for t in left:  # do not let one test's thread crash the next one
        t.wait(10_000)
    assert not left, f"QThread(s) left running: {[t.objectName() for t in left]}"
    assert not new, f"thread(s) left running: {new}"


def make_tiny(n_train=600, n_test=200, side=12, classes=3, seed=0) -> Dataset:
    """Class prototypes with pixel noise, 1×side×side: a VAE learns it in a few steps."""
    return make_blobs(n_train, n_test, side, classes, seed)


@pytest.fixture(scope="session")
def tiny() -> Dataset:
    return make_tiny()


SMALL_MODEL = ModelConfig(image_shape=(1, 12, 12), latent_dim=2, hidden=32)
SMALL_TRAIN = TrainConfig(
    epochs=2,
    batch_size=64,
    iwae_k=5,
    iwae_examples=50,
    eval_examples=200,
    latent_examples=200,
    snapshot_interval_s=0.2,
    metrics_hz=20.0,
)


@pytest.fixture
def settings_file(tmp_path):
    return str(tmp_path / "elbo-studio.ini")


@pytest.fixture
def make_window(qtbot, settings_file, tiny):
    """``make_window(dataset=tiny, model=SMALL_MODEL, train=SMALL_TRAIN, configure=True)``: a shown MainWindow
    with a temp QSettings; ``w.errors`` collects (title, text) of error dialogs; closing answers 'discard'; Start
    with a trained model continues it when it can (else starts a new one), recorded in ``w.start_asks``."""
    made = []

    def make(dataset="tiny", model=None, train=None, configure=True, settings=None):
        from gui.main_window import MainWindow

        s = settings or QSettings(settings_file, QSettings.Format.IniFormat)
        w = MainWindow(settings=s, dataset=tiny if dataset == "tiny" else dataset, load_default=False)
        w.errors = []
        w.show_error = lambda title, text, detail="": w.errors.append((title, text))
        w.ask_save_before_close = lambda: "discard"
        w.ask_save_model_before_close = lambda described: "discard"
        w.start_asks = []  # (described, why continuing is impossible) of each Start that asked

        def start_choice(described, cannot_continue):
            w.start_asks.append((described, cannot_continue))
            return "new" if cannot_continue else "continue"

        w.ask_start_choice = start_choice
        w.ask_close_model = lambda described, name: "discard"
        w.ask_replace_model = lambda described, name: "discard"
        qtbot.addWidget(w)
        if configure:
            w.settings_panel.set_configs(model or SMALL_MODEL, train or SMALL_TRAIN)
        w.resize(1400, 900)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    ticking = []
    for w in made:
        try:
            w.session.close(5000)
            w.close()
            ticking += [t for t in w.findChildren(QTimer) if t.isActive()]
        except RuntimeError:  # already deleted
            pass
    names = [
        f"{t.objectName() or 'a QTimer'} ({t.interval()} ms) of {type(t.parent()).__name__} {t.parent().objectName()!r}"
        for t in ticking
    ]
    for t in ticking:  # do not let it fire into the next test
        t.stop()
    assert not ticking, f"timer(s) still running in a closed window: {', '.join(names)}"


def wait_finished(qtbot, w, timeout=30_000):
    qtbot.waitUntil(
        lambda: not w.session.is_active() and not w.state.status.active,  # ended (or its model closed)
        timeout=timeout,
    )
    qtbot.wait(50)  # queued messages
