"""Random-number-generator state: seed, capture and restore, for exact resumption.

A resumed run draws the same dropout masks, batch order and scheduled-sampling coins as an
uninterrupted one only if every generator it uses continues from where it stopped. The state is
split into tensors (stored in safetensors) and plain JSON, so a checkpoint never needs pickle:

* ``torch``: the CPU generator, ``torch.get_rng_state()``, a (5056,) uint8 tensor;
* ``python``: the ``random`` module's Mersenne Twister, ``random.getstate()`` as JSON;
* ``numpy``: numpy's legacy global generator, only when numpy has been imported (its 624 key
  words as an int64 tensor, the position and cached Gaussian in JSON).

* ``cuda.N``: the generator of GPU N, when CUDA has been initialised in this process
  (``torch.cuda.get_rng_state(N)``); restored where that GPU exists, so a run trained on a GPU
  resumes on the CPU (its CUDA states are then unused) and the other way round.
"""

from __future__ import annotations

import random
import sys

import torch
from torch import Tensor

from seqlab.errors import CheckpointError

__all__ = ["capture_rng_state", "restore_rng_state", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed torch, ``random`` and (if imported) numpy's global generator with ``seed``."""
    torch.manual_seed(seed)
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % 2**32)


def capture_rng_state() -> tuple[dict[str, Tensor], dict]:
    """Snapshot the global generators.

    Returns:
        ``(tensors, json_part)``: ``tensors`` maps a generator name to a CPU tensor (``"torch"``,
        and ``"numpy"`` when numpy is loaded); ``json_part`` is JSON-serialisable
        (``{"python": [version, [625 ints], gauss_next], "numpy": {...}}``).
    """
    version, internal, gauss_next = random.getstate()
    tensors: dict[str, Tensor] = {"torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):
            tensors[f"cuda.{i}"] = torch.cuda.get_rng_state(i).cpu()
    json_part: dict = {"python": [version, list(internal), gauss_next]}
    if "numpy" in sys.modules:
        kind, keys, pos, has_gauss, cached = sys.modules["numpy"].random.get_state()
        tensors["numpy"] = torch.from_numpy(keys.astype("int64"))
        json_part["numpy"] = {
            "kind": kind,
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    return tensors, json_part


def restore_rng_state(tensors: dict[str, Tensor], json_part: dict) -> None:
    """Put the global generators back into a state from :func:`capture_rng_state`.

    Raises:
        CheckpointError: the state lacks the torch or python generator.
    """
    if "torch" not in tensors or "python" not in json_part:
        raise CheckpointError(
            f"RNG state is incomplete: expected tensors['torch'] and json['python'], "
            f"found tensors {sorted(tensors)} and json {sorted(json_part)}"
        )
    torch.set_rng_state(tensors["torch"].to(dtype=torch.uint8, device="cpu"))
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name, state in tensors.items():
        if name.startswith("cuda.") and int(name[5:]) < gpus:
            torch.cuda.set_rng_state(state.to(dtype=torch.uint8, device="cpu"), int(name[5:]))
    version, internal, gauss_next = json_part["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "numpy" in tensors and "numpy" in json_part:
        import numpy  # present: the state was captured with it

        info = json_part["numpy"]
        keys = tensors["numpy"].numpy().astype(numpy.uint32)
        numpy.random.set_state((info["kind"], keys, info["pos"], info["has_gauss"], info["cached_gaussian"]))
