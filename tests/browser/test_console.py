"""The audit console in a real Chromium with no internet, over the real broker and a real
audit service and worker: a new job appears in the list without a reload, its page shows its
timeline, a dead letter is replayed from the dead-letters page (after a confirmation) and
then succeeds; workers and queues show what runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, expect

from shared.config import Settings
from shared.messages import Job
from tests.browser.conftest import OfflinePage
from tests.conftest import SpawnFn
from tests.support.audit import AuditService, start_audit
from tests.support.broker import TestBroker
from tests.support.flagged_worker import MODULE as FLAGGED_WORKER
from tests.support.flagged_worker import flag_path, flagged_job


@pytest.fixture
def audit(spawn: SpawnFn, settings: Settings, tmp_path: Path) -> AuditService:
    return start_audit(spawn, settings, tmp_path / "audit")


@pytest.fixture
def admin_page(chromium: Browser, audit: AuditService) -> Iterator[OfflinePage]:
    """A page that logs in as a browser does after the 401: the admin key as the password."""
    context = chromium.new_context(http_credentials={"username": "admin", "password": audit.key})
    try:
        yield OfflinePage(context.new_page())
    finally:
        context.close()


@pytest.fixture
def dead_job(spawn: SpawnFn, broker: TestBroker, settings: Settings, audit: AuditService) -> Job:
    """A job the flagged worker has failed for good: dead, in the dead letters."""
    worker = spawn(FLAGGED_WORKER)
    worker.wait_logged("consuming")
    job = flagged_job(settings)
    broker.publish_job(job)
    audit.wait_for_status(job.id, "dead")
    return job


def test_a_job_shows_up_live_dies_and_is_replayed_from_the_console(
    spawn: SpawnFn,
    broker: TestBroker,
    settings: Settings,
    audit: AuditService,
    admin_page: OfflinePage,
) -> None:
    worker = spawn(FLAGGED_WORKER)
    worker.wait_logged("consuming")
    page = admin_page.page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(audit.url + "/")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_text("No jobs match.")).to_be_visible()
    page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded

    job = flagged_job(settings)
    broker.publish_job(job)
    row = page.locator(f'tr[data-id="{job.id}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(row.locator(".status")).to_have_text("dead", timeout=15_000)
    assert page.evaluate("window.loadedOnce") is True

    row.get_by_role("link", name=job.id).click()
    expect(page.get_by_role("heading", name=f"Job {job.id}")).to_be_visible()
    timeline = page.locator("table.timeline")
    expect(timeline).to_contain_text("job.failed")
    expect(timeline).to_contain_text("job.dead")
    expect(page.locator("dl.facts")).to_contain_text("flagged: flags/broken is set")

    page.get_by_role("link", name="Dead letters").click()
    dead_row = page.locator(f'#dead tr[data-id="{job.id}"]')
    expect(dead_row).to_contain_text("rejected")
    expect(dead_row).to_contain_text("flags/broken is set")

    flag_path(settings).unlink()  # the cause, fixed
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    dead_row.get_by_role("button", name=f"Replay {job.id}").click()
    expect(page.get_by_role("status")).to_have_text("Replayed 1 dead letter.")
    assert asked == [f"Replay job {job.id}?"]
    record = audit.wait_for_status(job.id, "succeeded")
    assert record["replays"] == 1
    assert broker.depth(broker.names.dead_queue) == 0
    expect(page.get_by_text("No dead letters.")).to_be_visible()

    # Its page now has its output, served from the blob store.
    page.goto(f"{audit.url}/console/jobs/{job.id}")
    download = page.get_by_role("link", name="result.txt")
    expect(download).to_be_visible()
    served = page.request.get(audit.url + "/" + download.get_attribute("href").lstrip("./"))
    assert (
        served.ok
        and served.body() == (settings.blob_dir / "outputs" / job.id / "result.txt").read_bytes()
    )

    page.get_by_role("link", name="Workers").click()
    worker_row = page.locator("#workers tbody tr").filter(has_text="resize")
    expect(worker_row).to_have_count(1)
    expect(worker_row.locator("td.number").first).to_have_text("1")  # done: the replay

    page.get_by_role("link", name="Queues").click()
    resize_queue = page.locator("#queues tr").filter(has_text=broker.names.task_queue("resize"))
    # Ready, consumers; in and out in the last minute: it failed once, then succeeded.
    expect(resize_queue.locator("td.number")).to_have_text(["0", "1", "0", "2"])

    assert admin_page.foreign == []
    assert errors == []


def test_purge_asks_first_and_drops_the_dead_letter(
    broker: TestBroker, audit: AuditService, admin_page: OfflinePage, dead_job: Job
) -> None:
    job = dead_job
    page = admin_page.page
    page.goto(audit.url + "/console/dead")
    answers = iter([False, True])
    page.on("dialog", lambda d: d.accept() if next(answers) else d.dismiss())
    purge = page.get_by_role("button", name=f"Purge {job.id}")
    purge.click()  # dismissed: it stays
    expect(page.locator("#dead-count")).to_have_text("1 dead letter")
    assert broker.depth(broker.names.dead_queue) == 1
    purge.click()
    expect(page.get_by_role("status")).to_have_text("Dropped 1 dead letter for good.")
    expect(page.get_by_text("No dead letters.")).to_be_visible()
    assert broker.depth(broker.names.dead_queue) == 0
    assert audit.job(job.id)["status"] == "dead"  # the audit keeps its history
    # Purged meanwhile (another tab, `jobsuite dlq`): the page says so, nothing breaks.
    again = page.request.post(audit.url + "/console/dead/purge", form={"id": job.id})
    assert again.ok and f"purged meanwhile): {job.id}." in again.text()


def test_the_console_works_from_the_keyboard_alone(
    audit: AuditService, admin_page: OfflinePage, dead_job: Job
) -> None:
    job = dead_job
    page = admin_page.page
    page.goto(audit.url + "/")
    # Every control has a name a screen reader says; the id box is reached by Tab alone.
    for label in ("Job id", "Type", "Status", "Client", "Since"):
        expect(page.get_by_label(label)).to_be_visible()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "id":
            break
    else:
        raise AssertionError("Tab never reached the job id box")
    page.keyboard.type(job.id)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Job {job.id}")).to_be_visible()
    # The dead letter is replayed with the keyboard too: focus its button, Enter, confirm.
    page.goto(audit.url + "/console/dead")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Replay {job.id}").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Replayed 1 dead letter.")
