"""The server's conversation memory: bounded in turns and in count, forgotten when idle."""

from __future__ import annotations

from seqlab.serve.conversations import Conversations


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_history_keeps_the_latest_whole_exchanges():
    store = Conversations(max_conversations=10, max_turns=5, ttl=60, clock=Clock())
    cid, history = store.history(None)
    assert history == [] and len(cid) == 32
    for i in range(4):
        store.add(cid, f"q{i}", f"a{i}")
    # 5 turns allowed: the last two exchanges (4 turns), so turns still alternate user/model.
    assert store.history(cid) == (cid, ["q2", "a2", "q3", "a3"])


def test_the_least_recently_used_conversation_is_forgotten_first():
    clock = Clock()
    store = Conversations(max_conversations=2, max_turns=8, ttl=60, clock=clock)
    for cid in ("a", "b"):
        store.add(cid, "hi", "hello")
    clock.now = 1
    store.add("a", "again", "yes")  # 'a' is now the most recent
    store.add("c", "hi", "hello")
    assert len(store) == 2
    assert store.history("b")[1] == [] and store.history("a")[1] == ["hi", "hello", "again", "yes"]


def test_an_idle_conversation_expires_after_the_ttl():
    clock = Clock()
    store = Conversations(max_conversations=5, max_turns=8, ttl=10, clock=clock)
    store.add("old", "hi", "hello")
    clock.now = 5
    store.add("new", "hi", "hello")
    clock.now = 10
    assert store.history("old")[1] == [] and store.history("new")[1] == ["hi", "hello"]
    clock.now = 15
    assert len(store) == 0
