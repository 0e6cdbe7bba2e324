"""Checkpoints as folders of safetensors + JSON, written atomically; nothing executes on load.

``save_checkpoint(run / "checkpoints", "last", ...)`` writes::

    checkpoints/last/
        model.safetensors      model.state_dict(); tied weights stored once (see below)
        optimizer.safetensors  the optimiser's state tensors, keys "state.{param_idx}.{name}"
        trainer.safetensors    tensors of the scheduler / trainer state ("scheduler.*", "state.*")
                               and of the RNG state ("rng.torch", "rng.numpy")
        trainer.json           everything else: param_groups, scheduler state_dict, trainer state,
                               the JSON part of the RNG state
        meta.json              the caller's meta (config, metrics, ...), "format" and "versions"

Only safetensors and JSON are read back, so loading a checkpoint cannot run code (no pickle).
Non-tensor values are stored as JSON with three tags where JSON alone would lose the type:
``{"__tensor__": key}`` (a tensor, stored under ``key`` in the matching safetensors file),
``{"__tuple__": [...]}`` and ``{"__items__": [[k, v], ...]}`` (a dict with non-string keys).

Tied weights: ``state_dict()`` lists a shared Parameter under every name (e.g. the target
embedding and the output projection), and safetensors refuses tensors that share memory. Each
distinct tensor is stored once under its first name; the other names go into the file's
metadata (``"seqlab.aliases"``: ``{"alias": "stored name"}``) and are filled back in on load.
Tensors that overlap without being the same view are stored as independent copies.

Atomicity: a checkpoint is written into ``directory/.NAME.tmp-XXXXXXXX/`` and then swapped in:
the old ``NAME/`` is renamed to ``.NAME.old/``, the new folder renamed to ``NAME/``, the backup
deleted. A crash at any moment leaves either the old or the new complete checkpoint: when only
the backup exists, :func:`load_checkpoint` (and the next save) renames it back. One writer per
checkpoint name at a time is assumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

from seqlab.errors import CheckpointError
from seqlab.io import atomic_write_bytes, atomic_write_text, fsync_dir, read_json, write_durable

__all__ = [
    "CHECKPOINT_FORMAT",
    "RUN_FORMAT",
    "atomic_write_bytes",
    "check_run_format",
    "atomic_write_text",
    "list_checkpoints",
    "load_checkpoint",
    "read_meta",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "seqlab-checkpoint/1"
RUN_FORMAT = "seqlab-run/1"
"""The layout of a run folder (config, tokenizers, checkpoints); the trainer writes it into each
checkpoint's meta as ``run_format``, and readers (``seqlab.api``, ``--resume``) check it."""
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_TENSORS_FILE = "trainer.safetensors"
TRAINER_FILE = "trainer.json"
META_FILE = "meta.json"
_RESERVED_META = ("format", "rng_state", "trainer_state")
_ALIASES = "seqlab.aliases"
_TAGS = ("__tensor__", "__tuple__", "__items__")


# --------------------------------------------------------------------------------------------
# nested state <-> JSON skeleton + flat tensors


def _child(key: str, part: Any) -> str:
    return f"{key}.{part}" if key else str(part)


