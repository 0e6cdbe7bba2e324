"""Files written all or nothing, and JSON read with errors that name the file.

The lowest layer of seqlab besides :mod:`seqlab.errors`: the tokenizer, the config, the data
downloads, checkpoints and the API all write and read their files through here, so none of
them needs another package for it.

Atomic write: the data goes to a temporary file in the same directory, is flushed and fsynced,
and the temporary file is renamed over the target (``os.replace``, atomic on POSIX and Windows);
on any error the temporary file is removed and the previous file is left untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from seqlab.errors import CheckpointError

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_dir", "read_json", "write_durable"]


def fsync_dir(directory: str | Path) -> None:
    """Make a rename inside ``directory`` durable (best effort: not every OS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_durable(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (not atomic: for files inside a folder swapped in whole)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, all or nothing (see the module docstring).

    Missing parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` for text (newlines written as given)."""
    atomic_write_bytes(path, text.encode(encoding))


def read_json(path: str | Path, what: str) -> Any:
    """The JSON value in ``path``; a missing, unreadable or invalid file raises CheckpointError naming it.

    Args:
        path: the file.
        what: what the file should be, for the message (``"a seqlab tokenizer JSON file"``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found; expected {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{path}: not UTF-8 text ({err.reason}); expected {what}") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror}); expected {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); expected {what}") from None
