"""The I/O thread waiting a moment for the job it handed over (bridge.HandOver): a job done in
time gives its settling to the waiting thread itself, without waking the I/O loop and without
waiting for it; a later one goes through the loop; never both, never neither, however the
two threads race."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

from shared.errors import BrokerUnavailable
from shared.worker.bridge import HandOver, IoBridge


class CountingDoor:
    """A connection's thread-safe door that runs what it is given on a thread of its own,
    and counts how often it was used."""

    def __init__(self) -> None:
        self.used = 0

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        self.used += 1
        threading.Thread(target=fn, name="io-loop").start()


def thread_name() -> str:
    return threading.current_thread().name


def settle(bridge: IoBridge, hand_over: HandOver, ran: list[str]) -> None:
    """As a job's course does: hand the settling over, or else call it through the loop."""

    def settling() -> None:
        ran.append(thread_name())

    if not bridge.hand(settling, hand_over):
        bridge.call(settling)


def test_a_job_done_while_the_io_thread_waits_is_settled_by_that_thread() -> None:
    door = CountingDoor()
    bridge = IoBridge(door)
    hand_over = HandOver()
    ran: list[str] = []
    job = threading.Thread(target=settle, args=(bridge, hand_over, ran), name="job")
    job.start()
    job.join(5)  # the job thread has gone on before its settling ran: it did not wait
    assert not job.is_alive() and ran == []
    assert hand_over.take(5) is True
    assert ran == [threading.current_thread().name]
    assert hand_over.handed
    assert door.used == 0


def test_a_job_done_after_the_wait_goes_through_the_io_loop() -> None:
    door = CountingDoor()
    bridge = IoBridge(door)
    hand_over = HandOver()
    assert hand_over.take(0.01) is False  # nothing came: the I/O thread goes back to its loop
    ran: list[str] = []
    settle(bridge, hand_over, ran)
    assert ran == ["io-loop"]
    assert not hand_over.handed
    assert door.used == 1


def test_nothing_is_handed_to_a_connection_that_is_gone() -> None:
    bridge = IoBridge(CountingDoor())
    bridge.close()
    hand_over = HandOver()
    assert bridge.hand(lambda: None, hand_over) is False
    assert hand_over.take(0.01) is False


def test_a_lost_connection_met_by_a_handed_over_settling_is_the_connection_s_failure() -> None:
    bridge = IoBridge(CountingDoor())
    hand_over = HandOver()

    def loses_the_connection() -> None:
        raise BrokerUnavailable("connection reset")

    assert bridge.hand(loses_the_connection, hand_over) is True
    assert hand_over.take(5) is True  # nothing raised on the I/O thread: the loop goes on
    assert str(bridge.failure) == "connection reset"


def test_a_handed_over_settling_runs_in_the_job_thread_s_context() -> None:
    job_id: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="none")
    bridge = IoBridge(CountingDoor())
    hand_over = HandOver()
    seen: list[str] = []

    def job() -> None:
        job_id.set("j-1")
        bridge.hand(lambda: seen.append(job_id.get()), hand_over)

    thread = threading.Thread(target=job)
    thread.start()
    thread.join(5)
    hand_over.take(5)
    assert seen == ["j-1"]
    assert job_id.get() == "none"  # the I/O thread's own context is left as it was


def late_settle(bridge: IoBridge, hand_over: HandOver, ran: list[str], after: float) -> None:
    time.sleep(after)
    settle(bridge, hand_over, ran)


def test_racing_the_end_of_the_wait_settles_each_job_exactly_once() -> None:
    ways = set()
    for i in range(300):
        door = CountingDoor()
        bridge = IoBridge(door)
        hand_over = HandOver()
        ran: list[str] = []
        # The job hands over somewhere around the end of the wait, before or after it.
        after = (i % 10) * 0.0001
        job = threading.Thread(target=late_settle, args=(bridge, hand_over, ran, after))
        job.start()
        taken = hand_over.take(0.0005)
        job.join(5)
        deadline = time.monotonic() + 5
        while not ran and time.monotonic() < deadline:  # through the loop: on its own thread
            time.sleep(0.001)
        assert len(ran) == 1
        assert taken is (door.used == 0) is hand_over.handed
        ways.add(taken)
    assert ways == {True, False}  # both sides of the race were run
