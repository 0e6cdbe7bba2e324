"""Conversations for the chat task: readers, splits by conversation, and context building.

A chatbot is a sequence-to-sequence model from a context to a reply. A conversation is a list of
turns, and the turns the bot says are the targets; for reply i the encoder input is

    context_i = turn_{i-k} <sep> ... <sep> turn_{i-1}

the previous k + 1 turns (the message and the k turns before it; k = ``data.context_turns``,
0 = the message alone), joined with the reserved special ``<sep>``
(:data:`~seqlab.text.specials.SEP`). A context longer than the model accepts loses its *oldest*
turns first, then its oldest tokens (:func:`fit_context`), the opposite of a translation input,
which loses its end.

Formats (:func:`read_conversations`):

* the lessons' two aligned files ``[human_text.txt, robot_text.txt]``: line i of the robot file
  answers line i of the human file, and a human line starting with ``[start]`` opens a new
  conversation (the marker is removed); the robot lines are the targets;
* JSONL, one conversation a line: ``{"turns": ["hi", "hello!", ...]}``; every turn after the
  first is a target;
* the chatterbot-corpus YAML format: ``categories: [...]`` and ``conversations:`` a list of
  lists of turns; every turn after the first is a target;
* ``builtin:synthetic-dialogs`` (``-dev``, ``-test``): :mod:`seqlab.data.synthetic_dialogs`.

Dev and test data are split off *by conversation* (:func:`split_conversations`), never by line, so
no turn of a held-out conversation is seen in training.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from seqlab.data.readers import Spec, _decode, _json_lines, _Problems, _raw_lines
from seqlab.data.synthetic_dialogs import builtin_dialogs
from seqlab.errors import DataError
from seqlab.text.specials import SEP

__all__ = [
    "BUILTIN_DIALOGS",
    "Conversation",
    "chat_splits",
    "context_text",
    "dialog_pairs",
    "fit_context",
    "read_conversations",
    "split_conversations",
]

BUILTIN_DIALOGS = {
    "builtin:synthetic-dialogs": "train",
    "builtin:synthetic-dialogs-dev": "dev",
    "builtin:synthetic-dialogs-test": "test",
}

_START = re.compile(r"^\s*(\[start\][\s.]*)+")
_JSONL_EXPECTED = 'expected a JSON object like {"turns": ["hello", "hi! how are you?", ...]}'


@dataclass
class Conversation:
    """One conversation.

    Attributes:
        turns: the turns in order (a blank turn stands for one that had no text).
        replies: indices of the turns the bot says, the training targets.
        origin: where it starts, e.g. ``"human_text.txt:12"`` (for messages).
    """

    turns: list[str]
    replies: list[int]
    origin: str = ""


def _every_turn(turns: list[str], origin: str) -> Conversation:
    return Conversation(turns, list(range(1, len(turns))), origin)


def _read_human_robot(human_path: str, robot_path: str, problems: _Problems) -> list[Conversation]:
    human, robot = _raw_lines(human_path), _raw_lines(robot_path)
    if len(human) != len(robot):
        raise DataError(human_path, None, f"has {len(human)} lines but {robot_path} has {len(robot)}; expected two "
                        "aligned files (line i of the robot file answers line i of the human file)")
    conversations: list[Conversation] = []
    for (number, h_off, h_raw), (_, r_off, r_raw) in zip(human, robot):
        h = _decode(h_raw, number, h_off, human_path, problems)
        r = _decode(r_raw, number, r_off, robot_path, problems) if h is not None else None
        if h is None or r is None:
            continue
        opens = _START.match(h) is not None
        h, r = _START.sub("", h).strip(), r.strip()
        if not r:
            problems.report(number, f"empty reply; expected the answer to line {number} of {human_path}", robot_path)
            continue
        if opens or not conversations:
            conversations.append(Conversation([], [], f"{human_path}:{number}"))
        conv = conversations[-1]
        conv.turns += [h, r]
        conv.replies.append(len(conv.turns) - 1)
    return conversations


def _read_turns_jsonl(path: str, problems: _Problems) -> list[Conversation]:
    conversations = []
    for number, record in _json_lines(path, problems, _JSONL_EXPECTED):
        turns = record.get("turns") if isinstance(record, dict) else None
        if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) for t in turns):
            problems.report(number, f"no list of at least two string turns under 'turns'; {_JSONL_EXPECTED}")
            continue
        conversations.append(_every_turn([t.strip() for t in turns], f"{path}:{number}"))
    return conversations


def _read_chatterbot(path: str) -> list[Conversation]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, f"not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("conversations"), list):
        raise DataError(path, None, "expected the chatterbot-corpus format: a mapping with 'categories' and "
                        "'conversations', a list of lists of turns")
    conversations = []
    for i, turns in enumerate(data["conversations"]):
        if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, (str, int, float)) for t in turns):
            raise DataError(path, None, f"conversation {i + 1} is not a list of at least two turns")
        conversations.append(_every_turn([str(t).strip() for t in turns], f"{path}#{i + 1}"))
    return conversations


def read_conversations(spec: Spec, *, format: str = "auto", on_error: str = "raise") -> list[Conversation]:
    """Read conversations from any format of the module docstring.

    Args:
        spec: ``[human.txt, robot.txt]``, a ``.jsonl`` file, a ``.yml``/``.yaml`` chatterbot file,
            or a built-in name from :data:`BUILTIN_DIALOGS`.
        format: ``auto`` (by the spec's shape and suffix), ``text`` (two aligned files), ``jsonl``
            or ``yaml``.
        on_error: ``raise`` at the first malformed line, or ``skip`` it and warn once.

    Raises:
        DataError: naming the file (and line) at fault; misaligned files name both files and their
            line counts.
    """
    if isinstance(spec, str) and spec.startswith("builtin:"):
        if spec not in BUILTIN_DIALOGS:
            raise DataError(spec, None, f"unknown built-in dialogs; expected one of {', '.join(BUILTIN_DIALOGS)}")
        return [Conversation(turns, list(range(1, len(turns), 2)), f"{spec}#{i + 1}")  # the bot speaks second
                for i, turns in enumerate(builtin_dialogs(BUILTIN_DIALOGS[spec]))]
    if format == "auto":
        if not isinstance(spec, (str, os.PathLike)):
            format = "text"
        else:
            suffix = Path(spec).suffix.lower()
            format = "yaml" if suffix in (".yml", ".yaml") else "jsonl" if suffix in (".jsonl", ".json") else "?"
            if format == "?":
                raise DataError(str(spec), None, "cannot tell the dialog format: expected [human.txt, robot.txt], "
                                "a .jsonl file of {\"turns\": [...]} or a chatterbot .yml file")
    if format == "text":
        if isinstance(spec, (str, os.PathLike)) or len(spec) != 2:
            raise DataError(str(spec), None, "expected a list of two aligned files [human_text.txt, robot_text.txt]")
        human, robot = (str(p) for p in spec)
        problems = _Problems(f"{human} + {robot}", on_error)
        return problems.finish(_read_human_robot(human, robot, problems))
    if format == "jsonl":
        problems = _Problems(str(spec), on_error)
        return problems.finish(_read_turns_jsonl(str(spec), problems))
    if format == "yaml":
        conversations = _read_chatterbot(str(spec))
        if not conversations:
            raise DataError(str(spec), None, "no conversations found")
        return conversations
    raise DataError(str(spec), None, f"format {format!r} does not hold dialogs; expected auto, text, jsonl or yaml")


def split_conversations(conversations: list[Conversation], fraction: float, seed: int
                        ) -> tuple[list[Conversation], list[Conversation]]:
    """Hold out about ``fraction`` of the conversations (at least one), chosen with ``seed``.

    Returns:
        (kept, held_out), each in the original order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    if len(conversations) < 2:
        raise ValueError(f"cannot hold out part of {len(conversations)} conversation(s)")
    n_out = min(len(conversations) - 1, max(1, round(fraction * len(conversations))))
    held = set(random.Random(seed).sample(range(len(conversations)), n_out))
    return ([c for i, c in enumerate(conversations) if i not in held],
            [c for i, c in enumerate(conversations) if i in held])


def context_text(turns: list[str], context_turns: int) -> str:
    """The encoder input for a reply to ``turns[-1]``: the last ``context_turns + 1`` non-blank turns
    joined with `` <sep> `` (oldest first)."""
    if context_turns < 0:
        raise ValueError(f"context_turns must be >= 0, got {context_turns}")
    kept = [t for t in turns if t.strip()][-(context_turns + 1):]
    return f" {SEP} ".join(kept)


def dialog_pairs(conversations: list[Conversation], context_turns: int) -> list[tuple[str, str]]:
    """(context, reply) text pairs of every reply that has a non-empty context."""
    pairs = []
    for conv in conversations:
        for i in conv.replies:
            context = context_text(conv.turns[:i], context_turns)
            if context and conv.turns[i]:
                pairs.append((context, conv.turns[i]))
    return pairs


def fit_context(ids: list[int], limit: int, sep_id: int) -> list[int]:
    """Cut a context to at most ``limit`` ids from the left: whole oldest turns first, then tokens.

    Turns are separated by ``sep_id``; while the context is too long and holds a separator, the
    oldest turn and its separator go. A single turn still too long keeps its last ``limit`` ids.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    while len(ids) > limit and sep_id in ids:
        ids = ids[ids.index(sep_id) + 1:]
    return ids[-limit:] if len(ids) > limit else ids


def chat_splits(data, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(context, reply) pairs for training and dev from a ``data`` config section.

    Dev pairs come from ``data.dev`` when given, else from ``data.holdout`` of the training
    conversations held out with ``seed`` (:func:`split_conversations`), else there are none.
    """
    train = read_conversations(data.train, format=data.format, on_error=data.on_error)
    dev: list[Conversation] = []
    if data.dev:
        dev = read_conversations(data.dev, format=data.format, on_error=data.on_error)
    elif data.holdout > 0:
        train, dev = split_conversations(train, data.holdout, seed)
    return dialog_pairs(train, data.context_turns), dialog_pairs(dev, data.context_turns)
