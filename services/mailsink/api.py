"""The sink's HTTP view (plus the chaos hook), on FastAPI: the pages for a person (page.py),
the JSON API, raw sources and attachments, search, delete, and live updates (`/events`).

Endpoints are plain `def`s: FastAPI runs them on worker threads, so reading the Maildir
never holds up the SMTP server on the event loop. With credentials (MAILSINK_UI_AUTH) every
route but `/healthz` asks for them (auth.py). `/chaos` exists only with MAILSINK_CHAOS_API:
anyone who can reach it can make the sink refuse mail.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from services.mailsink import page, search, views
from services.mailsink.auth import BasicAuth, Credentials
from services.mailsink.chaos import Chaos, ChaosRule, Stage
from services.mailsink.store import MailStore, Stored
from shared import apidocs
from shared.asgi_app import fastapi_app
from shared.http_guard import GuardPolicy, HttpGuard
from shared.live import MEDIA_TYPE, STREAM_HEADERS, Changes
from shared.strict_request import StrictJSONRoute

# Mail content is untrusted: nothing served from here may run script in the sink's origin.
_LOCKED_DOWN = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
}
# The view's own pages: their one script and stylesheet, from here; nothing else.
_PAGE = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " frame-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
    # Not no-referrer: under that, a browser sends `Origin: null` with the page's own delete
    # forms, and the guard refuses them as from a foreign origin.
    "Referrer-Policy": "same-origin",
}
# A message's HTML part, shown in the message page's sandboxed iframe: no script, and no
# request anywhere (remote images, fonts, trackers), only what is inline in the mail.
_MAIL_HTML = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:;"
        " sandbox; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
}
# What an inline part may be served as; anything else (SVG can carry script) is bytes.
_INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MessageId = Annotated[str, Path(max_length=255)]
Tab = Literal["html", "text", "headers", "raw", "attachments"]
SearchQuery = Annotated[str, Query(max_length=500, description=search.__doc__ or "")]


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
    changes: Changes | None = None,
) -> FastAPI:
    """`guard`: the Host/Origin policy (shared/http_guard.py); loopback names by default.
    `changes`: where the store's changes go to the live view (one is made if not given)."""
    app = fastapi_app(title="jobsuite mailsink", docs_url=None, redoc_url=None)
    apidocs.install(app, redoc=False)
    if credentials is not None:
        app.add_middleware(BasicAuth, credentials=credentials)
    # Added last, so outermost: a foreign Host or Origin is refused before anything else.
    app.add_middleware(HttpGuard, policy=guard or GuardPolicy())
    # The chaos hook's JSON: a duplicate key or a lone surrogate is a 422, not a 500.
    app.router.route_class = StrictJSONRoute
    live = changes or Changes()
    store.on_change = live.tell
    assets = StaticFiles(directory=str(files("services.mailsink") / "static"))
    app.mount("/static", assets, "static")

    def stored(key: str) -> Stored:
        found = store.get(key)
        if found is None:
            raise HTTPException(404, f"no message {key!r}")
        return found

    def matching(query: str) -> list[dict[str, object]]:
        """Summaries of the messages `query` matches, newest first."""
        held = store.newest_first()
        if not query.strip():
            return [views.summary(s) for s in held]
        matches = search.matcher(query)
        found = []
        for s in held:
            summary = views.summary(s)
            if matches({**summary, "text": views.text_body(s.message)}):
                found.append(summary)
        return found

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "messages": len(store)}

    @app.get("/messages")
    def list_messages(q: SearchQuery = "") -> list[dict[str, object]]:
        return matching(q)

    @app.delete("/messages")
    def delete_all() -> dict[str, int]:
        return {"deleted": store.delete_all()}

    @app.get("/messages/{key}")
    def get_message(key: MessageId) -> dict[str, object]:
        return views.detail(stored(key))

    @app.delete("/messages/{key}", status_code=204)
    def delete_message(key: MessageId) -> Response:
        if not store.delete(key):
            raise HTTPException(404, f"no message {key!r}")
        return Response(status_code=204)

    @app.put("/messages/{key}/read", status_code=204)
    def mark_read(key: MessageId) -> Response:
        if not store.mark_read(key):
            raise HTTPException(404, f"no message {key!r}")
        return Response(status_code=204)

    @app.get("/messages/{key}/raw")
    def get_raw(key: MessageId) -> Response:
        raw = store.raw(key)
        if raw is None:
            raise HTTPException(404, f"no message {key!r}")
        return Response(raw, media_type="message/rfc822", headers=_LOCKED_DOWN)

    @app.get("/messages/{key}/html")
    def get_html(key: MessageId, request: Request) -> HTMLResponse:
        html = views.html_body(stored(key).message)
        if html is None:
            raise HTTPException(404, f"message {key!r} has no HTML part")
        # Inline images come from this origin, named exactly: in the sandbox the part has
        # an origin of its own, which `'self'` would not match.
        own = f"{request.url.scheme}://{request.url.netloc}"
        csp = _MAIL_HTML["Content-Security-Policy"].replace("img-src data:", f"img-src data: {own}")
        headers = {**_MAIL_HTML, "Content-Security-Policy": csp}
        return HTMLResponse(views.with_inline_links(html), headers=headers)

    @app.get("/messages/{key}/cid/{content_id:path}")
    def get_inline(key: MessageId, content_id: Annotated[str, Path(max_length=255)]) -> Response:
        part = views.inline_part(stored(key).message, content_id)
        if part is None:
            raise HTTPException(404, f"message {key!r} has no part with Content-ID {content_id!r}")
        kind = (
            part.content_type if part.content_type in _INLINE_IMAGES else "application/octet-stream"
        )
        return Response(part.data, media_type=kind, headers=_LOCKED_DOWN)

    @app.get("/messages/{key}/attachments/{name:path}")
    def get_attachment(key: MessageId, name: Annotated[str, Path(max_length=255)]) -> Response:
        part = views.find_attachment(stored(key).message, name)
        if part is None:
            raise HTTPException(404, f"message {key!r} has no attachment {name!r}")
        disposition = f"attachment; filename*=utf-8''{quote(part.name, safe='')}"
        headers = {**_LOCKED_DOWN, "Content-Disposition": disposition}
        return Response(part.data, media_type=_served_type(part.content_type), headers=headers)

    @app.get("/events", include_in_schema=False)
    async def events() -> StreamingResponse:
        return StreamingResponse(live.stream(), media_type=MEDIA_TYPE, headers=STREAM_HEADERS)

    @app.get("/", response_class=HTMLResponse)
    def index(q: SearchQuery = "") -> HTMLResponse:
        html = page.messages_page(matching(q), query=q, total=len(store))
        return HTMLResponse(html, headers=_PAGE)

    @app.get("/view/{key}", response_class=HTMLResponse)
    def view(key: MessageId, tab: Tab | None = None) -> HTMLResponse:
        store.mark_read(key)
        detail = views.detail(stored(key))
        shown = tab or ("html" if detail["html"] is not None else "text")
        raw = store.raw(key) if shown == "raw" else None  # read again only for its own tab
        return HTMLResponse(page.message_page(detail, raw or b"", shown), headers=_PAGE)

    @app.post("/actions/delete", include_in_schema=False)
    def delete_from_page(id: Annotated[str, Form(max_length=255)]) -> RedirectResponse:
        store.delete(id)  # gone already (another tab): the list is where to go all the same
        return RedirectResponse("../", status_code=303)

    @app.post("/actions/delete-all", include_in_schema=False)
    def delete_all_from_page() -> RedirectResponse:
        store.delete_all()
        return RedirectResponse("../", status_code=303)

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


def _served_type(content_type: str) -> str:
    """A part's type as a header can carry it: a type from a mail may be anything."""
    plain = content_type.isascii() and content_type.isprintable()
    return content_type if plain else "application/octet-stream"
