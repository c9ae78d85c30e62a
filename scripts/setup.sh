#!/usr/bin/env bash
# Sets up ELBO Studio on a fresh Debian-like machine: the system libraries Qt needs, Fashion-MNIST (the default
# dataset) when apt is available, a virtual environment in .venv with torch and the package. Safe to re-run:
# it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(libglib2.0-0 libgl1 libegl1 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0
          libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 dataset-fashion-mnist)
if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    # dataset-fashion-mnist is optional: without it the app trains on its built-in shapes
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]/dataset-fashion-mnist}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first, by itself: here `torch==2.13.0` is a local CPU build; elsewhere set TORCH_SPEC (e.g. a CUDA build).
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
if ! .venv/bin/python -c "import engine, gui, PySide6, pyqtgraph, PIL, pytest, pytestqt, xdist, pytest_timeout" >/dev/null 2>&1 \
   || [ ! -x .venv/bin/ruff ] || [ pyproject.toml -nt .venv/.elbo-installed ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  touch .venv/.elbo-installed
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
