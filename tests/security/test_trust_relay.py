"""No open relay (issue 13, item 5; the mail sink's doors, item 4), against the running suite.

Mail goes only to MAIL_ALLOWED_DOMAINS (unset in the suite: the reserved test names): the
gateway answers 403 naming the address, and a job put straight on the queue fails before
any SMTP. Every limit the gateway enforces a worker enforces too, on the job and each
follow-up: the follow-up depth, recipients, attachment count and duplicate attachment ids.
The sink's view asks for HTTP Basic (MAILSINK_UI_AUTH) and has no /chaos unless
MAILSINK_CHAOS_API is on. Each case asserts the exact answer, then that a good mail still
goes out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.ids import follow_up_id, new_id
from shared.limits import MAX_FOLLOW_UPS
from shared.messages import FollowUp, Job
from tests.security.conftest import GOOD_RECIPIENT, SINK_AUTH, Suite
from tests.support.broker import EventWatcher
from tests.support.mailsink import SpawnFn, start_mailsink


def mail(subject: str, **params: Any) -> dict[str, Any]:
    return {"to": [GOOD_RECIPIENT], "subject": subject, "text": "relay case", **params}


def subjects(suite: Suite) -> list[str]:
    return [m["subject"] for m in suite.sink.messages()]


def good_mail_goes_out(suite: Suite, events: EventWatcher) -> None:
    good = suite.http.post("/jobs/mail", json=suite.good_job("mail").params)
    assert good.status_code == 202, good.text
    suite.succeeded(events, good.json()["id"])
    suite.check_after_case()


def finished_render(suite: Suite, events: EventWatcher) -> str:
    """The id of a job with outputs, to attach."""
    body = {"template": "document", "data": {"blocks": ["attach me"]}}
    accepted = suite.http.post("/jobs/render", json=body)
    assert accepted.status_code == 202, accepted.text
    suite.succeeded(events, accepted.json()["id"])
    return str(accepted.json()["id"])


def chain(length: int, prefix: str) -> FollowUp | None:
    then = None
    for n in reversed(range(1, length + 1)):
        then = FollowUp(type="mail", params=mail(f"{prefix}-{n}"), then=then)
    return then


# --- recipient domains ---------------------------------------------------------------------

REFUSED = {
    "to-gmail": ({"to": [GOOD_RECIPIENT, "eve@gmail.com"]}, "to.1", "eve@gmail.com"),
    "cc-lookalike": (
        {"cc": ["Eve <eve@example.com.evil.net>"]},
        "cc.0",
        "eve@example.com.evil.net",
    ),
    "bcc-ip-address": ({"bcc": ["root@127.0.0.1"]}, "bcc.0", "root@127.0.0.1"),
    "to-co-uk": ({"to": ["eve@example.co.uk"]}, "to.0", "eve@example.co.uk"),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_the_gateway_refuses_a_recipient_outside_the_allowed_domains_with_403(
    suite: Suite, events: EventWatcher, case: str
) -> None:
    extra, field, address = REFUSED[case]
    answer = suite.http.post("/jobs/mail", json=mail(f"relay-403-{case}", **extra))
    assert answer.status_code == 403, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"{field}: mail to {address} is not allowed"), detail
    good_mail_goes_out(suite, events)
    assert f"relay-403-{case}" not in subjects(suite)


def test_a_refused_recipient_in_a_follow_up_is_403(suite: Suite, events: EventWatcher) -> None:
    then = {"type": "mail", "params": mail("relay-403-then", cc=["eve@gmail.com"])}
    body = {"template": "document", "data": {"blocks": ["x"]}, "then": then}
    answer = suite.http.post("/jobs/render", json=body)
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"].startswith("then.params.cc.0: mail to eve@gmail.com")
    good_mail_goes_out(suite, events)


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_a_mail_job_straight_on_the_queue_to_a_refused_domain_fails_and_sends_nothing(
    suite: Suite, events: EventWatcher, case: str
) -> None:
    extra, field, address = REFUSED[case]
    job = Job(type="mail", params=mail(f"relay-queue-{case}", **extra))
    event = suite.publish_with_good_job(events, job)
    assert event["event"] == "job.failed", event
    assert event["error"]["kind"] == "recipient_not_allowed"
    assert event["error"]["message"].startswith(f"{field}: mail to {address} is not allowed")
    assert not events.of(job.id, "job.started"), "refused before it ran"
    assert f"relay-queue-{case}" not in subjects(suite)
    assert address not in " ".join(suite.sink_recipients())
    suite.check_after_case()


# --- the follow-up depth ---------------------------------------------------------------------


def test_a_51_mail_chain_straight_on_the_queue_is_refused_and_sends_nothing(
    suite: Suite, events: EventWatcher
) -> None:
    job = Job(type="mail", params=mail("relay-chain51-0"), then=chain(50, "relay-chain51"))
    event = suite.publish_with_good_job(events, job)
    assert event["event"] == "job.failed", event
    assert event["error"]["kind"] == "too_many_follow_ups"
    assert event["error"]["message"] == "then: a chain of 50 follow-up jobs, over the limit of 5"
    assert not events.of(follow_up_id(job.id)), "no follow-up was published"
    assert not [s for s in subjects(suite) if s.startswith("relay-chain51")]
    suite.check_after_case()


def test_a_chain_of_the_allowed_depth_straight_on_the_queue_runs_whole(
    suite: Suite, events: EventWatcher
) -> None:
    job = Job(
        type="mail", params=mail("relay-chain5-0"), then=chain(MAX_FOLLOW_UPS, "relay-chain5")
    )
    suite.broker.publish_job(job)
    last = job.id
    for _ in range(MAX_FOLLOW_UPS):
        last = follow_up_id(last)
    suite.succeeded(events, last)
    sent = sorted(s for s in subjects(suite) if s.startswith("relay-chain5-"))
    assert sent == [f"relay-chain5-{n}" for n in range(MAX_FOLLOW_UPS + 1)]
    good_mail_goes_out(suite, events)


# --- recipients and attachments ----------------------------------------------------------------


def test_too_many_recipients_in_a_follow_up_straight_on_the_queue_refuse_the_parent(
    suite: Suite, events: EventWatcher
) -> None:
    crowd = mail("relay-crowd", bcc=[f"user{n}@example.org" for n in range(50)])
    job = Job(
        type="render",
        params={"template": "document", "data": {"blocks": ["x"]}},
        then=FollowUp(type="mail", params=crowd),
    )
    event = suite.publish_with_good_job(events, job)
    assert event["event"] == "job.failed", event
    assert event["error"]["kind"] == "too_many_recipients"
    assert event["error"]["message"] == (
        "then.params.to: too many recipients: 51, at most 50 (MAX_RECIPIENTS)"
    )
    assert not events.of(follow_up_id(job.id))
    assert "relay-crowd" not in subjects(suite)
    good_mail_goes_out(suite, events)


def test_duplicate_attachment_ids_are_422_at_the_gateway_naming_the_id(
    suite: Suite, events: EventWatcher
) -> None:
    done = finished_render(suite, events)
    answer = suite.http.post("/jobs/mail", json=mail("relay-dup", attachments=[done, done]))
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "attachments", 1]
    assert error["type"] == "duplicate_attachment"
    assert f"job '{done}' is listed twice (at 0 and 1)" in error["msg"]
    thousands = suite.http.post("/jobs/mail", json=mail("relay-2000", attachments=[done] * 2000))
    assert thousands.status_code == 422, thousands.text
    (error,) = thousands.json()["detail"]
    assert error["loc"] == ["body", "attachments", 1]
    assert error["type"] == "duplicate_attachment" and done in error["msg"]
    distinct = [new_id() for _ in range(21)]
    too_many = suite.http.post("/jobs/mail", json=mail("relay-21", attachments=distinct))
    assert too_many.status_code == 422, too_many.text
    (error,) = too_many.json()["detail"]
    assert error["loc"] == ["body", "attachments"] and error["type"] == "too_many_attachments"
    assert "21 attachments, over the limit of 20 (MAX_ATTACHMENTS)" in error["msg"]
    good_mail_goes_out(suite, events)
    assert not {"relay-dup", "relay-2000", "relay-21"} & set(subjects(suite))


@pytest.mark.parametrize(
    ("case", "kind", "says"),
    [
        ("twice", "duplicate_attachment", "is listed twice (at 0 and 1)"),
        ("2000-copies", "duplicate_attachment", "is listed twice (at 0 and 1)"),
        ("21-ids", "too_many_attachments", "21 attachments, over the limit of 20"),
    ],
)
def test_duplicate_or_too_many_attachment_ids_straight_on_the_queue_are_refused(
    suite: Suite, events: EventWatcher, case: str, kind: str, says: str
) -> None:
    done = finished_render(suite, events)
    ids = {
        "twice": [done, done],
        "2000-copies": [done] * 2000,
        "21-ids": [done, *(new_id() for _ in range(20))],
    }[case]
    subject = f"relay-queue-attach-{case}"
    job = Job(type="mail", params=mail(subject, attachments=ids))
    event = suite.publish_with_good_job(events, job)
    assert event["event"] == "job.failed", event
    assert event["error"]["kind"] == kind
    assert says in event["error"]["message"]
    assert subject not in subjects(suite)
    suite.check_after_case()


# --- the mail sink's doors -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/messages", "/docs", "/openapi.json"])
def test_the_mail_view_asks_for_its_credentials(
    suite: Suite, events: EventWatcher, path: str
) -> None:
    refused = suite.sink.get(path, auth=None)
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="jobsuite mailsink", charset="UTF-8"'
    wrong = suite.sink.get(path, auth=(SINK_AUTH[0], SINK_AUTH[1] + "x"))
    assert wrong.status_code == 401
    assert suite.sink.get(path).status_code == 200
    assert suite.sink.get("/healthz", auth=None).status_code == 200
    good_mail_goes_out(suite, events)


def test_the_chaos_endpoint_is_404_unless_enabled(spawn: SpawnFn, tmp_path: Path) -> None:
    # A sink of its own: the suite's serves /chaos, which other cases use to set faults.
    auth = ("u", "p")
    sink = start_mailsink(spawn, tmp_path / "mail", ui_auth=auth)
    assert sink.get("/chaos").status_code == 404
    posted = httpx.post(sink.url + "/chaos", json={"code": 550}, auth=auth, timeout=10)
    assert posted.status_code in (404, 405), posted.text
    deleted = httpx.delete(sink.url + "/chaos", auth=auth, timeout=10)
    assert deleted.status_code in (404, 405)
    assert sink.get("/messages").status_code == 200  # it goes on serving


def test_with_the_chaos_api_on_the_endpoint_serves(spawn: SpawnFn, tmp_path: Path) -> None:
    sink = start_mailsink(spawn, tmp_path / "mail", chaos_api=True, ui_auth=("u", "p"))
    assert sink.get("/chaos", auth=None).status_code == 401
    assert sink.get("/chaos").json() == {"active": False}
    sink.set_chaos(451, times=1)
    assert sink.get("/chaos").json()["left"] == 1


def test_auth_disabled_opens_the_mail_view(spawn: SpawnFn, tmp_path: Path) -> None:
    sink = start_mailsink(spawn, tmp_path / "mail", ui_auth=("u", "p"), AUTH_DISABLED="true")
    assert sink.get("/messages", auth=None).status_code == 200
    assert sink.get("/chaos", auth=None).status_code == 404
    assert sink.process.logged("mail_view_open_auth_disabled")
