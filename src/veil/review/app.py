"""The review web application: a JSON API over a `ReviewSession`, and the page that uses it.

Security model: the server binds to 127.0.0.1 only, and every request (page, scripts,
images, API) must carry the session's random token, in an HttpOnly SameSite=Strict cookie
or an `X-Veil-Token` header, and be for a path under the session's random root (`SessionRoot`):
the cookie is given for that path alone, since browsers send a host's cookies to every port of
it, and another local user's server on 127.0.0.1 would otherwise be sent the token by the
reviewer's browser. Neither the token nor the root appears in the address printed or on any
command line: that address holds a one-time launch code instead, which `GET /?code=` exchanges
for the cookie, leading the browser on to the root, and which is dead once used. The page's
own address names the root, which is of no use without the cookie. Where the system says who
owns each connection (Linux), only the
programs of the user who started the server may exchange a code (`veil.review.peer`), so a code
another user reads off the browser's command line is of no use to them; elsewhere the browser is
started on a private page that leads to the address, never on the address itself. A used code
presented again leads on to the root only where the connection is known to be the reviewer's
own (Linux); elsewhere it is said, on the page and in the terminal: someone else may have used
it first. Every state-changing request must
also be JSON (`Content-Type: application/json`, which a plain HTML form cannot send) and
come from the page itself (`Origin` or `Sec-Fetch-Site`), and every body is parsed
strictly: anything but a JSON object of the right shape is a 400, never a 500. The Host
header must be the loopback address (so a DNS-rebinding page cannot talk to the server),
no CORS header is ever sent, no response may be embedded by another origin's page
(Cross-Origin-Resource-Policy), and the page runs under a strict Content-Security-Policy.
Media are addressed by their index in the plan: no URL carries a file path, and the only
files served are the session's media (frames, and the original sound for listening to speech)
and a fixed list of static files from the package.
Request bodies are size-capped.
"""

from __future__ import annotations

import html
import json
import math
import secrets
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from veil.names import shown
from veil.plan import MediaPlan, PlanError, drawn_shape
from veil.report import write_report
from veil.review.follow import MAX_FOLLOW_FRAMES, follow_box
from veil.review.frames import FrameError, MediaPixels, frame_hide
from veil.review.peer import is_own
from veil.review.session import EditError, NotFound, PlanNotSaved, ReviewSession, sound_seconds
from veil.pipeline import render_planned

# A plan for an hour of video with many faces is tens of MiB of JSON; anything larger
# is refused before it is read. Other API bodies are a few hundred bytes.
MAX_PLAN_BYTES = 64 << 20
MAX_BODY_BYTES = 64 << 10
STATIC_FILES = {  # the only files the page is made of: name -> content type
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # A page of another local server (127.0.0.1, another port) is same-site: the Strict cookie goes
    # with its requests, and it could show the original frames in an <img>, or play the sound.
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The page's player is given the original file; its type by suffix (browsers sniff no further: nosniff).
SOUND_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
               ".aac": "audio/aac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
               ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
               ".webm": "video/webm"}


def page_leading_to(address: str) -> str:
    """A page that takes the browser on to `address` at once (and links to it)."""
    escaped = html.escape(address, quote=True)
    return (f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={escaped}">'
            f'<title>veil review</title><p><a href="{escaped}">Open the review page</a></p>\n')


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# No frame number or pixel coordinate needs more digits; longer ones are refused before
# Python builds (or refuses, with a ValueError) a huge int.
MAX_INT_DIGITS = 18


def cookie_values(header: str, name: str) -> list[str]:
    """Every value a Cookie header gives the cookie `name` (Starlette's parsing keeps the last)."""
    return [value.strip() for key, _, value in (part.strip().partition("=") for part in header.split(";"))
            if key == name]


class SessionRoot:
    """The session's paths under its random root: `/<root>/api/state` is routed as `/api/state`,
    marked as asked for inside it ("veil.inside"), which the guard requires of every request but
    the launch code's exchange."""

    def __init__(self, app: Callable, root: str):
        self.app, self.root = app, root

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            inside = scope["path"].startswith(self.root)
            path = scope["path"][len(self.root) - 1:] if inside else scope["path"]
            scope = {**scope, "path": path, "raw_path": path.encode(), "veil.inside": inside}
        await self.app(scope, receive, send)


