"""Whether a file may be written: never over an input, never over another output of the same command, never under
a name the file system cannot hold. One owner for that question; the CLI and the window's save dialogs ask it.

Files are compared as files, not as strings: two names are the same file when ``os.path.samefile`` says so (hard
links, symlinks, ``..``, case-folding file systems) where both exist, else when their resolved paths agree (a name
that does not exist yet, through a symlinked folder). An output inside an input *folder* that would replace one of
its data files (a name the loaders read) counts as writing over that input."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .data.images import IMAGE_SUFFIXES
from .data.registry import SUPPORTED_SUFFIXES
from .files import quote

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems, when the folder cannot say
PATH_MAX = 4096  # bytes in a whole path on Linux


def _resolved(path) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def same_file(a, b) -> bool:
    """Whether names ``a`` and ``b`` denote one file (see the module docstring)."""
    a, b = os.path.expanduser(os.fspath(a)), os.path.expanduser(os.fspath(b))
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return _resolved(a) == _resolved(b)


def _data_file_in(path, folder) -> bool:
    """Whether ``path`` is an existing file the loaders would read, somewhere inside the input folder ``folder``."""
    try:
        inner = Path(_resolved(path))
        if not (Path(folder).is_dir() and inner.is_file()):
            return False
        inner.relative_to(_resolved(folder))
    except (OSError, ValueError):
        return False
    return inner.name.lower().endswith(SUPPORTED_SUFFIXES + IMAGE_SUFFIXES)


def name_problem(path) -> str | None:
    """Why the file system cannot hold this name (a part longer than its folder allows, or a path longer than
    PATH_MAX), or None. Asked before anything else touches the name, so no OSError surfaces later."""
    p = os.path.expanduser(os.fspath(path))
    if len(os.fsencode(p)) > PATH_MAX:
        return f"the path is {len(os.fsencode(p)):,} bytes long, more than the {PATH_MAX:,} a path may have"
    folder = Path(p).parent
    for part in Path(p).parts:
        size = len(os.fsencode(part))
        if size <= NAME_MAX:
            continue
        limit = NAME_MAX
        try:
            while not folder.is_dir() and folder != folder.parent:
                folder = folder.parent
            limit = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            pass
        if size > limit:
            return f"a file or folder name of {size:,} bytes, more than the {limit:,} the file system allows"
    return None


@dataclass(frozen=True)
class Clash:
    """An output that may not be written: ``output`` names the same file as ``other`` (or a data file inside the
    input folder ``other``)."""

    output_role: str  # how the output is named to the user: "--checkpoint", "the exported image"
    output: str
    other_role: str  # "--data", "the open dataset", "--metrics-csv"
    other: str
    is_input: bool
    inside: bool = False  # ``output`` is a data file inside the input folder ``other``

    def text(self) -> str:
        """One line: ``'a.npz': --checkpoint is the same file as --data 'a.npz': writing it would overwrite an
        input``."""
        what = "an input" if self.is_input else "another output"
        rel = "is a data file inside" if self.inside else "is the same file as"
        return f"{quote(self.output)}: {self.output_role} {rel} {self.other_role} {quote(self.other)}: writing it would overwrite {what}"


def find_clash(outputs: dict[str, str | None], inputs: dict[str, str | None], allow=()) -> Clash | None:
    """The first output (role → name) that is the same file as an input or as an earlier output, or None. Roles
    with no name (None or "") are skipped; ``allow`` holds (output role, input role) pairs that may be one file
    (a checkpoint written back over the one it resumed: the write is atomic and the input was read whole)."""
    outs = [(role, p) for role, p in outputs.items() if p]
    ins = [(role, p) for role, p in inputs.items() if p]
    for i, (role, out) in enumerate(outs):
        for in_role, src in ins:
            if (role, in_role) in allow:
                continue
            if same_file(out, src):
                return Clash(role, out, in_role, src, True)
            if _data_file_in(out, src):
                return Clash(role, out, in_role, src, True, inside=True)
        for other_role, other in outs[:i]:
            if same_file(out, other):
                return Clash(role, out, other_role, other, False)
    return None