def _encode(value: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """JSON skeleton of ``value``; its tensors go into ``tensors`` under dotted paths from ``key``.

    E.g. an optimiser state_dict encoded from ``key=""`` stores ``state[0]["exp_avg"]`` as
    ``"state.0.exp_avg"``.
    """
    if isinstance(value, Tensor):
        if key in tensors:
            raise CheckpointError(f"two values map to the same tensor key {key!r}")
        tensors[key] = value.detach().cpu()
        return {"__tensor__": key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, _child(key, i), tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, _child(key, i), tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(t in value for t in _TAGS):
            return {k: _encode(v, _child(key, k), tensors) for k, v in value.items()}
        items = []
        for k, v in value.items():
            if k is not None and not isinstance(k, (bool, int, float, str)):
                raise CheckpointError(f"cannot store a dict key of type {type(k).__name__} at {key!r}")
            items.append([k, _encode(v, _child(key, k), tensors)])
        return {"__items__": items}
    raise CheckpointError(
        f"cannot store a value of type {type(value).__name__} at {key!r} (only tensors and JSON data)"
    )


def _decode(value: Any, tensors: dict[str, Tensor], source: Path) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v, tensors, source) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        key = value["__tensor__"]
        if key not in tensors:
            raise CheckpointError(f"{source}: refers to tensor {key!r}, which is not stored")
        return tensors[key]
    if "__tuple__" in value:
        return tuple(_decode(v, tensors, source) for v in value["__tuple__"])
    if "__items__" in value:
        return {k: _decode(v, tensors, source) for k, v in value["__items__"]}
    return {k: _decode(v, tensors, source) for k, v in value.items()}


# --------------------------------------------------------------------------------------------
# safetensors files with shared tensors


def _dedupe_shared(tensors: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Split ``tensors`` into independent tensors to store and ``{alias: stored name}``.

    Two names holding the very same view (same memory, shape, strides, dtype) become one stored
    tensor and an alias; tensors that overlap in other ways are stored as copies.
    """
    by_storage: dict[tuple, list[str]] = {}
    for name, t in tensors.items():
        if t.numel() == 0 or t.untyped_storage().data_ptr() == 0:
            by_storage[("empty", name)] = [name]
        else:
            by_storage.setdefault((t.device, t.untyped_storage().data_ptr()), []).append(name)
    stored: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    for names in by_storage.values():
        first_of_view: dict[tuple, str] = {}
        for name in names:
            t = tensors[name]
            view = (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype)
            if view in first_of_view:
                aliases[name] = first_of_view[view]
            else:
                first_of_view[view] = name
        distinct = list(first_of_view.values())
        for name in distinct:
            t = tensors[name].detach().cpu()
            stored[name] = t.clone() if len(distinct) > 1 else t.contiguous()
    return stored, aliases


def _tensors_to_bytes(tensors: dict[str, Tensor]) -> bytes:
    stored, aliases = _dedupe_shared(tensors)
    metadata = {"format": "pt", _ALIASES: json.dumps(aliases)}
    return safetensors.torch.save(stored, metadata=metadata)


def _read_tensors(path: Path) -> dict[str, Tensor]:
    """Read a safetensors file written by :func:`_tensors_to_bytes`; aliases become copies."""
    _require_file(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        aliases = json.loads(metadata.get(_ALIASES, "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid '{_ALIASES}' metadata ({err})") from None
    for alias, name in aliases.items():
        if name not in tensors:
            raise CheckpointError(f"{path}: alias {alias!r} refers to missing tensor {name!r}")
        tensors[alias] = tensors[name].clone()
    return tensors


# --------------------------------------------------------------------------------------------
# folders


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name:
        raise CheckpointError(f"invalid checkpoint name {name!r}: expected a plain folder name such as 'last'")


def _backup_dir(directory: Path, name: str) -> Path:
    return directory / f".{name}.old"


def _listing(directory: Path) -> str:
    if not directory.is_dir():
        return f"{directory} does not exist"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    return f"{directory} contains: {', '.join(entries)}" if entries else f"{directory} is empty"


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {_listing(path.parent)}")


def _recover(directory: Path, name: str) -> Path:
    """The folder holding checkpoint ``name``, after finishing an interrupted swap.

    Only the backup left (crash between the two renames): rename it back (or read it in place
    if that fails). Both left (crash before the backup was deleted): the new one is complete, so
    the backup is deleted.
    """
    final, backup = directory / name, _backup_dir(directory, name)
    if backup.is_dir():
        if final.is_dir():
            with contextlib.suppress(OSError):
                shutil.rmtree(backup)
        else:
            try:
                os.rename(backup, final)
            except OSError:
                return backup
    if not final.is_dir():
        found = list_checkpoints(directory)
        raise CheckpointError(
            f"no checkpoint {name!r} in {directory}; "
            + (f"checkpoints there: {', '.join(found)}" if found else _listing(directory))
        )
    return final


def _read_json(path: Path) -> Any:
    _require_file(path)
    return read_json(path, "a seqlab checkpoint JSON file")


def _versions() -> dict[str, str]:
    from seqlab import __version__

    return {
        "seqlab": __version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------------
# public API


def save_checkpoint(
    directory: str | Path,
    name: str,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    meta: dict,
    rng: tuple[dict[str, Tensor], dict] | None = None,
    trainer_state: dict | None = None,
) -> Path:
    """Write checkpoint ``directory/name/`` atomically (replacing an existing one).

    Args:
        directory: folder of checkpoints (created if needed).
        name: checkpoint name, a plain folder name (``"last"``, ``"best"``, ``"step-1000"``).
        model: its ``state_dict()`` goes to ``model.safetensors``.
        optimizer: optional; its ``state_dict()`` goes to ``optimizer.safetensors`` + ``trainer.json``.
        scheduler: optional LR scheduler (anything with ``state_dict()``).
        meta: JSON data for ``meta.json`` (config, metrics, ...); the keys ``format``,
            ``rng_state`` and ``trainer_state`` are reserved; ``versions`` is filled in if absent.
        rng: optional ``(tensors, json_part)`` from :func:`seqlab.training.rng.capture_rng_state`.
        trainer_state: optional loop state (step, epoch, best metric, ...): JSON data and tensors.

    Returns:
        The checkpoint folder ``directory/name``.
    """
    directory = Path(directory)
    _check_name(name)
    clash = [k for k in _RESERVED_META if k in meta]
    if clash:
        raise CheckpointError(f"meta key {clash[0]!r} is reserved (reserved: {', '.join(_RESERVED_META)})")
    meta_out = {"format": CHECKPOINT_FORMAT, **meta}
    meta_out.setdefault("versions", _versions())
    try:
        meta_text = json.dumps(meta_out, indent=2, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint meta must be JSON data: {err}") from None

    # everything is encoded before the first byte is written
    extra: dict[str, Tensor] = {}
    opt_tensors: dict[str, Tensor] = {}
    trainer = {
        "format": CHECKPOINT_FORMAT,
        "optimizer": _encode(optimizer.state_dict(), "", opt_tensors) if optimizer is not None else None,
        "scheduler": _encode(scheduler.state_dict(), "scheduler", extra) if scheduler is not None else None,
        "trainer_state": _encode(trainer_state, "state", extra) if trainer_state is not None else None,
        "rng": None,
    }
    if rng is not None:
        rng_tensors, rng_json = rng
        extra.update({f"rng.{k}": v.detach().cpu() for k, v in rng_tensors.items()})
        trainer["rng"] = {"tensors": sorted(rng_tensors), "json": rng_json}
    files = {
        MODEL_FILE: lambda: _tensors_to_bytes(model.state_dict()),
        TRAINER_TENSORS_FILE: lambda: _tensors_to_bytes(extra),
        TRAINER_FILE: lambda: json.dumps(trainer).encode("utf-8"),
        META_FILE: lambda: meta_text.encode("utf-8"),
    }
    if optimizer is not None:
        files[OPTIMIZER_FILE] = lambda: _tensors_to_bytes(opt_tensors)

    directory.mkdir(parents=True, exist_ok=True)
    if (directory / name).exists() or _backup_dir(directory, name).exists():
        _recover(directory, name)
    for stale in directory.glob(f".{name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = directory / f".{name}.tmp-{secrets.token_hex(4)}"
    os.mkdir(tmp)
    try:
        for filename, make in files.items():
            write_durable(tmp / filename, make())
        fsync_dir(tmp)
        _swap_into_place(tmp, directory / name, _backup_dir(directory, name))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory / name


def _swap_into_place(tmp: Path, final: Path, backup: Path) -> None:
    """Rename ``final`` -> ``backup``, ``tmp`` -> ``final``, then delete ``backup``."""
    had_old = final.exists()
    if had_old:
        os.rename(final, backup)
    try:
        os.rename(tmp, final)
    except BaseException:
        if had_old and not final.exists():
            with contextlib.suppress(OSError):
                os.rename(backup, final)
        raise
    fsync_dir(final.parent)
    if had_old:
        shutil.rmtree(backup, ignore_errors=True)


def read_meta(directory: str | Path, name: str) -> dict:
    """The ``meta.json`` of checkpoint ``directory/name``, after checking its format version."""
    _check_name(name)
    folder = _recover(Path(directory), name)
    path = folder / META_FILE
    meta = _read_json(path)
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != CHECKPOINT_FORMAT:
        what = f"format {found!r}" if found is not None else "no 'format' field"
        raise CheckpointError(f"{path}: found {what}, expected format {CHECKPOINT_FORMAT!r}")
    return meta


def check_run_format(run_dir: str | Path, checkpoint: str) -> None:
    """Raise CheckpointError unless checkpoint ``checkpoint`` of ``run_dir`` is of :data:`RUN_FORMAT`."""
    run_dir = Path(run_dir)
    found = read_meta(run_dir / "checkpoints", checkpoint).get("run_format")
    if found != RUN_FORMAT:
        raise CheckpointError(f"{run_dir}/checkpoints/{checkpoint}/meta.json: run folder format {found!r}, "
                              f"this seqlab reads {RUN_FORMAT!r}; retrain, or load it with the seqlab "
                              "version that wrote it")


def _first(items: list[str], sep: str, n: int = 5) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return sep.join(items[:n]) + more


def _upgrade_keys(model: nn.Module, saved: dict[str, Tensor]) -> None:
    """Rename, in place, weights that older seqlab versions stored in another layout.

    A module whose parameter layout changed defines ``upgrade_state_dict(state_dict, prefix)``
    (e.g. :meth:`seqlab.nn.attention.MultiHeadAttention.upgrade_state_dict`, which its own
    ``load_state_dict`` also calls, and :meth:`seqlab.models.transformer.TransformerSeq2Seq.upgrade_state_dict`);
    here it runs first so names are matched in the new layout.
    """
    for name, module in model.named_modules():
        upgrade = getattr(module, "upgrade_state_dict", None)
        if upgrade is not None:
            upgrade(saved, f"{name}." if name else "")


def _load_model(path: Path, model: nn.Module, strict: bool) -> None:
    saved = _read_tensors(path)
    _upgrade_keys(model, saved)
    expected = model.state_dict()
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in saved and saved[k].shape != expected[k].shape
    ]
    problems = []
    if shapes:
        problems.append("shape mismatch " + _first(shapes, "; "))
    if strict and missing:
        problems.append("missing keys " + _first(missing, ", "))
    if strict and unexpected:
        problems.append("unexpected keys " + _first(unexpected, ", "))
    if problems:
        raise CheckpointError(f"{path} does not match the model: " + "; ".join(problems))
    model.load_state_dict({k: v for k, v in saved.items() if k in expected}, strict=strict)


def load_checkpoint(
    directory: str | Path,
    name: str,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    strict: bool = True,
) -> dict:
    """Load checkpoint ``directory/name`` into ``model`` (and ``optimizer``, ``scheduler``).

    Weights are copied into the model's own parameters, so parameters the model ties together
    stay tied. Load the optimizer before stepping the scheduler (both are restored here).

    Args:
        directory: folder of checkpoints.
        name: checkpoint name.
        model: receives the weights (on its own device and dtype).
        optimizer: when given, receives the saved optimiser state (an error if none was saved).
        scheduler: when given, receives the saved scheduler state (an error if none was saved).
        strict: when False, missing and unexpected weight names are ignored (shapes must agree).

    Returns:
        The meta dict of ``meta.json``, plus ``"rng_state"``: ``(tensors, json_part)`` for
        :func:`seqlab.training.rng.restore_rng_state` or None, and ``"trainer_state"``: the
        ``trainer_state`` given to :func:`save_checkpoint` or None. The RNG is not restored here.

    Raises:
        CheckpointError: missing folder or file (naming the path and what is there), another
            format version, weights that do not fit the model, state that does not fit the
            optimiser or scheduler.
    """
    directory = Path(directory)
    meta = read_meta(directory, name)
    folder = _recover(directory, name)
    _load_model(folder / MODEL_FILE, model, strict)
    trainer = _read_json(folder / TRAINER_FILE)
    extra = _read_tensors(folder / TRAINER_TENSORS_FILE)
    source = folder / TRAINER_FILE
    for label, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        if trainer.get(label) is None:
            raise CheckpointError(f"{source}: the checkpoint has no {label} state (saved without one)")
        tensors = _read_tensors(folder / OPTIMIZER_FILE) if label == "optimizer" else extra
        try:
            obj.load_state_dict(_decode(trainer[label], tensors, source))
        except (ValueError, KeyError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"{source}: the saved {label} state does not fit this {label}: {err}") from None
    rng = trainer.get("rng")
    meta["rng_state"] = None
    if rng is not None:
        meta["rng_state"] = ({k: extra[f"rng.{k}"] for k in rng["tensors"]}, rng["json"])
    state = trainer.get("trainer_state")
    meta["trainer_state"] = _decode(state, extra, source) if state is not None else None
    return meta


def list_checkpoints(directory: str | Path) -> list[str]:
    """Names of the checkpoints in ``directory``, sorted; [] when it does not exist.

    A checkpoint whose swap was interrupted (only its backup left) is listed under its name.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = set()
    for p in directory.iterdir():
        if not p.is_dir():
            continue
        if not p.name.startswith(".") and (p / META_FILE).is_file():
            names.add(p.name)
        elif p.name.startswith(".") and p.name.endswith(".old") and (p / META_FILE).is_file():
            names.add(p.name[1:-4])
    return sorted(names)
