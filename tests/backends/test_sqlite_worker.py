"""The SQLite store's worker thread: order, errors, cancellation, loops, shared wake-ups."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import pytest

from sessionstore import open_store
from sessionstore.backends.sqlite import worker as worker_module
from sessionstore.backends.sqlite.worker import Worker


@pytest.fixture
def worker() -> object:
    running = Worker("test-worker")
    yield running
    running.stop()
    running.join(5)


async def test_calls_run_in_order_each_with_its_own_outcome(worker: Worker) -> None:
    ran: list[int] = []

    def step(n: int) -> int:
        ran.append(n)
        if n % 7 == 3:
            raise ValueError(f"call {n}")
        return n * n

    results = await asyncio.gather(
        *(worker.call(lambda n=n: step(n)) for n in range(100)), return_exceptions=True
    )
    assert ran == list(range(100))
    for n, result in enumerate(results):
        if n % 7 == 3:
            assert isinstance(result, ValueError)
            assert str(result) == f"call {n}"
        else:
            assert result == n * n


async def test_a_call_cancelled_before_it_starts_never_runs(worker: Worker) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(5)

    first = asyncio.ensure_future(worker.call(blocker))
    await asyncio.to_thread(started.wait, 5)
    queued = asyncio.ensure_future(worker.call(lambda: ran.append("queued")))
    await asyncio.sleep(0)  # let it reach the queue
    queued.cancel()
    release.set()
    await first
    assert await worker.call(lambda: "after") == "after"
    assert ran == []
    assert queued.cancelled()


def test_calls_from_several_loops_and_threads_get_their_own_answers(worker: Worker) -> None:
    answers: dict[int, list[int]] = {}

    def thread_main(t: int) -> None:
        async def calls() -> list[int]:
            return list(
                await asyncio.gather(*(worker.call(lambda i=i: t * 1000 + i) for i in range(50)))
            )

        answers[t] = asyncio.run(calls())

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == {t: [t * 1000 + i for i in range(50)] for t in range(4)}


async def test_waiting_calls_share_one_wake_up_of_their_loop(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    wake_ups: list[int] = []
    answer = worker_module._answer

    def counted(outcomes: list[worker_module._Outcome]) -> None:
        wake_ups.append(len(outcomes))
        answer(outcomes)

    monkeypatch.setattr(worker_module, "_answer", counted)
    started, release = threading.Event(), threading.Event()
    first = asyncio.ensure_future(worker.call(lambda: (started.set(), release.wait(5))))
    await asyncio.to_thread(started.wait, 5)
    waiting = [asyncio.ensure_future(worker.call(lambda i=i: i)) for i in range(50)]
    await asyncio.sleep(0)
    release.set()
    await first
    assert await asyncio.gather(*waiting) == list(range(50))
    assert wake_ups[0] == 1  # the blocker, alone in its drain
    assert sum(wake_ups[1:]) == 50
    assert len(wake_ups) <= 3  # the 50 that waited came back together, not one by one


async def test_a_stopped_worker_refuses_calls_and_its_thread_ends() -> None:
    worker = Worker("test-stopped")
    assert await worker.call(lambda: 1) == 1
    worker.stop()
    worker.join(5)
    with pytest.raises(RuntimeError, match="stopped"):
        await worker.call(lambda: 2)


async def test_a_store_nobody_closed_stops_its_thread_when_collected(tmp_path: Path) -> None:
    def workers() -> int:
        return sum(t.name == "sessionstore-sqlite" and t.is_alive() for t in threading.enumerate())

    before = workers()
    store = open_store(f"sqlite:///{tmp_path / 'left.db'}")
    await store.create_qa_entry("s", "u", "q", "a")
    assert workers() == before + 1
    del store
    gc.collect()  # its finalizer stops the worker, which then ends its thread
    for thread in threading.enumerate():
        if thread.name == "sessionstore-sqlite":
            thread.join(5)
    assert workers() == before
