"""Import contracts (DESIGN.md, "Boundaries"): the engine never imports Qt, pyqtgraph or the GUI; the panels in
gui/panels/ never import each other (shared pieces live in gui/ itself)."""

import pytest
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "qtpy", "superqt", "gui")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out += [(node.lineno, f"{base}.{a.name}" if node.module is None else base) for a in node.names]
    return out


@pytest.mark.slow
def test_engine_imports_no_qt_when_loaded():
    modules = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))
    assert "engine.trainer" in modules and "engine.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {QT!r})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_engine_source_names_no_qt_module():
    """Also imports a test run would not execute (inside functions, behind a condition)."""
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in sorted((ROOT / "engine").rglob("*.py"))
        for line, name in _imports(p)
        if name.split(".")[0] in QT
    ]
    assert bad == []


def test_panels_do_not_import_each_other():
    panels = sorted((ROOT / "gui" / "panels").glob("*.py"))
    names = {f"gui.panels.{p.stem}" for p in panels if p.stem != "__init__"}
    assert "gui.panels.latent" in names
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in panels
        for line, name in _imports(p)
        if any(name == n or name.startswith(n + ".") for n in names - {f"gui.panels.{p.stem}"})
    ]
    assert bad == []


def test_the_contract_checker_sees_a_violation(tmp_path, monkeypatch):
    """The AST check resolves relative imports, so ``from .curves import X`` in a panel would be caught."""
    fake_root = tmp_path
    (fake_root / "gui" / "panels").mkdir(parents=True)
    f = fake_root / "gui" / "panels" / "latent.py"
    f.write_text("from .curves import CurvesPanel\nimport gui.panels.gallery as g\nfrom gui import style\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    assert [n for _, n in _imports(f)] == ["gui.panels.curves", "gui.panels.gallery", "gui"]


ABOVE_LOADERS = ("engine.model", "engine.run_memory", "engine.preflight", "engine.trainer", "engine.checkpoint")


@pytest.mark.slow
def test_the_loaders_never_import_the_model():
    """engine/data and what it builds on (files, memory) sit below the model: the model's memory estimate lives in
    engine/run_memory.py, above them. Checked in the source (imports inside functions too) and when loaded."""
    below = sorted((ROOT / "engine" / "data").rglob("*.py")) + [
        ROOT / "engine" / "memory.py",
        ROOT / "engine" / "files.py",
    ]
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in below
        for line, name in _imports(p)
        if any(name == m or name.startswith(m + ".") for m in ABOVE_LOADERS)
    ]
    assert bad == []
    code = f"import sys, engine.data; print(sorted(m for m in sys.modules if m in {ABOVE_LOADERS!r}))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
