"""Dynamic batching: concurrent requests for one model decoded together, off the event loop.

Each served model has one :class:`Batcher`, which owns one worker thread; every call into that
model runs there, so the event loop never waits on inference and the model is never entered from
two threads at once. A request is a :class:`Job` with a *key*: jobs whose keys are equal (same
model, same decoding options, deterministic decoding) may be merged into one call. The worker
takes the oldest job, then gathers more jobs with the same key for at most ``wait`` seconds or
until ``max_batch`` texts, decodes them as one batch, and hands each job its share of the results.
Jobs with another key wait, in arrival order, for a later round; a job with key ``None`` (a
stream, a seeded sample, an explanation) always runs alone.

With ``max_batch=1`` every request is decoded alone, one after another: the baseline
``benchmarks/serve_load.py`` compares against.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batcher", "Job"]


@dataclass
class Job:
    """Work for a model's thread.

    Attributes:
        key: jobs with equal, non-None keys may be merged; None runs alone.
        texts: the inputs; a merged call receives the concatenated texts of its jobs.
        run: ``run(texts) -> list`` with one result per text (called in the worker thread).
        done: called in the worker thread with this job's results, or with the exception raised.
    """

    key: Hashable | None
    texts: list
    run: Callable[[list], list]
    done: Callable[[Any], None]
    _size: int = field(init=False)

    def __post_init__(self) -> None:
        self._size = max(1, len(self.texts))


class Batcher:
    """One worker thread that runs a model's jobs, merging compatible ones.

    Args:
        name: for the thread's name.
        max_batch: most texts decoded in one call (1 disables batching).
        wait: seconds the worker waits for more compatible jobs after the first one.
    """

    def __init__(self, name: str, *, max_batch: int = 32, wait: float = 0.005):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if wait < 0:
            raise ValueError(f"wait must be >= 0 seconds, got {wait}")
        self.max_batch, self.wait = max_batch, wait
        self.batches_run = 0
        """Calls into the model so far (a merged batch counts once)."""
        self.jobs_run = 0
        """Jobs (requests) run so far: ``jobs_run / batches_run`` is the mean batch size in requests."""
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._pending: deque[Job] = deque()  # taken from the queue but not yet run, oldest first
        self._thread = threading.Thread(target=self._work, name=f"seqlab-model-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    async def run(self, key: Hashable | None, texts: list, fn: Callable[[list], list]) -> list:
        """Run ``fn`` over ``texts`` in the worker (merged with compatible jobs) and await the results."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(result: Any) -> None:
            loop.call_soon_threadsafe(_settle, future, result)

        self.submit(Job(key, list(texts), fn, done))
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the jobs already submitted."""
        self._queue.put(None)
        self._thread.join(timeout)

    # ---------------------------------------------------------------- worker thread

    def _next(self, timeout: float | None) -> Job | None:
        """The oldest pending job, else one from the queue (blocking up to ``timeout``); raises Empty."""
        if self._pending:
            return self._pending.popleft()
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _gather(self, first: Job) -> list[Job]:
        """``first`` and the compatible jobs that arrive within the wait window, up to ``max_batch`` texts."""
        batch, size = [first], first._size
        if first.key is None or self.max_batch == 1:
            return batch
        # Compatible jobs already pending go first, in their order; the others keep their places.
        keep: deque[Job] = deque()
        while self._pending:
            job = self._pending.popleft()
            if job.key == first.key and size + job._size <= self.max_batch:
                batch.append(job)
                size += job._size
            else:
                keep.append(job)
        self._pending = keep
        deadline = time.monotonic() + self.wait
        while size < self.max_batch:
            try:
                job = self._queue.get(timeout=max(deadline - time.monotonic(), 1e-4))
            except queue.Empty:
                break
            if job is not None and job.key == first.key and size + job._size <= self.max_batch:
                batch.append(job)
                size += job._size
            else:
                self._pending.append(job)  # None (close) is kept too, so it ends the worker in order
                if job is None:
                    break
        return batch

    def _work(self) -> None:
        while True:
            job = self._next(None)
            if job is None:
                return
            batch = self._gather(job)
            texts = [t for j in batch for t in j.texts]
            try:
                results = job.run(texts)
            except BaseException as err:  # noqa: BLE001 - handed to every waiting request
                for j in batch:
                    j.done(err)
                continue
            finally:
                self.batches_run += 1
                self.jobs_run += len(batch)
            start = 0
            for j in batch:
                j.done(results[start:start + len(j.texts)])
                start += len(j.texts)


def _settle(future: asyncio.Future, result: Any) -> None:
    if future.done():  # the request was cancelled (client gone) meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
