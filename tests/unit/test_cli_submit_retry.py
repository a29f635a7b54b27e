"""The CLI's submission against scripted gateway answers: every job goes under an
Idempotency-Key, a 503 or 409 with Retry-After is tried again under the same key (the whole
file sent again), and anything else is one clear error."""

from __future__ import annotations

import io

import httpx
import pytest

from cli.gateway_client import SUBMIT_ATTEMPTS, GatewayClient, GatewayError

IN_DOUBT = "RabbitMQ did not confirm job 1b2c (blocked); it may have been queued all the same"


class ScriptedGateway:
    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answers.pop(0)

    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


def accepted(job_id: str = "1b2c") -> httpx.Response:
    return httpx.Response(202, json={"id": job_id, "status_url": f"/jobs/{job_id}"})


def refused(status: int, detail: str, retry_after: str | None = "5") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(status, json={"detail": detail}, headers=headers)


def client(script: ScriptedGateway) -> GatewayClient:
    return GatewayClient("http://gateway.test", transport=httpx.MockTransport(script))


def test_a_job_in_doubt_is_sent_again_under_the_same_key_with_the_whole_file() -> None:
    script = ScriptedGateway(refused(503, IN_DOUBT), refused(409, "being queued", "1"), accepted())
    waits: list[float] = []
    upload = io.BytesIO(b"\xff\xd8 a photo")
    response = client(script).submit(
        "/jobs/resize",
        None,
        rewind=lambda: upload.seek(0),
        sleep=waits.append,
        files={"file": ("a.jpg", upload, "image/jpeg")},
        data={"width": "8"},
    )
    assert response.json()["id"] == "1b2c"
    keys = script.keys()
    assert len(keys) == 3 and len(set(keys)) == 1 and str(keys[0]).startswith("jobsuite-cli-")
    assert all(b"\xff\xd8 a photo" in r.content for r in script.requests)
    assert waits == [5.0, 1.0]


def test_a_given_key_is_used_and_each_submission_gets_its_own_otherwise() -> None:
    script = ScriptedGateway(accepted("a"), accepted("b"), accepted("c"))
    gateway = client(script)
    gateway.submit("/jobs/render", "order-7", json={})
    gateway.submit("/jobs/render", None, json={})
    gateway.submit("/jobs/render", None, json={})
    first, second, third = script.keys()
    assert first == "order-7" and second != third


def test_it_gives_up_after_the_last_attempt_saying_why() -> None:
    script = ScriptedGateway(*[refused(503, "no broker") for _ in range(SUBMIT_ATTEMPTS)])
    waits: list[float] = []
    with pytest.raises(GatewayError, match="answered 503: no broker"):
        client(script).submit("/jobs/render", None, sleep=waits.append, json={})
    assert len(script.requests) == SUBMIT_ATTEMPTS
    assert len(waits) == SUBMIT_ATTEMPTS - 1


@pytest.mark.parametrize(
    "answer",
    [
        refused(422, "width: must be positive", None),
        refused(409, "this Idempotency-Key was already used for a different request", None),
        refused(413, "too large", None),
    ],
)
def test_a_refusal_without_retry_after_is_not_tried_again(answer: httpx.Response) -> None:
    script = ScriptedGateway(answer)
    with pytest.raises(GatewayError, match=f"answered {answer.status_code}"):
        client(script).submit("/jobs/render", None, sleep=lambda _: None, json={})
    assert len(script.requests) == 1


def test_a_long_retry_after_is_capped() -> None:
    script = ScriptedGateway(refused(503, IN_DOUBT, "3600"), accepted())
    waits: list[float] = []
    client(script).submit("/jobs/mail", None, sleep=waits.append, json={})
    assert waits == [10.0]
