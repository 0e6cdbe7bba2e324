"""Dynamic batching: which jobs the worker merges, and that each gets its own results back."""

from __future__ import annotations

import threading

import pytest

from seqlab.serve.batcher import Batcher, Job


class Recorder:
    """A model call that records the batches it sees; the first call waits for ``gate``."""

    def __init__(self):
        self.calls: list[list] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, texts: list) -> list:
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(list(texts))
        if "boom" in texts:
            raise ValueError("boom")
        return [f"<{t}>" for t in texts]


def submit_all(batcher: Batcher, fn, jobs: list[tuple]) -> list[threading.Event]:
    """Submit ``(key, texts)`` jobs; returns an Event per job and the results list they fill."""
    results: list = [None] * len(jobs)
    events = []
    for i, (key, texts) in enumerate(jobs):
        ev = threading.Event()

        def done(r, i=i, ev=ev):
            results[i] = r
            ev.set()

        batcher.submit(Job(key, texts, fn, done))
        events.append(ev)
    return events, results


def blocked_batcher(**kwargs) -> tuple[Batcher, Recorder]:
    """A batcher whose worker is busy with a first job until the recorder's gate opens."""
    batcher = Batcher("test", **kwargs)
    fn = Recorder()
    batcher.submit(Job(None, ["first"], fn, lambda r: None))
    assert fn.entered.wait(10)
    return batcher, fn


def test_jobs_waiting_with_equal_keys_are_decoded_as_one_batch_and_split_back():
    batcher, fn = blocked_batcher(max_batch=8, wait=0.0)
    events, results = submit_all(batcher, fn, [("a", ["x", "y"]), ("b", ["p"]), ("a", ["z"]), (None, ["q"]),
                                               ("b", ["r"])])
    fn.gate.set()
    assert all(ev.wait(10) for ev in events)
    batcher.close()
    # Oldest first: the 'a' jobs together, then the 'b' jobs together, then the one that runs alone.
    assert fn.calls == [["first"], ["x", "y", "z"], ["p", "r"], ["q"]]
    assert results == [["<x>", "<y>"], ["<p>"], ["<z>"], ["<q>"], ["<r>"]]
    assert batcher.batches_run == 4


def test_a_batch_holds_at_most_max_batch_texts():
    batcher, fn = blocked_batcher(max_batch=3, wait=0.0)
    events, results = submit_all(batcher, fn, [("k", [str(i)]) for i in range(7)])
    fn.gate.set()
    assert all(ev.wait(10) for ev in events)
    batcher.close()
    assert fn.calls[1:] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert results == [[f"<{i}>"] for i in range(7)]


def test_max_batch_one_decodes_every_request_alone():
    batcher, fn = blocked_batcher(max_batch=1, wait=0.0)
    events, _ = submit_all(batcher, fn, [("k", ["a"]), ("k", ["b"])])
    fn.gate.set()
    assert all(ev.wait(10) for ev in events)
    batcher.close()
    assert fn.calls[1:] == [["a"], ["b"]]


def test_an_error_reaches_every_job_of_its_batch_and_the_worker_goes_on():
    batcher, fn = blocked_batcher(max_batch=8, wait=0.0)
    events, results = submit_all(batcher, fn, [("k", ["boom"]), ("k", ["x"]), ("other", ["y"])])
    fn.gate.set()
    assert all(ev.wait(10) for ev in events)
    batcher.close()
    assert isinstance(results[0], ValueError) and results[1] is results[0]
    assert results[2] == ["<y>"]


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher("x", max_batch=0)
    with pytest.raises(ValueError, match="wait"):
        Batcher("x", wait=-1)