class JsonAnswer(JSONResponse):
    """A JSON answer in ASCII. A file name that is not UTF-8 (Latin-1 "caf\xe9.jpg" from an old
    camera card) is held by Python with a lone surrogate, which UTF-8 cannot encode: every answer
    naming the file was a 500, and its review could not be opened. Escaped, the page shows such a
    byte as a replacement character."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class AnsweringJson(APIRoute):
    """A route whose answers are `JsonAnswer`s, and never checked against a response model made
    from its return type: pydantic's serializer of that model refuses a lone surrogate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "response_class": JsonAnswer, "response_model": None})


class LaunchCodes:
    """The one-time code of the address a browser is opened with, exchanged for the cookie.

    One code is live at a time; redeeming it makes a new one and calls `announce`, so the
    terminal can show a fresh address for another browser (the server's only way to hand
    out access after the first use).
    """

    def __init__(self, announce: Callable[[], None] | None = None):
        self.current = secrets.token_urlsafe(24)
        self.used: set[str] = set()
        self.announce = announce
        self.lock = threading.Lock()

    def redeem(self, code: str) -> bool:
        with self.lock:
            if not secrets.compare_digest(code.encode(), self.current.encode()):
                return False
            self.used.add(self.current)
            self.current = secrets.token_urlsafe(24)
        if self.announce is not None:
            self.announce()
        return True

    def was_used(self, code: str) -> bool:
        with self.lock:
            return code in self.used


class Body(BaseModel):
    # Strict: "yes" is not a bool, "3" not a frame number, and an unknown field is a mistake
    # (a misspelt "reason" would lose the reason): a 400, not a guess.
    model_config = ConfigDict(strict=True, extra="forbid")


class Empty(Body):
    """The body of export: `{}`."""


class Shown(Body):
    """The body of undo and redo: the file on the reviewer's screen (none: the gallery), and the
    plan's revision the page showed (none: not checked)."""

    media: int | None = None
    revision: int | None = None


class AddRegion(Body):
    frame: int = Field(ge=0)
    shape: Literal["ellipse", "box"] | None = None  # None: an ellipse for a face, a box for any other kind
    box: list[float] = Field(min_length=4, max_length=4)
    reason: str | None = Field(default=None, max_length=2000)
    kind: Literal["face", "plate", "text", "person"] = "face"  # speech is marked in time: AddSegment


class SetBox(Body):
    frame: int = Field(ge=0)
    box: list[float] = Field(min_length=4, max_length=4)
    reason: str | None = Field(default=None, max_length=2000)


class FrameOnly(Body):
    frame: int = Field(ge=0)
    reason: str | None = Field(default=None, max_length=2000)


class ReasonOnly(Body):
    reason: str | None = Field(default=None, max_length=2000)


class SetShape(Body):
    shape: Literal["ellipse", "box"]
    reason: str | None = Field(default=None, max_length=2000)


class KeepVisible(Body):
    keep: bool
    reason: str | None = Field(default=None, max_length=2000)


class Segment(Body):
    """A speech segment's times, in seconds from the start of the sound. Times before it are clipped
    to it (as times past its end are to the end): the page's "now" on a frame shown before a video's
    sound begins is a negative time of the sound."""

    start: float
    end: float
    reason: str | None = Field(default=None, max_length=2000)


class Extend(Body):
    start: int = Field(ge=0, description="the frame whose box is followed")
    end: int = Field(ge=0, description="the last frame to fill, before or after start")
    reason: str | None = Field(default=None, max_length=2000)


