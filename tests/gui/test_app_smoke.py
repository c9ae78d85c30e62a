"""Smoke: the app starts offscreen, opens its window with the default dataset, and quits cleanly by itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, tmp_path, quit_ms: int = 2500):
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        ELBO_STUDIO_QUIT_AFTER_MS=str(quit_ms),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_main_py_starts_writes_its_settings_and_quits(tmp_path):
    """``python main.py`` (main.main → gui.app.run_app) opens the window and quits by itself."""
    r = _run("import runpy, sys; sys.argv = ['main.py']; runpy.run_path('main.py', run_name='__main__')", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Error" not in r.stderr, r.stderr
    ini = list((tmp_path / "config").rglob("*.ini"))
    assert ini, "settings are written to the user's config folder"
