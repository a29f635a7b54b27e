"""The gateway process while another writer holds its SQLite state store (another gateway
process sharing STATE_DIR, an operator's sqlite3 session): a job's record waits for the lock
off the event loop, so the process goes on answering meanwhile, and the job is answered and
recorded once the lock is free."""

from __future__ import annotations

import sqlite3
import threading

import httpx

from shared.config import Settings
from shared.state import SUBMISSIONS_FILE, open_submissions
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import start_gateway


def test_a_held_state_store_holds_up_only_the_jobs_waiting_for_it(
    broker: TestBroker, spawn: SpawnFn, settings: Settings
) -> None:
    gateway = start_gateway(spawn, settings)
    with gateway.client() as http:  # a first job: the store is open and written to
        assert http.post("/jobs/render", json={"template": "document"}).status_code == 202
    other = sqlite3.connect(settings.state_dir / SUBMISSIONS_FILE, isolation_level=None)
    answers: list[httpx.Response] = []

    def submit() -> None:
        with gateway.client() as http:
            answers.append(http.post("/jobs/render", json={"template": "document"}))

    submitting = threading.Thread(target=submit)
    try:
        other.execute("BEGIN IMMEDIATE")
        submitting.start()
        queue = broker.names.task_queue("render")
        broker.wait_until(lambda: broker.depth(queue) == 2, 10, "the second job queued")
        # The job is confirmed and waits for its record; the process answers all the same
        # (not a speed check: a busy wait on the loop would hold every answer for seconds).
        with gateway.client(timeout=2) as http:
            for _ in range(3):
                assert http.get("/healthz").status_code == 200
                assert http.get("/readyz").status_code == 200
        # Released well within the writer thread's 5 s busy timeout, past which the record
        # would fail and the job be answered (a 202, the failure logged) all the same.
        assert answers == [], "answered before its job was recorded"
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()
    submitting.join(30)
    (answer,) = answers
    assert answer.status_code == 202, answer.text
    ledger = open_submissions(settings)
    try:
        assert ledger.find(answer.json()["id"]) is not None
    finally:
        ledger.close()
