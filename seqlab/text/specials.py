"""Special tokens shared by every tokenizer and model.

Every vocabulary starts with the same four entries, so models, losses and decoders can rely on
fixed ids: ``<pad>`` = 0 (ignored by the loss and masked in attention), ``<sos>`` = 1 (first decoder
input), ``<eos>`` = 2 (ends a sentence; decoding stops there), ``<unk>`` = 3.

A tokenizer may reserve further specials after them (ids 4, 5, ...), such as :data:`SEP`, the
separator between the turns of a chat context; :func:`check_reserved` says which names qualify.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
SEP = "<sep>"
"""The separator between the turns of a chat context (a reserved special)."""

_SPECIAL_NAME = re.compile(r"<[A-Za-z0-9_|-]+>")


def check_reserved(names: Sequence[str]) -> tuple[str, ...]:
    """Validate reserved special names: ``<word>`` shapes, distinct, not one of the four fixed ones.

    Raises:
        ValueError: naming the offending entry.
    """
    names = tuple(names)
    for name in names:
        if not isinstance(name, str) or not _SPECIAL_NAME.fullmatch(name):
            raise ValueError(f"reserved special {name!r} must look like <name> (letters, digits, _ | -)")
        if name in SPECIALS:
            raise ValueError(f"{name!r} is already one of the fixed specials {SPECIALS}")
    if len(set(names)) != len(names):
        raise ValueError(f"reserved specials repeat an entry: {list(names)}")
    return names
