"""The sink's read-only HTTP view (plus the chaos hook), on FastAPI.

Endpoints are plain `def`s: FastAPI runs them on worker threads, so reading the Maildir
never holds up the SMTP server on the event loop. With credentials (MAILSINK_UI_AUTH) every
route but `/healthz` asks for them (auth.py). `/chaos` exists only with MAILSINK_CHAOS_API:
anyone who can reach it can make the sink refuse mail.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Path, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from services.mailsink import page, views
from services.mailsink.auth import BasicAuth, Credentials
from services.mailsink.chaos import Chaos, ChaosRule, Stage
from services.mailsink.store import MailStore, Stored
from shared import apidocs
from shared.http_guard import GuardPolicy, HttpGuard
from shared.strict_request import StrictJSONRoute

# Mail content is untrusted: nothing served from here may run script in the sink's origin.
_LOCKED_DOWN = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
}
MessageId = Annotated[str, Path(max_length=255)]


class ChaosRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: int = Field(ge=400, le=599, description="the SMTP code to answer")
    times: int | None = Field(default=None, ge=1, description="transactions; omit for all")
    on: Stage = "data"


def create_app(
    store: MailStore,
    chaos: Chaos,
    *,
    credentials: Credentials | None = None,
    chaos_api: bool = False,
    guard: GuardPolicy | None = None,
) -> FastAPI:
    """`guard`: the Host/Origin policy (shared/http_guard.py); loopback names by default."""
    app = FastAPI(title="jobsuite mailsink", docs_url=None, redoc_url=None)
    apidocs.install(app, redoc=False)
    if credentials is not None:
        app.add_middleware(BasicAuth, credentials=credentials)
    # Added last, so outermost: a foreign Host or Origin is refused before anything else.
    app.add_middleware(HttpGuard, policy=guard or GuardPolicy())
    # The chaos hook's JSON: a duplicate key or a lone surrogate is a 422, not a 500.
    app.router.route_class = StrictJSONRoute

    def stored(key: str) -> Stored:
        found = store.get(key)
        if found is None:
            raise HTTPException(404, f"no message {key!r}")
        return found

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "messages": len(store)}

    @app.get("/messages")
    def list_messages() -> list[dict[str, object]]:
        return [views.summary(s) for s in store.newest_first()]

    @app.get("/messages/{key}")
    def get_message(key: MessageId) -> dict[str, object]:
        return views.detail(stored(key))

    @app.get("/messages/{key}/raw")
    def get_raw(key: MessageId) -> Response:
        raw = store.raw(key)
        if raw is None:
            raise HTTPException(404, f"no message {key!r}")
        return Response(raw, media_type="message/rfc822", headers=_LOCKED_DOWN)

    @app.get("/messages/{key}/attachments/{name}")
    def get_attachment(key: MessageId, name: Annotated[str, Path(max_length=255)]) -> Response:
        part = views.find_attachment(stored(key).message, name)
        if part is None:
            raise HTTPException(404, f"message {key!r} has no attachment {name!r}")
        disposition = f"attachment; filename*=utf-8''{quote(part.name, safe='')}"
        headers = {**_LOCKED_DOWN, "Content-Disposition": disposition}
        return Response(part.data, media_type=part.content_type, headers=headers)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        summaries = [views.summary(s) for s in store.newest_first()]
        return HTMLResponse(page.messages_page(summaries), headers=_LOCKED_DOWN)

    if chaos_api:
        _chaos_routes(app, chaos)
    return app


def _chaos_routes(app: FastAPI, chaos: Chaos) -> None:
    @app.get("/chaos")
    def get_chaos() -> dict[str, object]:
        return chaos.state()

    @app.post("/chaos")
    def set_chaos(request: ChaosRequest) -> dict[str, object]:
        chaos.set(ChaosRule(request.code, request.times, request.on))
        return chaos.state()

    @app.delete("/chaos")
    def clear_chaos() -> dict[str, object]:
        chaos.clear()
        return chaos.state()
