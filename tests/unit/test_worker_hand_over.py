"""The I/O thread waiting a moment for the job it handed over (bridge.HandOver): a job done in
time is settled by the waiting thread itself, without waking the I/O loop; a later one goes
through the loop; never both, never neither, however the two threads race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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


def test_a_job_done_while_the_io_thread_waits_is_settled_by_that_thread() -> None:
    door = CountingDoor()
    bridge = IoBridge(door)
    hand_over = HandOver()
    answers: list[str] = []
    job = threading.Thread(
        target=lambda: answers.append(bridge.call(thread_name, hand_over)),
        name="job",
    )
    job.start()
    assert hand_over.take(5) is True
    job.join(5)
    assert answers == [threading.current_thread().name]
    assert door.used == 0


def test_a_job_done_after_the_wait_goes_through_the_io_loop() -> None:
    door = CountingDoor()
    bridge = IoBridge(door)
    hand_over = HandOver()
    assert hand_over.take(0.01) is False  # nothing came: the I/O thread goes back to its loop
    assert bridge.call(thread_name, hand_over) == "io-loop"
    assert door.used == 1


def test_an_error_in_a_handed_over_settling_reaches_the_job_thread() -> None:
    bridge = IoBridge(CountingDoor())
    hand_over = HandOver()
    caught: list[BaseException] = []

    def fails() -> str:
        raise RuntimeError("nacked")

    def job() -> None:
        try:
            bridge.call(fails, hand_over)
        except RuntimeError as e:
            caught.append(e)

    thread = threading.Thread(target=job)
    thread.start()
    assert hand_over.take(5) is True  # the error is the job thread's, not the I/O thread's
    thread.join(5)
    assert [str(e) for e in caught] == ["nacked"]


def settle(bridge: IoBridge, hand_over: HandOver, ran: list[str], after: float) -> None:
    time.sleep(after)
    bridge.call(lambda: ran.append("settled"), hand_over)


def test_racing_the_end_of_the_wait_settles_each_job_exactly_once() -> None:
    ways = set()
    for i in range(300):
        door = CountingDoor()
        bridge = IoBridge(door)
        hand_over = HandOver()
        ran: list[str] = []
        # The job hands over somewhere around the end of the wait, before or after it.
        after = (i % 10) * 0.0001
        job = threading.Thread(target=settle, args=(bridge, hand_over, ran, after))
        job.start()
        taken = hand_over.take(0.0005)
        job.join(5)
        assert ran == ["settled"]
        assert taken is (door.used == 0)
        ways.add(taken)
    assert ways == {True, False}  # both sides of the race were run
