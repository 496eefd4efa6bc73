"""Animated images (GIF, APNG, animated WebP) as a sequence of frames, like a short video.

Each frame is composited whole (Pillow applies every frame's disposal as it seeks), the
detector looks at all of them, and the detections are linked into tracks as in a video,
so a face the detector misses in one frame is still hidden there. The output is a new
animation built from the redacted frames alone, with the same frame durations and loop
count: no comment, XMP or EXIF, and colours converted to sRGB through the file's profile, as a
photo's are (`--keep-icc` keeps profile and values in PNG and WebP). Transparency is kept (a
sticker stays a sticker): a transparent frame is searched as a transparent photo is, its colour channels and
the frame over white and over black, and a hidden region is made opaque. GIF has one level of
transparency, so a partly transparent pixel of an animation written as GIF comes out either
transparent or opaque, as Pillow's writer rounds it. Pillow's GIF writer merges a frame
identical to the one before into it (adding up their durations), so such a GIF may come out
with fewer frames.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import asdict, replace
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageSequence

from veil.detect import FAST, TRANSPARENCY_VIEWS, DetectionProfile, detection_record, faces_as_shown, transparency
from veil.imagefile import (ICC_NOT_WRITTEN, MAX_PIXELS, ImageError, Photo, after_picture, decoding_errors, exif_bytes,
                            fitting_profile, from_png_colour, metadata_names, png_colour_chunks, to_srgb, write_encoded)
from veil.outputs import atomic_output
from veil.photo import check_as_planned, file_sha256, still_as_planned
from veil.kinds import DEFAULT_HIDE, frame_boxes, kinds_record, looks_for_faces, text_passes
from veil.models import runtime_record
from veil.people import shot_standing_turns
from veil.plan import Box, Kind, MediaPlan, RenderSettings, as_stored
from veil.regions import head_record, stored_head_box
from veil.render import redact_frame
from veil.track import TrackParams
from veil.video import EXTEND_S, FILLS_FRAME, MAX_GAP_S, tracked_regions

WRITE_FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}


def animation_frames(path: Path, srgb: bool = True) -> Iterator[tuple[np.ndarray, float]]:
    """Each frame composited in full, as RGB, or RGBA where some of it is transparent, with its
    duration in milliseconds (an APNG's is a fraction, as 1/30 s). A frame that reaches past the
    animation's screen grows Pillow's canvas, not the screen: see `_Header`. `srgb`: colours
    converted through the file's colour profile, as a photo's are (see imagefile.to_srgb)."""
    with decoding_errors("animation"):
        with Image.open(path) as image:
            if image.width * image.height * getattr(image, "n_frames", 1) > MAX_PIXELS:
                raise ImageError(f"larger than {MAX_PIXELS // 1_000_000} megapixels in all its frames")
            icc = image.info.get("icc_profile") if srgb else None
            # An APNG's gAMA and cHRM, as a PNG photo's (outputs carry neither).
            gamma, chromaticity = png_colour_chunks(image.info) if image.format == "PNG" else (None, None)
            for frame in ImageSequence.Iterator(image):
                pixels = np.array(frame.convert("RGBA") if frame.has_transparency_data else frame.convert("RGB"))
                if pixels.shape[2] == 4 and transparency(pixels) is None:
                    pixels = np.ascontiguousarray(pixels[:, :, :3])
                if icc:
                    pixels = to_srgb(Photo(pixels, fitting_profile(icc, pixels), image.format or "")).pixels
                elif gamma or chromaticity:
                    from_png_colour(pixels, gamma, chromaticity)
                yield pixels, float(frame.info.get("duration") or 0)


class _Header(NamedTuple):
    """What the animation's file says of it as a whole, read once (the frames are read apart)."""

    # Its size as browsers show it, before any frame grows Pillow's canvas: frames are searched
    # whole (a face reaching into the screen is found), and written cut to it.
    screen: tuple[int, int]
    loop: int | None  # the loop count (0: for ever), or None where the file has none (it plays once)
    profile: bytes | None  # its colour profile
    # An APNG's first image is only the picture shown where animation is not supported, outside
    # the animation (Pillow gives it as frame 0): it is hidden as the frames are, and written so.
    fallback: bool
    # Its first frame has 256 colours at most, a palette's (every GIF's; an APNG made of a GIF's
    # frames): dithered, so not judged for fine colour (see plan_animation).
    palette: bool
    metadata: tuple[str, ...]  # its metadata, by name (`metadata_names`): none of it is written
    data_after: int  # bytes stored after its end (another picture appended): never written, said


def _header(path: Path) -> _Header:
    with decoding_errors("animation"), Image.open(path) as image:
        fallback = image.format == "PNG" and bool(image.info.get("default_image"))
        palette = image.mode in ("P", "PA") or image.convert("RGB").getcolors(256) is not None
        return _Header(image.size, image.info.get("loop"), image.info.get("icc_profile"), fallback, palette,
                       metadata_names(image, path, exif_bytes(image, path)), after_picture(path, image.format)[1])


def track_params(durations_ms: list[float]) -> TrackParams:
    """The video tracker's settings for this animation's frame rate (every frame is detected)."""
    mean_s = max(sum(durations_ms) / len(durations_ms), 1) / 1000  # a 0 ms frame: browsers show it ~100 ms
    rate = 1 / mean_s
    return TrackParams(max_gap=max(2, round(MAX_GAP_S * rate)), extend=max(2, round(EXTEND_S * rate)),
                       fills_frame=FILLS_FRAME)


def plan_animation(path: Path, profile: DetectionProfile = FAST, sha256: str | None = None,
                   hide: tuple[Kind, ...] = DEFAULT_HIDE) -> MediaPlan:
    """Detect what `hide` names in every frame and link it into tracks, as in a video."""
    header = _header(path)
    if header.palette:
        # A palette's dithering has fine colour in every frame: each would be searched three times
        # (twice low-passed), and the dithered dev clips' GIFs gained regions no face explained.
        # A true-colour frame is judged as a photo is: a screen shot near one to one hid its face.
        profile = replace(profile, fine_colour_above=None)
    detections: dict[int, list[Box]] = {}
    kinds: dict[Kind, dict[int, list[Box]]] = {kind: {} for kind in hide if kind != "face"}
    people_turns: dict[int, dict[int, float]] = {}  # as a video's (veil.video.Scan)
    look = looks_for_faces(hide)
    durations: list[float] = []
    passes = text_passes(profile.name)
    colourless = 0  # frames held to the profile's colourless thresholds (detect_faces judges each)
    transparent = 0  # frames every detector looked at in three views (see photo.plan_photo)
    # Frames with a view brightened, levelled for hard light, or searched squeezed too (detect.prepared).
    brightened = levelled = smeared = smeared_vertically = low_passed = 0
    size = header.screen
    for index, (pixels, duration) in enumerate(animation_frames(path)):
        pictures, faces = faces_as_shown(pixels, profile) if look else ([], [])
        colourless += bool(pictures and pictures[0].colourless)
        transparent += transparency(pixels) is not None
        brightened += any(picture.gain != 1.0 for picture in pictures)
        levelled += any(picture.light is not None for picture in pictures)
        smeared += any(picture.smear == "sideways" for picture in pictures)
        smeared_vertically += any(picture.smear == "vertically" for picture in pictures)
        low_passed += any(picture.low_passed for picture in pictures)
        finds = frame_boxes(pixels, hide, 1.0, 1.0, passes)
        for kind, boxes in finds.boxes.items():
            kinds[kind][index] = boxes
        if finds.people_turns:
            people_turns[index] = finds.people_turns
        detections[index] = [stored_head_box(face) for face in faces]  # the head boxes a photo gets
        durations.append(duration)
    if not durations:
        raise ImageError("the animation has no frames")
    times = np.concatenate([[0], np.cumsum(durations[:-1])]) / 1000
    standing = shot_standing_turns(people_turns, [(0, len(durations) - 1)])  # one shot: no cuts are looked for
    regions = tracked_regions(detections, kinds, len(durations), [], track_params(durations), hide, *size,
                              standing=standing)
    as_stored(regions)
    params = track_params(durations)
    all_alike = colourless in (0, len(durations))
    return MediaPlan(
        path=str(Path(path).absolute()), kind="animation", width=size[0], height=size[1],
        frame_count=len(durations), sha256=sha256 or file_sha256(path), regions=regions,
        # Thresholds as they applied where every frame was alike; the count where they were not.
        detection={**({**detection_record(profile, *size, colourless == len(durations) if all_alike else None),
                       **head_record(),
                       # As a video's: how many frames each rule changed (every frame is searched).
                       "frames_judged": {"searches": len(durations), "brightened": brightened,
                                         "colourless": colourless, "smeared_sideways": smeared,
                                         "smeared_vertically": smeared_vertically,
                                         "levelled_for_hard_light": levelled,
                                         **({"low_passed": low_passed} if not header.palette else {})}}
                      if look else {}),
                   # Every kind's detector looked at these frames as viewers may show them too.
                   **({"transparency_views": list(TRANSPARENCY_VIEWS),
                       "transparent_frames": transparent} if transparent else {}),
                   **kinds_record(hide, *size, passes, people_turned_every=1, standing=standing), **runtime_record(),
                   "every_frame": True, "tracking": asdict(params),
                   **({"metadata_not_written": list(header.metadata)} if header.metadata else {}),
                   **({"data_after_image_not_written": header.data_after} if header.data_after else {})},
        frame_times=[float(t) for t in times],
    )


def render_animation(media: MediaPlan, settings: RenderSettings, target: Path, overwrite: bool = True,
                     keep_icc: bool = False) -> str | None:
    """Write the redacted animation to `target` (atomically), and return the SHA-256 of what was
    written: every frame hidden as planned,
    the same durations and loop count, in the format the suffix names (.gif, .png, .webp).
    Colours are converted to sRGB, or with `keep_icc` kept with their profile where the format
    holds one (PNG, WebP; GIF holds none: converted there, and the plan says so)."""
    fmt = WRITE_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot write an animation as {target.suffix or 'a file without a suffix'}; "
                         f"use one of {', '.join(sorted(WRITE_FORMATS))}")
    source = Path(media.path)
    check_as_planned(media)
    by_frame = media.boxes_by_frame()
    covered = media.covered_frames()
    secret = secrets.token_bytes(16)  # one blur shading per export, kept by each region across frames
    frames: list[Image.Image] = []
    durations: list[float] = []
    header = _header(source)
    width, height = header.screen
    media.detection.pop("profile_converted", None)  # this render's, not an earlier one's (a saved plan)
    # Frames are RGB(A): a profile for other pixels (grey) is neither used nor written.
    profile = fitting_profile(header.profile, np.zeros((1, 1, 3), np.uint8)) if keep_icc else None
    if profile and fmt == "GIF":
        media.detection["profile_converted"] = "a .gif file holds no colour profile"
        profile = None
    # The file's metadata as read now, not as the plan says (a plan from an older veil names none).
    media.detection.pop("metadata_not_written", None)
    if metadata := [*header.metadata, *([ICC_NOT_WRITTEN] if header.profile and profile is None else [])]:
        media.detection["metadata_not_written"] = metadata
    for index, (whole, duration) in enumerate(animation_frames(source, srgb=profile is None)):
        pixels = np.ascontiguousarray(whole[:height, :width])
        if pixels.shape[:2] != (media.height, media.width):
            raise ValueError(f"plan is for a {media.width}x{media.height} animation, the file is "
                             f"{pixels.shape[1]}x{pixels.shape[0]}")
        redact_frame(pixels, by_frame.get(index, []), settings, cover_all=index in covered, secret=secret)
        frames.append(Image.fromarray(pixels))
        durations.append(duration)
    if len(frames) != media.frame_count:
        raise ValueError(f"the plan is for {media.frame_count} frames, the animation has {len(frames)}")
    # The durations are the animation's frames', after the fallback image; GIF and WebP have no
    # place for that image, which was never a frame.
    options: dict = {"save_all": True, "duration": durations[1:] if header.fallback else durations}
    if header.fallback and fmt == "PNG":
        options["default_image"] = True
    elif header.fallback:
        frames = frames[1:]
    if any(frame.mode == "RGBA" for frame in frames):
        frames = [frame.convert("RGBA") for frame in frames]  # one mode for the writer; opaque ones stay opaque
        if fmt == "GIF":
            # Each frame is whole: cleared before the next is drawn, or its transparent pixels
            # would show the frame before.
            options["disposal"] = 2
    options["append_images"] = frames[1:]
    if header.loop is not None:
        options["loop"] = header.loop
    if fmt == "WEBP":
        options["lossless"] = True  # redaction is exact; lossy WebP would smear a fill's edge
    if profile:
        options["icc_profile"] = profile
    encoded = io.BytesIO()
    try:
        frames[0].save(encoded, format=fmt, **options)
    except (OSError, ValueError) as error:
        raise ImageError(f"cannot encode {fmt} animation ({error})") from None
    with atomic_output(target, overwrite, still_as_planned(media), [media.path]) as written:
        write_encoded(written.path, encoded.getbuffer())
    return written.sha256
