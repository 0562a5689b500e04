"""Reading the small local files the agent is given (service files, state, tokens) without trusting them.

A file in the wrong place can be anything: a FIFO (a plain read blocks the event loop forever), a
symlink to /dev/zero (a read never ends), 300 MB (read whole before a size check), or JSON nested
a million levels deep (RecursionError, which is not a ValueError). Every reader here opens without
blocking, accepts regular files only, checks the size before reading and reads at most the limit.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any


class FileProblem(ValueError):
    """A local file the agent will not read; the message says why, never what it holds."""


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def read_small_file(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The whole file and its status. Raises FileNotFoundError if it is missing, FileProblem if it is
    not a regular file or larger than `limit` bytes, OSError if it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise FileProblem(f"{path}: {_KINDS.get(stat.S_IFMT(status.st_mode), 'not a regular file')}, "
                              "not a regular file")
        if status.st_size > limit:
            raise FileProblem(f"{path}: {status.st_size} bytes, larger than {limit}")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileProblem(f"{path}: grew past {limit} bytes while it was read")
        return b"".join(chunks), status
    finally:
        os.close(fd)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads_json(data: bytes | str) -> Any:
    """json.loads that refuses NaN and Infinity (they pass every range check) and turns too deep
    nesting into a ValueError instead of a RecursionError."""
    try:
        return json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Temp file, fsync, rename: a reader sees the old file or the new one, never half of either.
    `mode` before the umask; 0o600 for what may hold secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # A temp file left by a crash keeps its own mode if opened again: start from a new one.
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
