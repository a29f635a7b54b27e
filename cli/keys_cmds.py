"""`jobsuite keys`: create, list and revoke API keys, straight in the key store (STATE_DIR).

The store is a file, so these work with every service down. Creating and revoking a key are
audit events (`key.created`, `key.revoked`), published with a confirm; when the broker cannot
take the event the key is made (or revoked) all the same and a warning says the audit log
did not hear of it. `create` prints the key once, alone on its last line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli.common import console, err_console, fail, readable_errors, settings
from cli.tables import Row, print_listing
from shared.amqp import connect_once
from shared.config import Settings
from shared.errors import BrokerError
from shared.events import instance_name
from shared.keyfile import key_file, read_key_file, write_key_file
from shared.messages import KEY_SUBJECT_PREFIX, Event, EventName, encode
from shared.state import ApiKey, ApiKeyStore, KeyLimits, open_api_keys
from shared.state.keys import (
    DEFAULT_BURST,
    DEFAULT_MAILS_PER_HOUR,
    DEFAULT_RECIPIENTS_PER_MAIL,
    DEFAULT_SUBMISSIONS_PER_SECOND,
)
from shared.topology import Names, declare_topology
from shared.words import count

LOCAL_KEY = "local"
# The one user of `make run` is its operator: limits that never get in the way of
# `jobsuite bench`, with MAX_RECIPIENTS still bounding a mail.
LOCAL_LIMITS = KeyLimits(
    recipients_per_mail=10_000, mails_per_hour=10_000, submissions_per_second=1000, burst=2000
)
keys_app = typer.Typer(help="API keys: who may call the gateway and the audit API.")
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def parse_expiry(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m`, `2w` from now, or an ISO date/time (UTC when it names no zone)."""
    if match := _DURATION.fullmatch(text.strip()):
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give a duration (30d, 12h, 90m, 2w) or an ISO date/time"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= now:
        raise typer.BadParameter(f"{text!r} is in the past")
    return moment


@keys_app.command("create")
@readable_errors
def create(
    name: Annotated[str, typer.Argument(help="the key's name: the `client` of its jobs")],
    admin: Annotated[
        bool, typer.Option("--admin", help="sees every job; may read the audit")
    ] = False,
    expires: Annotated[
        str | None, typer.Option("--expires", help="30d, 12h, 2w, or an ISO date/time")
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="replace the existing key of this name")
    ] = False,
    recipients_per_mail: Annotated[
        int, typer.Option(min=1, help="recipients of one mail (to, cc, bcc)")
    ] = DEFAULT_RECIPIENTS_PER_MAIL,
    mails_per_hour: Annotated[
        int, typer.Option(min=0, help="mail jobs submitted in any hour")
    ] = DEFAULT_MAILS_PER_HOUR,
    rate: Annotated[
        float, typer.Option(min=0.001, help="submissions a second (token bucket)")
    ] = DEFAULT_SUBMISSIONS_PER_SECOND,
    burst: Annotated[int, typer.Option(min=1, help="submissions at once")] = DEFAULT_BURST,
) -> None:
    """Make a key and print it, once, as the last line (a NAME in use needs --rotate)."""
    s = settings()
    expires_at = parse_expiry(expires, datetime.now(UTC)) if expires else None
    limits = KeyLimits(recipients_per_mail, mails_per_hour, rate, burst)
    with _store(s) as store:
        record, secret = store.create(
            name, admin=admin, expires_at=expires_at, limits=limits, rotate=rotate
        )
    role = "admin" if admin else "client"
    until = f", expires {record.expires_at.isoformat()}" if record.expires_at else ""
    err_console.print(
        f"{'rotated' if rotate else 'created'} {role} key {name!r}{until}; it is shown once:",
        highlight=False,
    )
    publish_key_event(s, "key.created", record)
    print(secret, flush=True)


@keys_app.command("list")
@readable_errors
def list_() -> None:
    """Every key: name, role, state and limits (never the key itself)."""
    s = settings()
    with _store(s) as store:
        keys = store.list()
    now = datetime.now(UTC)
    rows = [
        Row(
            [
                k.name,
                "admin" if k.admin else "client",
                k.refusal(now) or "active",
                _short(k.created_at),
                _short(k.expires_at) if k.expires_at else "-",
            ],
            note=_limits(k.limits),
        )
        for k in keys
    ]
    # At most 80 columns wide: the limits go under the key, in words, not into 4 columns.
    print_listing(console, ("name", "role", "state", "created (UTC)", "expires (UTC)"), rows)


@keys_app.command("revoke")
@readable_errors
def revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key now: every request with it is then a 401."""
    s = settings()
    with _store(s) as store:
        record = store.revoke(name)
    console.print(f"revoked key {name!r}", highlight=False)
    publish_key_event(s, "key.revoked", record)


@keys_app.command("local")
@readable_errors
def local() -> None:
    """The admin key `local` of `make run`; prints the key file's path.

    Made on first start and saved in the key file (~/.config/jobsuite/<namespace or
    default>.key, mode 0600); made again when the store lost it."""
    s = settings()
    path = key_file(s.namespace)
    saved = read_key_file(path)
    with _store(s) as store:
        known = store.authenticate(saved) if saved else None
        if known is not None and known.refusal(datetime.now(UTC)) is None:
            print(path)
            return
        existing = store.find(LOCAL_KEY)
        if existing is not None and existing.revoked_at is not None and known is not None:
            raise fail(
                f"the key {LOCAL_KEY!r} in {path} was revoked: make a new one with"
                f" `jobsuite keys create {LOCAL_KEY} --admin --rotate` and save it there"
            )
        record, secret = store.create(LOCAL_KEY, admin=True, limits=LOCAL_LIMITS, rotate=True)
    write_key_file(path, secret)
    why = "the store had lost it" if saved else "first start"
    err_console.print(
        f"made the admin key {LOCAL_KEY!r} ({why}), saved in {path}",
        highlight=False,
        soft_wrap=True,
    )
    publish_key_event(s, "key.created", record)
    print(path)


def publish_key_event(s: Settings, name: EventName, key: ApiKey) -> None:
    """Tell the audit log, with a confirm; a warning (not a failure) when it cannot."""
    instance = instance_name()
    event = Event(
        event=name,
        job_id=KEY_SUBJECT_PREFIX + key.name,
        type="key",
        service="cli",
        instance=instance,
        client=key.name,
    )
    try:
        connection = connect_once(s, f"jobsuite-keys:{instance}")
        try:
            channel = connection.channel(confirm=True)
            # On a first start nothing is declared yet: the audit's queue then keeps the event.
            declare_topology(channel, s)
            channel.publish(
                Names(s.namespace).events_exchange,
                "",
                encode(event),
                message_id=event.event_id,
                message_type=event.event,
            )
        finally:
            connection.close()
    except BrokerError as e:
        err_console.print(
            f"[yellow]warning:[/] the key change is made, but the audit log did not hear of it"
            f" ({name} not published: {e})",
            highlight=False,
            soft_wrap=True,
        )


@contextmanager
def _store(s: Settings) -> Iterator[ApiKeyStore]:
    """The key store for one command."""
    store = open_api_keys(s)  # a StateError ends the command with one line
    try:
        yield store
    finally:
        store.close()


def _limits(limits: KeyLimits) -> str:
    return (
        f"limits: {count(limits.recipients_per_mail, 'recipient')} a mail, "
        f"{count(limits.mails_per_hour, 'mail')} an hour, "
        f"{limits.submissions_per_second:g} submissions/s, burst {limits.burst}"
    )


def _short(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
