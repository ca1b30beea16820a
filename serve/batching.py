"""Dynamic batching: concurrent requests grouped into one ONNX Runtime call, behind a bounded
queue (no model logic here: it calls ``Predictor.predict``).

A request enqueues its (already validated) node ids and awaits its rows. One worker task takes
requests off the queue until ``max_batch_nodes`` ids are gathered or ``max_wait_ms`` has
passed since the first, runs one prediction for all of them in a thread, and hands each request
its slice. When ``max_queue`` requests are already waiting, :meth:`DynamicBatcher.submit`
raises :class:`QueueFull` at once, so memory never grows with load (the HTTP layer answers
503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The batching queue holds ``max_queue`` requests already."""


@dataclass
class _Pending:
    ids: list
    future: asyncio.Future
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.ids)


class DynamicBatcher:
    """Group concurrent ``predict`` calls (see module docstring).

    Args:
        predictor: a :class:`~hashembed.serve.Predictor` (thread-safe ``predict``).
        max_batch_nodes: a batch closes once it holds this many ids (the request that
            crosses the bound is still included; a larger request runs alone).
        max_wait_ms: how long the first request of a batch waits for company.
        max_queue: requests waiting at most before :class:`QueueFull`.
        on_batch: ``on_batch(num_ids)`` after each call (metrics).
    """

    def __init__(self, predictor, max_batch_nodes: int = 4096, max_wait_ms: float = 2.0,
                 max_queue: int = 1024, on_batch=None):
        self.predictor = predictor
        self.max_batch_nodes = max_batch_nodes
        self.max_wait = max_wait_ms / 1e3
        self.max_queue = max_queue
        self.on_batch = on_batch or (lambda size: None)
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        # one thread of its own: batches never wait behind other work of the event loop's pool
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashembed-batch")

    @property
    def depth(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker (graceful shutdown)."""
        if self._queue is not None:
            await self._queue.join()
        if self._worker is not None:
            self._worker.cancel()
        self._pool.shutdown(wait=False)

    async def submit(self, ids: list):
        """The prediction for ``ids`` (a :class:`~hashembed.serve.Prediction`)."""
        if self._queue is None:
            raise RuntimeError("DynamicBatcher.start() was not called")
        pending = _Pending(ids, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFull() from None
        return await pending.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            total = batch[0].size
            deadline = loop.time() + self.max_wait
            while total < self.max_batch_nodes:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(item)
                total += item.size
            ids = [i for pending in batch for i in pending.ids]
            try:
                result = await loop.run_in_executor(self._pool, self.predictor.predict, ids)
                self.on_batch(len(ids))
                start = 0
                for pending in batch:
                    stop = start + pending.size
                    part = type(result)(np.asarray(pending.ids, dtype=object),
                                        result.logits[start:stop], result.embeddings[start:stop],
                                        result.class_names)
                    if not pending.future.cancelled():
                        pending.future.set_result(part)
                    start = stop
            except Exception as error:  # hand the failure to every waiting request
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
            finally:
                for _ in batch:
                    self._queue.task_done()
