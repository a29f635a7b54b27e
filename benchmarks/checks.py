"""The cost of the trust checks (issue 13), in this process: µs per request of the gateway's
key check, and µs per job of a worker's check of a delivery, strict as built against the same
steps with lax validation.

- key check: `shared.auth.identify` on a `Bearer <key>` header against a real
  SqliteApiKeyStore in a temporary folder, against `presented_key` alone (parsing only);
- a worker's check of one delivery: `check_delivery` (decode the Job, believe its attempt
  and delivery count, `check_job`'s limits) on a resize job with 10 sizes and on an invoice
  render job, against the same `check_delivery` with its two validating steps swapped for
  copies that call the same models with `strict=False` (pydantic's lax mode, what the
  workers did before the models were made strict); plus the renderer's own check of the
  invoice `data` against its template model, strict and lax.

Every contender runs `iterations` calls per round, rounds interleaved; a figure is the
median (min-max) of the rounds. Only this tree's code is measured (in-process)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from unittest import mock

from pydantic import ValidationError

from benchmarks.stats import Figure, Section, anchored
from benchmarks.trees import Trees
from shared.amqp import Delivery
from shared.auth import identify, presented_key
from shared.blobs.keys import input_key
from shared.config import Settings
from shared.errors import DecodeError
from shared.ids import new_id
from shared.jobtypes import ParamsRefused, job_type
from shared.jobtypes.models import first_error
from shared.jobtypes.render_data import InvoiceData
from shared.limits import Limits, check_depth, limits_of
from shared.messages import Job, encode
from shared.state import API_KEYS_FILE
from shared.state.keys import SqliteApiKeyStore
from shared.worker.checks import check_delivery
from shared.worker.claims import DeliveryBudget

MIN_ROUNDS = 5
OTHER_KEYS = 50  # the store holds more keys than the one presented

RESIZE_PARAMS: dict[str, Any] = {
    "sizes": [{"width": w, "height": w * 3 // 4} for w in range(160, 1760, 160)],
    "fit": "cover",
    "format": "webp",
    "quality": 80,
}
INVOICE_DATA: dict[str, Any] = {
    "seller": {"name": "Acme GmbH", "address": "Hauptstr. 1\n10115 Berlin"},
    "buyer": {"name": "Example Ltd", "address": "1 High Street\nLondon"},
    "items": [
        {
            "description": "Consulting, May",
            "quantity": 12,
            "unit_price": "95.00",
            "vat_rate": "0.19",
        },
        {"description": "Travel", "quantity": "1.5", "unit_price": "120.50", "vat_rate": "0.19"},
        {"description": "Licence", "quantity": 3, "unit_price": "49.99", "vat_rate": "0.07"},
        {"description": "Support", "quantity": 1, "unit_price": "300.00"},
        {"description": "Hardware", "quantity": 2, "unit_price": "1299.00", "vat_rate": "0.19"},
    ],
    "currency": "EUR",
    "number": "2026-0042",
    "issue_date": "2026-05-31",
    "due_date": "2026-06-30",
}
RENDER_PARAMS: dict[str, Any] = {"template": "invoice", "data": INVOICE_DATA, "title": "Invoice"}


class _NoChannel:
    """check_delivery never settles; a Delivery needs something that could."""

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None: ...
    def reject(self, delivery: Delivery) -> None: ...


def delivery_of(job: Job) -> Delivery:
    """A first delivery of `job`, its body as the gateway publishes it."""
    return Delivery(_NoChannel(), 1, encode(job), job.id, {}, redelivered=False, user_id="gateway")


# --- the lax twins of the two validating steps of check_delivery -------------------------------


def lax_decode_job(body: bytes) -> Job:
    """`shared.messages.decode_job` with pydantic's lax mode."""
    try:
        job = Job.model_validate_json(body, strict=False)
    except ValidationError as e:
        raise DecodeError(f"not a valid job: {first_error(e)}") from None
    missing = [f for f in ("v", "id", "type") if f not in job.model_fields_set]
    if missing:
        raise DecodeError(f"not a valid job: {', '.join(missing)}: Field required")
    return job


def lax_check_job(job: Job, limits: Limits) -> None:
    """`shared.limits.check_job` with pydantic's lax mode (the same models, checks, policy)."""
    check_depth(job.then)
    try:
        own = job_type(job.type).params.model_validate(job.params, strict=False)
    except ValidationError:
        pass
    else:
        _limits(job.type, own, limits)
    then = job.then
    while then is not None:
        try:
            model = job_type(then.type).params.model_validate(then.params, strict=False)
        except ValidationError as e:
            raise ParamsRefused((), f"invalid params: {first_error(e)}", "invalid_params") from None
        _limits(then.type, model, limits)
        then = then.then


def _limits(name: str, model: Any, limits: Limits) -> None:
    spec = job_type(name)
    spec.check(model, limits[name])
    spec.policy(model, limits[name])


def lax() -> AbstractContextManager[Any]:
    """check_delivery with its decode and its limits check in lax mode, its code unchanged."""
    return mock.patch.multiple(
        "shared.worker.checks", decode_job=lax_decode_job, check_job=lax_check_job
    )


