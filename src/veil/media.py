"""Either kind of media: plan or render a photo or a video through its own flow."""

from __future__ import annotations

from pathlib import Path

from veil.detect import DetectionProfile
from veil.outputs import media_kind
from veil.photo import plan_photo, render_photo
from veil.plan import MediaPlan, RenderSettings, Shape
from veil.video import plan_video, render_video
from veil.videofile import Encoding


def plan_media(source: Path, profile: DetectionProfile, shape: Shape, show_progress: bool = False,
               start: float | None = None, end: float | None = None, only_range: bool = False) -> MediaPlan:
    """Detect (and for video, track) the faces of one file into its plan."""
    kind = media_kind(source)
    if kind is None:
        raise ValueError(f"unsupported file type {source.suffix or '(no suffix)'}")
    if kind == "image":
        media = plan_photo(source, profile)
    else:
        media = plan_video(source, profile, show_progress=show_progress, start=start, end=end, only_range=only_range)
    for region in media.regions:
        region.shape = shape
    return media


def render_media(media: MediaPlan, settings: RenderSettings, target: Path, show_progress: bool = False,
                 encoding: Encoding = Encoding()) -> None:
    """Write one file's redacted output, following its plan exactly."""
    if media.kind == "image":
        render_photo(media, settings, target)
    else:
        render_video(media, settings, target, show_progress=show_progress, encoding=encoding)
