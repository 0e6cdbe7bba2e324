"""The server's memory of conversations: bounded in count and length, forgotten when idle.

A conversation is the list of its turns, alternately the user's and the model's, oldest first.
At most ``max_turns`` are kept (the oldest are dropped); at most ``max_conversations`` are kept
(the least recently used is dropped); one idle for ``ttl`` seconds is forgotten.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Conversations"]


class Conversations:
    """Histories by conversation id (used from the event loop's thread only)."""

    def __init__(self, *, max_conversations: int, max_turns: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_conversations, self.max_turns, self.ttl, self.clock = max_conversations, max_turns, ttl, clock
        self._items: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()  # id -> (last used, turns)

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def _expire(self) -> None:
        now = self.clock()
        while self._items:
            oldest, (used, _) = next(iter(self._items.items()))
            if now - used < self.ttl:
                break
            del self._items[oldest]

    def history(self, conversation_id: str | None) -> tuple[str, list[str]]:
        """The id (a new one when None) and a copy of its turns (empty when new or forgotten)."""
        self._expire()
        if conversation_id is None:
            conversation_id = uuid.uuid4().hex
        entry = self._items.get(conversation_id)
        return conversation_id, list(entry[1]) if entry else []

    def add(self, conversation_id: str, message: str, reply: str) -> int:
        """Append one exchange; returns the number of turns now kept."""
        self._expire()
        _, turns = self._items.pop(conversation_id, (0.0, []))
        keep = max(2, self.max_turns - self.max_turns % 2)  # whole exchanges, so turns still alternate
        turns = (turns + [message, reply])[-keep:]
        self._items[conversation_id] = (self.clock(), turns)  # most recently used last
        while len(self._items) > self.max_conversations:
            self._items.popitem(last=False)
        return len(turns)
