"""Errors a user can act on.

Every error raised for bad input derives from :class:`SeqlabError`; the CLI prints its message
(without a traceback) and exits with status 2. Messages name the file and line, the config key or
the path at fault, and say what was expected.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DataError", "SeqlabError"]


class SeqlabError(Exception):
    """Base class of all user-facing errors."""


class ConfigError(SeqlabError):
    """A configuration file or override is invalid.

    Args:
        key: dotted key at fault, e.g. ``"model.layers"`` (``None`` for the whole file).
        message: what was wrong and what was expected.
        path: the YAML file, when the error comes from one.
    """

    def __init__(self, key: str | None, message: str, path: str | None = None):
        self.key, self.path = key, path
        where = []
        if path:
            where.append(str(path))
        if key:
            where.append(f"key '{key}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class DataError(SeqlabError):
    """A data file is malformed.

    Args:
        path: the file at fault.
        line: 1-based line number, or ``None`` when the error is about the whole file.
        message: what was wrong and what was expected.
    """

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line = str(path), line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


class CheckpointError(SeqlabError):
    """A run folder or checkpoint is missing, incomplete or from an incompatible version."""