# --- timing ---------------------------------------------------------------------------------


def per_call_us(call: Callable[[], object], iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        call()
    return (time.perf_counter() - started) * 1e6 / iterations


@contextmanager
def key_store() -> Iterator[tuple[SqliteApiKeyStore, str]]:
    """A real key store in a temporary folder holding OTHER_KEYS keys and the one presented."""
    with TemporaryDirectory() as tmp:
        store = SqliteApiKeyStore.open(Path(tmp) / API_KEYS_FILE)
        try:
            for i in range(OTHER_KEYS):
                store.create(f"client-{i}")
            _record, secret = store.create("bench")
            yield store, secret
        finally:
            store.close()


def _cost(what: str, unit: str) -> Figure:
    return Figure(what, unit, higher_is_better=False)


def _refused(call: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        try:
            return call()
        except Exception as e:  # the refusal is the point: an unknown key's 401
            return e

    return run


def checks_section(trees: Trees, runs: int, iterations: int) -> Section:
    settings = Settings()
    budget, limits = DeliveryBudget.of(settings), limits_of(settings)
    photo = new_id()
    inputs = [input_key(photo, "photo.jpg")]
    resize = delivery_of(
        Job(id=photo, type="resize", params=RESIZE_PARAMS, inputs=inputs, client="bench")
    )
    render = delivery_of(Job(type="render", params=RENDER_PARAMS, client="bench"))

    def check(delivery: Delivery, kind: str) -> Callable[[], object]:
        def run() -> object:
            outcome = check_delivery(delivery, kind, budget, lambda _job: False, limits)
            assert isinstance(outcome, Job), outcome  # a refusal would time the wrong path
            return outcome

        return run

    parse = _cost("presented_key alone: parse `Bearer <key>`", "µs/request")
    known = _cost(
        "identify: parse + SHA-256 + the store, a valid key (kept: one PRAGMA data_version)",
        "µs/request",
    )
    unknown = _cost("identify: an unknown key (the 401: the pragma and a lookup)", "µs/request")
    pairs = [
        (_cost(f"{what}: lax", "µs/job"), _cost(f"{what}: strict (as built)", "µs/job"))
        for what in (
            "check_delivery, resize job with 10 sizes",
            "check_delivery, invoice render job with 5 items",
            "renderer: invoice data against InvoiceData",
        )
    ]
    anchored([parse, known, unknown])
    for pair in pairs:
        anchored(list(pair))
    rounds = max(runs, MIN_ROUNDS)
    with key_store() as (store, secret):
        header, wrong = f"Bearer {secret}", "Bearer jsk_" + "x" * 43
        assert identify(store, header).name == "bench"
        # (figure, call, whether check_delivery runs with its lax twins)
        contenders: list[tuple[Figure, Callable[[], object], bool]] = [
            (parse, lambda: presented_key(header, basic=False), False),
            (known, lambda: identify(store, header), False),
            (unknown, _refused(lambda: identify(store, wrong)), False),
            (pairs[0][0], check(resize, "resize"), True),
            (pairs[0][1], check(resize, "resize"), False),
            (pairs[1][0], check(render, "render"), True),
            (pairs[1][1], check(render, "render"), False),
            (pairs[2][0], lambda: InvoiceData.model_validate(INVOICE_DATA, strict=False), False),
            (pairs[2][1], lambda: InvoiceData.model_validate(INVOICE_DATA), False),
        ]
        for _figure, call, is_lax in contenders:  # warm up (and prove every path runs)
            with lax() if is_lax else nullcontext():
                per_call_us(call, max(1, iterations // 10))
        for round_ in range(rounds):
            order = contenders if round_ % 2 == 0 else contenders[::-1]
            for figure, call, is_lax in order:
                with lax() if is_lax else nullcontext():
                    figure.samples.append(per_call_us(call, iterations))
        print(f"  checks: {rounds} rounds of {iterations} calls", file=sys.stderr, flush=True)
    notes = [
        f"in this process: {iterations} calls per round, {rounds} rounds (at least"
        f" {MIN_ROUNDS}), contenders interleaved (order reversed every other round); wall time"
        " per call; ratio = median / its group's first row",
        f"key check: a SqliteApiKeyStore (WAL, under a temporary folder) holding {OTHER_KEYS + 1}"
        " keys; the gateway's RequireKey adds its own small share (the header lookup, the"
        " per-key token bucket) on top of identify",
        "check_delivery, lax: the same function with decode_job and check_job swapped for copies"
        " that validate with the same models and `strict=False` (benchmarks/checks.py); strict:"
        " the product code as built; the resize job has 10 sizes, the render job an invoice of"
        " 5 items (its data is a plain dict to check_delivery: the renderer checks it against"
        " InvoiceData in its handler, the last two rows)",
        "set these µs against the runner's per-job cost (the overhead section's no-op jobs/s)"
        " and the gateway's CPU per accepted job (the accept section's, in ms)",
    ]
    if trees.baseline:
        notes.append("in-process: this tree only, no baseline rows")
    figures = [parse, known, unknown, *(f for pair in pairs for f in pair)]
    return Section("Cost of the trust checks (issue 13)", figures, notes)
