"""ELBO Studio. ``python main.py`` opens the window; ``python main.py train --data PATH ...`` trains headless."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        try:
            from engine.cli import main as train_main  # imports torch: a second or more

            return train_main(argv[1:])
        except KeyboardInterrupt:  # Ctrl+C before the CLI's own handling starts: the same one line
            print("\ninterrupted", file=sys.stderr)
            return 130
    from gui.app import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
