"""Opening files the user named, safely: only regular files are read, and names are quoted in messages.

``open_regular`` opens without blocking (a named pipe would otherwise wait forever in ``open()`` for a writer),
then refuses anything that is not a regular file (FIFOs, /dev/zero and other devices, sockets), so no reader ever
waits on, or streams without end from, something that is not a file. ``quote`` is how every message names a file."""

from __future__ import annotations

import os
import stat
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
