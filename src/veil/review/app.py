"""The review web application: a JSON API over a `ReviewSession`, and the page that uses it.

Security model: the server binds to 127.0.0.1 only, and every request (page, scripts,
images, API) must carry the session's random token: in the `?token=` of the address
printed in the terminal (which sets a cookie and redirects to a clean address), in the
cookie, or in an `X-Veil-Token` header. The Host header must be the loopback address
(so a DNS-rebinding page cannot talk to the server), no CORS header is ever sent, and
the page runs under a strict Content-Security-Policy. Media are addressed by their index
in the plan: no URL carries a file path, and the only files served are the session's
media and a fixed list of static files from the package. Request bodies are size-capped.
"""

from __future__ import annotations

import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from veil.plan import MediaPlan, Plan, PlanError
from veil.report import write_report
from veil.review.follow import MAX_FOLLOW_FRAMES, follow_box
from veil.review.frames import FrameError, MediaPixels, frame_hide
from veil.review.session import EditError, NotFound, ReviewSession
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
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class AddRegion(BaseModel):
    frame: int = Field(ge=0)
    shape: Literal["ellipse", "box"] = "ellipse"
    box: list[float] = Field(min_length=4, max_length=4)
    reason: str | None = Field(default=None, max_length=2000)


class SetBox(BaseModel):
    frame: int = Field(ge=0)
    box: list[float] = Field(min_length=4, max_length=4)
    reason: str | None = Field(default=None, max_length=2000)


class FrameOnly(BaseModel):
    frame: int = Field(ge=0)
    reason: str | None = Field(default=None, max_length=2000)


