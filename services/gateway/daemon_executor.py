"""An executor of one daemon thread, for a write that may hang on a dead path.

`ThreadPoolExecutor`'s threads are joined when the interpreter ends, whatever `shutdown` was
told: a gateway whose ledger write hung on a dead PostgreSQL connection (until the socket's
keepalive gives up) could not exit meanwhile. A daemon thread holds up no exit; what it was
writing was never promised to anyone (its requests are cancelled with the server)."""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
_Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadExecutor(Executor):
    """Runs what is submitted one after another on one daemon thread, started on first use
    (again after a failed start)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._inbox: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._shut = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:  # the call goes in before any shutdown's stop: it runs or is cancelled
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._thread is None:
                thread = threading.Thread(
                    target=_work, args=(self._inbox,), name=self._name, daemon=True
                )
                thread.start()  # a RuntimeError when no thread is to be had: the caller's
                self._thread = thread
                # Dropped without a shutdown (a test's app), the executor still ends its thread.
                weakref.finalize(self, self._inbox.put, None)
            self._inbox.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
            thread = self._thread
        if thread is None:
            return
        if cancel_futures:
            while True:
                try:
                    call = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if call is not None:
                    call[0].cancel()
        self._inbox.put(None)
        if wait:
            thread.join()


def _work(inbox: queue.SimpleQueue[_Call | None]) -> None:
    """The thread's loop; it holds the inbox only, so the executor can be collected."""
    while (call := inbox.get()) is not None:
        future, fn, args, kwargs = call
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