def create_app(session: ReviewSession, token: str, port: int, codes: LaunchCodes,
               say: Callable[[str], None] = lambda line: None, own_user_only: bool = False) -> FastAPI:
    """The application for one session; `port` is the one it is served on (Host and Origin checks);
    `say` tells the terminal what the reviewer must know there too; `own_user_only`: the owner of
    a connection exchanging a launch code is checked (`veil.review.peer`), which a real socket's
    server can do where the system lists it."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = AnsweringJson
    app.state.root = root = f"/{secrets.token_urlsafe(18)}/"  # the page's address: `SessionRoot`
    # The answer to a launch code is the cookie, and a page that goes on to the session's root (which
    # keeps the dead code out of the address bar and history). A 303 there did not do: the browser
    # comes from the launch page, a file:// page, another site, and a redirect that began there is
    # sent without the SameSite=Strict cookie it has just been given; the page's own step is same-site.
    entered_page = page_leading_to(root)
    pixels = MediaPixels(session.plan.media)
    cookie = f"veil_token_{port}"  # cookies ignore ports: two sessions must not share one
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    def authorised(request: Request) -> bool:
        # Every cookie of the name, not the last: any server on 127.0.0.1 can set one of its own for
        # "/" (browsers ignore ports), which the browser sends beside the session's, and the review
        # was locked out for good.
        offered = [request.headers.get("x-veil-token"), *cookie_values(request.headers.get("cookie", ""), cookie)]
        return any(value is not None and secrets.compare_digest(value.encode(), token.encode()) for value in offered)

    def enter(code: str, request: Request) -> Response:
        """Exchange a launch code for the cookie; a used code leads on to the root only for a
        connection known to be the reviewer's own. Only here is a connection's owner looked up:
        without the cookie, which only this exchange gives, every other request is refused anyway."""
        if own_user_only and not (request.client and is_own((request.client.host, request.client.port),
                                                            ("127.0.0.1", port))):
            return plain(403, "this review answers only to the programs of the user who started it: open its address "
                              "in a browser of that user's")
        if codes.redeem(code) or authorised(request):
            response = Response(entered_page, media_type="text/html; charset=utf-8")
            response.set_cookie(cookie, token, httponly=True, samesite="strict", path=root)
            return response
        if codes.was_used(code) and own_user_only:
            # A program of the reviewer's own (checked above), the browser that used it reopening the
            # address, say: its token cookie is sent only under the root. Where the owner cannot be
            # checked, the root is never given for a used code: no cookie sent to "/" can say which
            # browser this is (another local server is sent it too), and with the root known, that
            # server could have the browser come to it there, token cookie and all.
            return Response(entered_page, media_type="text/html; charset=utf-8")
        if codes.was_used(code):
            # The browser that used it holds the cookie: this one did not, and may be the reviewer's,
            # beaten to the code by someone who has the review now.
            say("veil review: WARNING: the review's one-time code was used twice: if this was not you, stop the "
                "review (Ctrl+C): someone else may have opened it, with the original photos and videos")
            return plain(401, "this review's one-time address was used already, by another browser: if that was "
                              "not you, someone else may have opened the review, with the original photos and "
                              "videos: stop it now (Ctrl+C in the terminal of `veil review`). If it was you, "
                              "open the newest address `veil review` printed in the terminal")
        return plain(401, "this is not a live one-time address of this review: open the newest address "
                          "`veil review` printed in the terminal")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        code = request.query_params.get("code") if request.url.path == "/" and request.method == "GET" else None
        if request.headers.get("host") not in hosts:
            response = plain(403, "this server answers only to its loopback address")
        elif code is not None:
            response = enter(code, request)
        elif request.url.path == "/favicon.ico" and not request.scope.get("veil.inside"):
            response = Response(status_code=204)  # browsers ask for one at the host's root; there is none
        elif not (request.scope.get("veil.inside") and authorised(request)):
            response = plain(401, "open the one-time address `veil review` printed in the terminal")
        else:
            # The Host was checked above: the page's own origin is the one it was loaded from.
            response = refusal(request, f"http://{request.headers['host']}") or await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    app.add_middleware(SessionRoot, root=root)  # (added last: it runs first, before the guard)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound):
        return JsonAnswer({"error": str(error)}, 404)

    @app.exception_handler(EditError)
    async def bad_edit(_: Request, error: EditError):
        return JsonAnswer({"error": str(error)}, 400)

    @app.exception_handler(PlanNotSaved)
    async def not_saved(_: Request, error: PlanNotSaved):
        return JsonAnswer({"error": str(error)}, 507)

    @app.exception_handler(FrameError)
    async def bad_frame(_: Request, error: FrameError):
        return JsonAnswer({"error": str(error)}, 404)

    @app.exception_handler(ValidationError)
    async def bad_body(_: Request, error: ValidationError):
        return JsonAnswer({"error": validation_message(error.errors())}, 400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError):
        # A path that names no media file or region is not found; a bad query is a bad request.
        if all(e["loc"][0] == "path" for e in error.errors()):
            return JsonAnswer({"error": "not found"}, 404)
        return JsonAnswer({"error": validation_message(error.errors())}, 400)

    @app.get("/")
    def index() -> Response:
        return Response(static("index.html"), media_type="text/html; charset=utf-8")

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            return plain(404, "not found")
        return Response(static(name), media_type=STATIC_FILES[name])

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        with session.lock:
            return state_json(session)

    @app.get("/api/media/{index}")
    def media(index: int) -> dict[str, Any]:
        with session.lock:
            return media_json(index, session.media(index))

    @app.get("/media/{index}/frame/{frame}.jpg")
    def frame_image(index: int, frame: int, view: Literal["original", "redacted"] = "redacted",
                    size: Literal["full", "thumb"] = "full") -> Response:
        with session.lock:
            item = session.media(index)
            if item.kind == "audio" or not 0 <= frame < max(1, item.frame_count):
                raise NotFound(f"no frame {frame} in media file {index}")
            hide = frame_hide(item, frame) if view == "redacted" else None
            settings, revision = session.plan.render, session.revision
        data = pixels.jpeg(index, item, frame, hide, settings, revision, thumb=size == "thumb")
        # no-store (from SECURITY_HEADERS): unredacted frames must not land in the browser's disk cache.
        return Response(data, media_type="image/jpeg")

    @app.get("/media/{index}/sound")
    def sound(index: int) -> Response:
        """The original sound (a video's file as it is: browsers play its audio), for listening to speech."""
        with session.lock:
            item = session.media(index)
            if sound_seconds(item) is None:
                raise NotFound(f"media file {index} has no sound")
            path = Path(item.path)
        try:  # looked at here: FileResponse's own look, for a file moved since the review began, is a traceback
            found = path.stat()
        except OSError as error:
            raise NotFound(f"{shown(path.name)} cannot be read: {error.strerror}") from None
        # FileResponse answers Range requests, so the page's player can seek; no-store as for frames.
        return FileResponse(path, media_type=SOUND_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                            stat_result=found)

    @app.post("/api/media/{index}/regions")
    def add_region(index: int, data: JsonObject) -> dict[str, Any]:
        body = AddRegion.model_validate(data)
        region = session.add_region(index, body.frame, body.shape or drawn_shape(body.kind, "ellipse"), body.box,
                                    body.reason, body.kind)
        return edited(index, region=region)

    @app.post("/api/media/{index}/regions/{region}/box")
    def set_box(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = SetBox.model_validate(data)
        session.set_box(index, region, body.frame, body.box, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/delete-box")
    def delete_box(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = FrameOnly.model_validate(data)
        session.delete_box(index, region, body.frame, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/delete")
    def delete_region(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = ReasonOnly.model_validate(data)
        session.delete_region(index, region, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/shape")
    def set_shape(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = SetShape.model_validate(data)
        session.set_shape(index, region, body.shape, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/keep")
    def keep_visible(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = KeepVisible.model_validate(data)
        session.set_keep_visible(index, region, body.keep, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/speech")
    def add_segment(index: int, data: JsonObject) -> dict[str, Any]:
        body = Segment.model_validate(data)
        region = session.add_segment(index, body.start, body.end, body.reason)
        return edited(index, region=region)

    @app.post("/api/media/{index}/regions/{region}/times")
    def set_segment(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = Segment.model_validate(data)
        session.set_segment(index, region, body.start, body.end, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/extend")
    def extend(index: int, region: str, data: JsonObject) -> dict[str, Any]:
        body = Extend.model_validate(data)
        with session.lock:
            item, track = session.media(index), session.pictured(index, region)
            if item.kind == "image":
                raise EditError("only a video region can be extended across frames")
            if body.start not in track.boxes:
                raise EditError(f"region {region} has no box in frame {body.start} to follow")
            end = min(body.end, item.frame_count - 1)
            if abs(end - body.start) > MAX_FOLLOW_FRAMES:
                raise EditError(f"follow at most {MAX_FOLLOW_FRAMES} frames at a time")
            start_box, existing = track.boxes[body.start], dict(track.boxes)
        # Tracking decodes frames and takes time: done outside the lock, so the page stays live.
        boxes = follow_box(pixels.videos[index].frames(body.start, end), start_box, existing)
        added = session.add_boxes(index, region, boxes, {"from": body.start, "to": end, "method": "MIL tracker, checked against the anchor's picture"},
                                  body.reason)
        return edited(index, added=added)

    @app.post("/api/undo")
    def undo(data: JsonObject) -> dict[str, Any]:
        shown = Shown.model_validate(data)
        undone, region = session.undo(shown.media, shown.revision)
        return {"undone": undone, "region": region, **state()}

    @app.post("/api/redo")
    def redo(data: JsonObject) -> dict[str, Any]:
        shown = Shown.model_validate(data)
        redone, region = session.redo(shown.media, shown.revision)
        return {"redone": redone, "region": region, **state()}

    @app.get("/api/plan")
    def get_plan() -> Response:
        with session.lock:
            data = json.dumps(session.plan.checksummed_json(), indent=1)
        return Response(data, media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="plan.veil-plan.json"'})

    @app.put("/api/plan")
    async def put_plan(request: Request, data: JsonObject) -> Any:
        try:
            not_taken = await run_in_threadpool(session.replace_plan, data, request.query_params.get("reason"))
        except PlanError as error:
            raise EditError(str(error)) from None
        except RecursionError:  # a body nested just below json's limit can still be too deep for the schema check
            raise EditError("not a valid veil plan: nested too deeply") from None
        if not_taken:
            say("veil review: the uploaded plan's regions were taken, but not its settings, which stay the "
                f"review's: {'; '.join(not_taken)}")
        return {**state(), "settings_not_taken": not_taken}

    @app.post("/api/export")
    def export(data: JsonObject) -> Response:
        Empty.model_validate(data)
        started = session.start_export(render_planned, write_report, say)
        if not started:
            return JsonAnswer({"error": "an export is already running"}, 409)
        return JsonAnswer(export_json(session), 202)

    @app.get("/api/export")
    def export_status() -> dict[str, Any]:
        with session.lock:
            return export_json(session)

    def edited(index: int, **extra: Any) -> dict[str, Any]:
        with session.lock:
            return {**extra, **state_json(session), "changed": media_json(index, session.media(index))}

    return app


def refusal(request: Request, origin: str) -> Response | None:
    """Why a state-changing request is refused (None if it is not): it must be JSON, from the page itself.

    A cross-site page can make a browser send a form or a "simple" request with the
    cookie; it can neither set a JSON content type without a CORS preflight (never
    allowed here) nor forge the Origin and Sec-Fetch-Site headers.
    """
    if request.method in SAFE_METHODS:
        return None
    sent_origin, site = request.headers.get("origin"), request.headers.get("sec-fetch-site")
    if sent_origin not in (None, origin) or site not in (None, "same-origin") or (sent_origin, site) == (None, None):
        return plain(403, "changes are accepted only from the review page itself")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return plain(403, "changes must be sent as application/json")
    limit = MAX_PLAN_BYTES if request.url.path == "/api/plan" else MAX_BODY_BYTES
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return plain(411, "a request body needs a Content-Length")
    if int(length) > limit:
        return plain(413, f"request body over {limit} bytes")
    return None


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object: any other body is a 400 (EditError), never a 500."""
    try:
        data = json.loads(await request.body(), parse_constant=no_constant, parse_float=finite, parse_int=short_int)
    except ClientDisconnect:  # the page left mid-request: nobody reads the answer
        raise EditError("the request body did not arrive") from None
    except RecursionError:
        raise EditError("not JSON: nested too deeply") from None
    except json.JSONDecodeError as error:
        raise EditError(f"not JSON: {error.msg} at character {error.pos}") from None
    except UnicodeDecodeError:
        raise EditError("not JSON: not UTF-8 text") from None
    except ValueError as error:  # from the three parse_ hooks below
        raise EditError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise EditError("the request body must be a JSON object")
    return data


JsonObject = Annotated[dict[str, Any], Depends(json_object)]


def no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:24]}")
    return value


def short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"number out of range: {text[:24]}...")
    return int(text)


def validation_message(errors: Any) -> str:
    """Pydantic's errors in one short line: where and what, never the (maybe huge) value sent."""
    parts = ["/".join(str(p) for p in e["loc"] if p != "body") + ": " + e["msg"] for e in errors[:3]]
    return "; ".join(parts)


def plain(status: int, message: str) -> Response:
    return Response(message + "\n", status, media_type="text/plain; charset=utf-8", headers=SECURITY_HEADERS)


def static(name: str) -> bytes:
    return resources.files("veil.review").joinpath("static", name).read_bytes()


def state_json(session: ReviewSession) -> dict[str, Any]:
    plan = session.plan
    return {
        "revision": session.revision,
        "undo": session.step_label(session.undo_stack),
        "redo": session.step_label(session.redo_stack),
        "render": {"mode": plan.render.mode, "color": list(plan.render.color), "blocks": plan.render.blocks,
                   "voice": plan.render.voice},
        "plan_file": str(session.plan_path),
        "media": [
            {"index": i, "name": Path(m.path).name, "kind": m.kind, "width": m.width, "height": m.height,
             "frame_count": m.frame_count, "regions": sum(r.kind != "speech" for r in m.regions),
             "speech": sum(r.kind == "speech" for r in m.regions),
             "kept_visible": sum(r.keep_visible and r.kind != "speech" for r in m.regions),
             "kept_audible": sum(r.keep_visible and r.kind == "speech" for r in m.regions), "output": str(t)}
            for i, (m, t) in enumerate(zip(plan.media, session.targets))
        ],
        "export": export_json(session),
    }


def media_json(index: int, media: MediaPlan) -> dict[str, Any]:
    return {
        "index": index,
        "name": Path(media.path).name,
        "kind": media.kind,
        "width": media.width,
        "height": media.height,
        # The shape players show (a video of non-square pixels stretched): the page shows it so.
        "shown": media.detection.get("searched_as_shown") or [media.width, media.height],
        "frame_count": media.frame_count,
        "frame_times": media.frame_times,
        # Where the file's start lies on that clock: the page shows times from it, as players and
        # --start/--end count them.
        "file_start": media.file_start(),
        "scene_cuts": media.scene_cuts,
        # Frames shown all hidden: not analysable, or outside --start/--end and covered (not --only-range).
        "covered_frames": sorted(media.covered_frames()),
        # Frames outside --start/--end left as they are (--only-range): a gap the reviewer must see.
        "unchecked_frames": [] if media.unchecked_covered else media.unchecked_frames,
        "regions": [
            {"id": r.id, "kind": r.kind, "source": r.source, "shape": r.shape, "keep_visible": r.keep_visible, "reason": r.reason,
             # [frame, x0, y0, x1, y1, origin], sorted by frame: the timeline and overlay read this
             "boxes": [[f, b.x0, b.y0, b.x1, b.y1, b.origin] for f, b in sorted(r.boxes.items())]}
            for r in media.regions if r.kind != "speech"  # on the time axis, not in the picture: below
        ],
        "sound_seconds": sound_seconds(media),  # None: no sound, so no speech lane
        # Where the sound's first sample lies on the frames' clock: speech times are counted from it.
        "sound_origin": media.speech_record().get("sound_origin", 0.0),
        "speech": [
            {"id": r.id, "source": r.source, "start": r.start, "end": r.end, "keep_visible": r.keep_visible,
             "reason": r.reason}
            for r in sorted((r for r in media.regions if r.kind == "speech" and r.start is not None),
                            key=lambda r: r.start)
        ],
    }


def export_json(session: ReviewSession) -> dict[str, Any]:
    s = session.export_state
    return {"state": s.state, "done": s.done, "total": s.total, "outputs": s.outputs, "report": s.report,
            "error": s.error, "revision": s.revision, "notes": s.notes}
