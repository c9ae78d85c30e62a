"""ELBO Studio. ``python main.py`` opens the window; ``python main.py train --data PATH ...`` trains headless."""

from __future__ import annotations

import os
import sys

USAGE = """usage: main.py [--help | --version]          open the ELBO Studio window
       main.py train --data PATH [options]   train without the window (main.py train --help)"""


def version() -> str:
    """The installed package's version, else the one pyproject.toml beside this file states."""
    try:
        from importlib.metadata import PackageNotFoundError, version as installed

        return installed("elbo-studio")
    except PackageNotFoundError:
        import re

        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyproject.toml"), encoding="utf-8") as f:
            found = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
        return found.group(1) if found else "(unknown version)"


def no_display() -> bool:
    """True on a Linux or BSD desktop-less session where Qt would abort: no X or Wayland display, and no other Qt
    platform (offscreen, vnc...) asked for."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def top_level(argv: list[str]) -> int | None:
    """Answer what needs no window: --help, --version, an unknown command, or a window asked for where there is
    no display. Returns the exit status, or None to open the window."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    if "--version" in argv:
        print(f"ELBO Studio {version()}")
        return 0
    words = [a for a in argv if not a.startswith("-")]
    if words:
        print(
            f"main.py: unknown command {words[0]!r}; the commands are: train (or none, to open the window)",
            file=sys.stderr,
        )
        return 2
    if no_display():
        print(
            "main.py: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); run it in a desktop "
            "session, or under xvfb-run, or train without the window: python main.py train --help",
            file=sys.stderr,
        )
        return 2
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        try:
            from engine.cli import main as train_main  # imports torch: a second or more

            return train_main(argv[1:])
        except KeyboardInterrupt:  # Ctrl+C before the CLI's own handling starts: the same one line
            print("\ninterrupted", file=sys.stderr)
            return 130
    code = top_level(argv)
    if code is not None:
        return code
    from gui.app import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
