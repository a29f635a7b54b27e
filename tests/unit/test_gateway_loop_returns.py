"""LoopReturns: outcomes settled on another thread reach their awaiting coroutines, a burst
of them in one wake-up of the loop."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from services.gateway.loop_returns import LoopReturns
from shared.errors import PublishNacked


def test_a_burst_settled_on_a_thread_wakes_the_loop_once() -> None:
    async def main() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        returns = LoopReturns(loop)
        wakes = 0
        real = loop.call_soon_threadsafe

        def counting(callback, *args):  # type: ignore[no-untyped-def]
            nonlocal wakes
            wakes += 1
            return real(callback, *args)

        setattr(loop, "call_soon_threadsafe", counting)  # noqa: B010 (mypy: a method, replaced)
        futures: list[Future[None]] = [Future() for _ in range(20)]
        waiters = [returns.watch(f) for f in futures]

        def settle_all() -> None:  # as a publisher thread settles one batch
            for i, f in enumerate(futures):
                if i % 5 == 4:
                    f.set_exception(PublishNacked(f"job {i} nacked"))
                else:
                    f.set_result(None)

        thread = threading.Thread(target=settle_all)
        thread.start()
        thread.join()  # blocks the loop: the whole burst is settled before it can drain
        outcomes = await asyncio.gather(*waiters, return_exceptions=True)
        return [type(o).__name__ if o else "ok" for o in outcomes], wakes

    outcomes, wakes = asyncio.run(main())
    assert outcomes == (["ok"] * 4 + ["PublishNacked"]) * 4
    assert wakes == 1


def test_a_waiter_given_up_leaves_the_threads_future_alone() -> None:
    async def main() -> tuple[bool, bool]:
        returns = LoopReturns(asyncio.get_running_loop())
        future: Future[None] = Future()
        waiter = returns.watch(future)
        waiter.cancel()  # the client went away
        future.set_running_or_notify_cancel()
        future.set_result(None)  # the job was published all the same
        await asyncio.sleep(0.01)  # the drain runs and skips the cancelled waiter
        return future.cancelled(), waiter.cancelled()

    assert asyncio.run(main()) == (False, True)


def test_a_future_cancelled_before_any_thread_took_it_cancels_its_waiter() -> None:
    async def main() -> None:
        returns = LoopReturns(asyncio.get_running_loop())
        future: Future[None] = Future()
        waiter = returns.watch(future)
        assert future.cancel()
        await waiter

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())


def test_a_future_already_settled_when_watched_still_returns() -> None:
    async def main() -> None:
        returns = LoopReturns(asyncio.get_running_loop())
        future: Future[None] = Future()
        future.set_exception(PublishNacked("queue full"))
        await asyncio.wait_for(returns.watch(future), 1)

    with pytest.raises(PublishNacked, match="queue full"):
        asyncio.run(main())
