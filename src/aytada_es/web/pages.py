"""The pages: server-rendered shells of My Videos, Studio, Scripts, Images and login."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path
from string import Template
from typing import Literal
from urllib.parse import quote
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..domain.errors import Unauthenticated
from .auth import Principal, authenticate
from .login import HOME, safe_next

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

LOGIN_ERRORS = {
    "missing_token": "Enter your access token.",
    "invalid_token": "That token was not recognised. Check it and try again.",
    "expired_token": "That token has expired. Ask for a new one.",
    "too_many_attempts": (
        "Too many sign-in attempts from your address. Wait a minute, then try again."
    ),
}

Section = Literal["videos", "scripts", "images", ""]

# Pages load only our own scripts, styles and media; the API and the WebSocket are same-origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@functools.cache
def template(name: str) -> Template:
    """A template of `web/templates`, read once."""
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def html(body: str, status_code: int = 200) -> HTMLResponse:
    """An HTML answer with the pages' security headers."""
    return HTMLResponse(body, status_code, headers=SECURITY_HEADERS)


def shell(
    principal: Principal,
    *,
    title: str,
    section: Section,
    script: str,
    content: str,
    status_code: int = 200,
) -> HTMLResponse:
    """The application frame (sidebar, user, sign-out) around a page's content."""
    name = principal.name or "you"
    current = ' aria-current="page"'
    page = template("layout.html").substitute(
        title=escape(title),
        page=section or "studio",
        script=script,
        current_videos=current if section == "videos" else "",
        current_scripts=current if section == "scripts" else "",
        current_images=current if section == "images" else "",
        initial=escape(name[:1].upper()),
        user_name=escape(name),
        user_role=escape(principal.role.capitalize()),
        content=content,
    )
    return html(page, status_code)


async def signed_in(request: Request) -> Principal | None:
    """The account of the session (or token), or None when there is none."""
    try:
        return await run_in_threadpool(authenticate, request)
    except Unauthenticated:
        return None


def to_login(request: Request) -> RedirectResponse:
    """Send a visitor without a session to the login page, remembering where they were going."""
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    query = "" if target == HOME else f"?next={quote(target, safe='/')}"
    return RedirectResponse(f"/login{query}", status_code=303)


# ---- pages --------------------------------------------------------------------------------


def section_page(
    title: str, section: Section, page: str
) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in page of the sidebar: its template, filled in by its own script."""

    async def show(request: Request) -> Response:
        principal = await signed_in(request)
        if principal is None:
            return to_login(request)
        content = template(f"{page}.html").substitute()
        return shell(principal, title=title, section=section, script=f"{page}.js", content=content)

    show.__doc__ = f"{title}."
    return show


my_videos = section_page("My Videos", "videos", "videos")
my_scripts = section_page("My Scripts", "scripts", "scripts")
my_images = section_page("My Images", "images", "images")


async def studio(request: Request) -> Response:
    """Project Studio: one project, its next step, its failure or its final ad."""
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    raw = str(request.path_params["project_id"])
    try:
        project_id = UUID(raw)
    except ValueError:
        content = template("notfound.html").substitute(
            heading="Project not found", message="There is no project at this address."
        )
        return shell(
            principal,
            title="Not found",
            section="",
            script="ui.js",
            content=content,
            status_code=404,
        )
    content = template("studio.html").substitute(project_id=escape(str(project_id)))
    return shell(principal, title="Project Studio", section="", script="studio.js", content=content)


async def home(request: Request) -> Response:
    """`/`: My Videos for the signed-in, the login page for everyone else."""
    if await signed_in(request) is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME, status_code=303)


async def login(request: Request) -> Response:
    """The sign-in form; it posts the token to `POST /login`."""
    target = safe_next(request.query_params.get("next"))
    if await signed_in(request) is not None:
        return RedirectResponse(target, status_code=303)
    error = ""
    if "error" in request.query_params:
        message = LOGIN_ERRORS.get(request.query_params["error"], LOGIN_ERRORS["invalid_token"])
        error = f'      <p class="notice error" role="alert">{escape(message)}</p>'
    hidden_next = ""
    if target != HOME:
        hidden_next = f'        <input type="hidden" name="next" value="{escape(target)}">'
    return html(template("login.html").substitute(error=error, next=hidden_next))


def routes() -> list[BaseRoute]:
    """The page routes and the static files, for the app to include."""
    return [
        Route("/", home, methods=["GET"], name="home"),
        Route("/dashboard/videos", my_videos, methods=["GET"], name="my_videos"),
        Route("/dashboard/scripts", my_scripts, methods=["GET"], name="my_scripts"),
        Route("/dashboard/images", my_images, methods=["GET"], name="my_images"),
        Route("/studio/{project_id}", studio, methods=["GET"], name="studio"),
        Route("/login", login, methods=["GET"], name="login_page"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
