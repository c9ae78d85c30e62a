"""Files the user named, read and written safely: only regular files are read, every write is atomic, and names
are quoted in messages.

``open_regular`` opens without blocking (a named pipe would otherwise wait forever in ``open()`` for a writer),
then refuses anything that is not a regular file (FIFOs, /dev/zero and other devices, sockets), so no reader ever
waits on, or streams without end from, something that is not a file. ``atomic_write`` is the one writer of every
file the program produces (checkpoints, CSV, TSV, PNG). ``quote`` is how every message names a file."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


class NotRegularFile(OSError):
    """The path names a FIFO, a device or a socket: refused before a single byte is read."""


def quote(name) -> str:
    """A file name as messages show it, repr-style: a newline or a quote in a name cannot forge a second line."""
    return repr(str(name))


def display_name(path) -> str:
    """The quoted file name (or the whole path if it has no name) for a message."""
    p = Path(path)
    return quote(p.name or str(p))


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_regular(path, mode: str = "rb"):
    """Open ``path`` for reading (binary) only if it is a regular file (symlinks followed); NotRegularFile
    otherwise. Never blocks: the file is opened non-blocking and checked with fstat before any read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        kind = kind_of(st.st_mode)
        if kind is not None:
            raise NotRegularFile(0, f"is {kind}, not a regular file", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


class WriteError(OSError):
    """A file could not be written: one line naming the target (never the hidden temp file) and why."""

    def __str__(self) -> str:
        return str(self.strerror)


_TMP_SUFFIX = ".tmp"


def _umask() -> int:
    """The process umask, read without changing it (Linux), else by the set-and-restore idiom."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove temp files that killed writes of ``path`` left beside it (``.<name>.<pid>.<random>.tmp`` whose
    writer process is gone). Returns what was removed."""
    path = Path(path)
    removed = []
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        n = p.name
        if not (n.startswith(prefix) and n.endswith(_TMP_SUFFIX)):
            continue
        pid = n[len(prefix) : -len(_TMP_SUFFIX)].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _write_reason(e: BaseException, folder: Path) -> str:
    """Why a write failed, in words. torch reports a full disk as a RuntimeError ("unexpected pos"), so the free
    space of the folder is looked at too."""
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return "the disk is full"
    try:
        st = os.statvfs(folder)
        if st.f_bavail * st.f_frsize < (1 << 20):
            return "the disk is full"
    except OSError:
        pass
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return "the write stopped part-way (a full disk or a file system error)"  # torch's text names its internals


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file_object)`` on a temp file beside ``path``, fsync, then rename over ``path``.
    A crash or error leaves the old file (or none), never a half-written one; any failure is a WriteError naming
    ``path``. The new file keeps the permission bits of the file it replaces (a new file follows the umask), and
    temp files left by killed writes of the same target are removed first."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(
            e.errno or 0,
            f"could not write {display_name(path)}: cannot create its folder ({e.strerror or e})",
            str(path),
        ) from None
    clean_stale_temps(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=_TMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        _unlink(tmp)
        raise WriteError(
            getattr(e, "errno", None) or 0,
            f"could not write {display_name(path)}: {_write_reason(e, path.parent)}",
            str(path),
        ) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(p) -> None:
    if p is None:
        return
    try:
        os.unlink(p)
    except OSError:
        pass