class ReasonOnly(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class SetShape(BaseModel):
    shape: Literal["ellipse", "box"]
    reason: str | None = Field(default=None, max_length=2000)


class KeepVisible(BaseModel):
    keep: bool
    reason: str | None = Field(default=None, max_length=2000)


class Extend(BaseModel):
    start: int = Field(ge=0, description="the frame whose box is followed")
    end: int = Field(ge=0, description="the last frame to fill, before or after start")
    reason: str | None = Field(default=None, max_length=2000)


def create_app(session: ReviewSession, token: str, port: int) -> FastAPI:
    """The application for one session; `port` is the one it is served on (for the Host check)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    pixels = MediaPixels(session.plan.media)
    cookie = f"veil_token_{port}"  # cookies ignore ports: two sessions must not share one
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.headers.get("host") not in hosts:
            return plain(403, "this server answers only to its loopback address")
        offered = request.query_params.get("token") or request.headers.get("x-veil-token") or request.cookies.get(cookie)
        if not offered or not secrets.compare_digest(offered.encode(), token.encode()):
            return plain(401, "open the address `veil review` printed in the terminal (it holds the access token)")
        if request.method in ("POST", "PUT"):
            limit = MAX_PLAN_BYTES if request.url.path == "/api/plan" else MAX_BODY_BYTES
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return plain(411, "a request body needs a Content-Length")
            if int(length) > limit:
                return plain(413, f"request body over {limit} bytes")
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound):
        return JSONResponse({"error": str(error)}, 404)

    @app.exception_handler(EditError)
    async def bad_edit(_: Request, error: EditError):
        return JSONResponse({"error": str(error)}, 400)

    @app.exception_handler(FrameError)
    async def bad_frame(_: Request, error: FrameError):
        return JSONResponse({"error": str(error)}, 404)

    @app.get("/")
    def index(request: Request) -> Response:
        if "token" in request.query_params:
            # Move the token from the address into a cookie, so it is not left in the
            # address bar, history or screenshots.
            response = RedirectResponse("/", 303)
            response.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
            return response
        return Response(static("index.html"), media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # browsers ask for one; there is none

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
            if not 0 <= frame < max(1, item.frame_count):
                raise NotFound(f"no frame {frame} in media file {index}")
            hide = frame_hide(item, frame) if view == "redacted" else None
            settings, revision = session.plan.render, session.revision
        data = pixels.jpeg(index, item, frame, hide, settings, revision, thumb=size == "thumb")
        # no-store (from SECURITY_HEADERS): unredacted frames must not land in the browser's disk cache.
        return Response(data, media_type="image/jpeg")

    @app.post("/api/media/{index}/regions")
    def add_region(index: int, body: AddRegion) -> dict[str, Any]:
        region = session.add_region(index, body.frame, body.shape, body.box, body.reason)
        return edited(index, region=region)

    @app.post("/api/media/{index}/regions/{region}/box")
    def set_box(index: int, region: str, body: SetBox) -> dict[str, Any]:
        session.set_box(index, region, body.frame, body.box, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/delete-box")
    def delete_box(index: int, region: str, body: FrameOnly) -> dict[str, Any]:
        session.delete_box(index, region, body.frame, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/delete")
    def delete_region(index: int, region: str, body: ReasonOnly) -> dict[str, Any]:
        session.delete_region(index, region, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/shape")
    def set_shape(index: int, region: str, body: SetShape) -> dict[str, Any]:
        session.set_shape(index, region, body.shape, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/keep")
    def keep_visible(index: int, region: str, body: KeepVisible) -> dict[str, Any]:
        session.set_keep_visible(index, region, body.keep, body.reason)
        return edited(index)

    @app.post("/api/media/{index}/regions/{region}/extend")
    def extend(index: int, region: str, body: Extend) -> dict[str, Any]:
        with session.lock:
            item, track = session.media(index), session.region(index, region)
            if item.kind != "video":
                raise EditError("only a video region can be extended across frames")
            if body.start not in track.boxes:
                raise EditError(f"region {region} has no box in frame {body.start} to follow")
            end = min(body.end, item.frame_count - 1)
            if abs(end - body.start) > MAX_FOLLOW_FRAMES:
                raise EditError(f"follow at most {MAX_FOLLOW_FRAMES} frames at a time")
            start_box, existing = track.boxes[body.start], dict(track.boxes)
        # Tracking decodes frames and takes time: done outside the lock, so the page stays live.
        boxes = follow_box(pixels.videos[index].frames(body.start, end), start_box, existing)
        added = session.add_boxes(index, region, boxes, {"from": body.start, "to": end, "method": "MIL tracker"},
                                  body.reason)
        return edited(index, added=added)

    @app.post("/api/undo")
    def undo() -> dict[str, Any]:
        return {"undone": session.undo(), **state()}

    @app.post("/api/redo")
    def redo() -> dict[str, Any]:
        return {"redone": session.redo(), **state()}

    @app.get("/api/plan")
    def get_plan() -> Response:
        with session.lock:
            data = json.dumps(session.plan.to_json(), indent=1)
        return Response(data, media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="plan.veil-plan.json"'})

    @app.put("/api/plan")
    async def put_plan(request: Request) -> Any:
        body = await request.body()
        if len(body) > MAX_PLAN_BYTES:
            return plain(413, f"plan over {MAX_PLAN_BYTES} bytes")
        try:
            plan = Plan.from_json(json.loads(body))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EditError(f"not JSON: {error}") from None
        except PlanError as error:
            raise EditError(str(error)) from None
        await run_in_threadpool(session.replace_plan, plan, request.query_params.get("reason"))
        return state()

    @app.post("/api/export")
    def export() -> Response:
        started = session.start_export(render_planned, write_report)
        if not started:
            return JSONResponse({"error": "an export is already running"}, 409)
        return JSONResponse(export_json(session), 202)

    @app.get("/api/export")
    def export_status() -> dict[str, Any]:
        with session.lock:
            return export_json(session)

    def edited(index: int, **extra: Any) -> dict[str, Any]:
        with session.lock:
            return {**extra, **state_json(session), "changed": media_json(index, session.media(index))}

    return app


def plain(status: int, message: str) -> Response:
    return Response(message + "\n", status, media_type="text/plain; charset=utf-8", headers=SECURITY_HEADERS)


def static(name: str) -> bytes:
    return resources.files("veil.review").joinpath("static", name).read_bytes()


def state_json(session: ReviewSession) -> dict[str, Any]:
    plan = session.plan
    return {
        "revision": session.revision,
        "undo": session.undo_stack[-1].action if session.undo_stack else None,
        "redo": session.redo_stack[-1].action if session.redo_stack else None,
        "render": {"mode": plan.render.mode, "color": list(plan.render.color), "blocks": plan.render.blocks},
        "plan_file": str(session.plan_path),
        "media": [
            {"index": i, "name": Path(m.path).name, "kind": m.kind, "width": m.width, "height": m.height,
             "frame_count": m.frame_count, "regions": len(m.regions),
             "kept_visible": sum(r.keep_visible for r in m.regions), "output": str(t)}
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
        "frame_count": media.frame_count,
        "frame_times": media.frame_times,
        "scene_cuts": media.scene_cuts,
        "unanalysed_frames": media.unanalysed_frames,
        "unchecked_frames": media.unchecked_frames,
        "regions": [
            {"id": r.id, "source": r.source, "shape": r.shape, "keep_visible": r.keep_visible, "reason": r.reason,
             # [frame, x0, y0, x1, y1, origin], sorted by frame: the timeline and overlay read this
             "boxes": [[f, b.x0, b.y0, b.x1, b.y1, b.origin] for f, b in sorted(r.boxes.items())]}
            for r in media.regions
        ],
    }


def export_json(session: ReviewSession) -> dict[str, Any]:
    s = session.export_state
    return {"state": s.state, "done": s.done, "total": s.total, "outputs": s.outputs, "report": s.report,
            "error": s.error}
