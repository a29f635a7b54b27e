"""`/docs` (Swagger UI) and `/redoc` served with their scripts, styles and icon from the
package, so the API docs work on a machine with no internet (FastAPI's own pages load them
from CDNs and stay blank offline). The files come from the `fastapi-offline` package; only
its static folder is used.
"""

from __future__ import annotations

from importlib.resources import as_file, files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
SWAGGER_JS = f"{ASSETS}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS}/swagger-ui.css"
REDOC_JS = f"{ASSETS}/redoc.standalone.js"
FAVICON = f"{ASSETS}/favicon.png"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install(app: FastAPI, *, redoc: bool = True) -> None:
    """Serve `/docs`, its assets under `ASSETS` and (unless `redoc=False`) `/redoc` on an app
    made with `docs_url=None, redoc_url=None`."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("make the app with docs_url=None and redoc_url=None")
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"
    # The package is installed as files (a wheel unpacked), so the folder outlives this block.
    with as_file(files("fastapi_offline") / "static") as folder:
        app.mount(ASSETS, StaticFiles(directory=folder), name="apidocs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title}: API",
            swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS,
            swagger_favicon_url=FAVICON,
            oauth2_redirect_url=OAUTH2_REDIRECT,
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    if redoc:

        @app.get("/redoc", include_in_schema=False)
        async def redoc_html() -> HTMLResponse:
            return get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title}: API",
                redoc_js_url=REDOC_JS,
                redoc_favicon_url=FAVICON,
                with_google_fonts=False,
            )
