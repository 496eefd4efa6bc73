"""The photo flow: detect faces into a plan, render a plan into a redacted photo."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from veil.detect import (FAST, TRANSPARENCY_VIEWS, DetectionProfile, detection_record, faces_across_the_seam,
                         faces_as_shown, picture_record, transparency, wraps_round)
from veil.imagefile import (ICC_NOT_WRITTEN, UNHEARD, ImageError, Photo, damage_lines, holds_alpha, holds_profile,
                            read_photo, to_srgb, write_photo)
from veil.kinds import DEFAULT_HIDE, looks_for_faces, photo_regions, text_passes
from veil.models import runtime_record
from veil.names import shown
from veil.outputs import atomic_output
from veil.plan import Kind, MediaPlan, RenderSettings
from veil.regions import face_region, head_record
from veil.render import redact_frame
from veil.tonemap import tone_map_record


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


PLAN_OUT_OF_DATE = "the file has changed since its plan was made (SHA-256 differs): detect again"


def check_as_planned(media: MediaPlan) -> None:
    """Refuse to render a plan over another file than its own: its regions were found in other
    pixels or sound, and would leave faces (or voices) where they are not."""
    if media.sha256 and file_sha256(Path(media.path)) != media.sha256:
        raise ValueError(PLAN_OUT_OF_DATE)


def still_as_planned(media: MediaPlan) -> Callable[[Path], None]:
    """A check, for the moment before an output is moved into place at `target`, that the input is
    still the file the plan was made from (one replaced while veil worked on it, by a sync tool or
    an uploader, would be rendered with the masks of other pixels, or with none), and that the
    output's name does not now lead to the input itself: an output folder replaced meanwhile by a
    link to the inputs' folder had the originals replaced by their redacted copies."""
    def check(target: Path) -> None:
        if media.sha256 and file_sha256(Path(media.path)) != media.sha256:
            raise ValueError("the file changed while veil was redacting it (its SHA-256 is no longer the one "
                             "planned): nothing was written; redact it again")
        with contextlib.suppress(OSError):  # nothing at the name: nothing of the input's to replace
            if os.path.samefile(target, media.path):
                raise ValueError(f"its output's name {shown(target)} now leads to the file itself (a folder on its "
                                 "way replaced or linked while veil worked): the original was kept, nothing was "
                                 "written")
    return check


# The plan's record that a photo with damaged data was planned with --salvage: it may be rendered.
SALVAGED = "damaged_data_salvaged"


def refuse_unsalvaged(damage_said: Sequence[str], salvaged: bool, way_through: str) -> None:
    """Fails closed on a photo whose decoder found damaged or stray data (`Photo.damage_said`)
    unless it is salvaged (--salvage): where the data is damaged, the decoder fills in what it
    lost, and a face there can come out garbled, missed by the search and still recognisable."""
    if damage_said and not salvaged:
        found = damage_said[0] if damage_said[0] == UNHEARD else \
            f"its decoder found damaged or stray data in its picture ({'; '.join(damage_said)})"
        raise ImageError(f"{found}: where its data is damaged, a face in the part the decoder filled in can come out "
                         f"garbled, missed by the search and still recognisable ({way_through})")


def plan_photo(path: Path, profile: DetectionProfile = FAST, photo: Photo | None = None,
               sha256: str | None = None, hide: tuple[Kind, ...] = DEFAULT_HIDE, salvage: bool = False) -> MediaPlan:
    """Detect what `hide` names in the photo into its plan; `photo` and `sha256`, if the caller
    has read them already. A photo with damaged data is refused, unless `salvage` (--salvage)."""
    photo = photo or read_photo(path)
    refuse_unsalvaged(photo.damage_said, salvage, "--salvage writes it as decoded")
    height, width = photo.pixels.shape[:2]
    # The detectors see the colours viewers show, through the photo's colour profile: its stored
    # values can lie far from them (a picture stored as its negative, its channels swapped, squeezed
    # into the bright end, each with a profile that shows it as it was), and faces searched for in
    # the values as stored were missed. The copy is the detectors' alone: the render converts or
    # keeps the profile as asked.
    shown = to_srgb(replace(photo, pixels=photo.pixels.copy())).pixels if photo.icc_profile else photo.pixels
    # People need the faces too: a face whose body the person detector missed still gets one.
    look = looks_for_faces(hide)
    # A transparent photo is looked at as viewers may show it, too: faces found in any view are hidden.
    pictures, found = faces_as_shown(shown, profile) if look else ([], [])
    joined = look and wraps_round(width, height)
    if joined:
        found += faces_across_the_seam(shown, profile)
    faces = [face_region(f"f{i + 1}", face) for i, face in enumerate(found)]
    picture = pictures[0] if pictures else None
    others, record = photo_regions(shown, hide, faces, text_passes(profile.name),
                                   [each.people_as_given for each in pictures] or None)
    return MediaPlan(
        path=str(Path(path).absolute()),
        kind="image",
        width=width,
        height=height,
        sha256=sha256 or file_sha256(path),
        regions=(faces if "face" in hide else []) + others,
        # How the face detectors judged the photo, and what that changed (a dark photo brightened
        # for them by `exposure_gain`: the output is not); a transparent photo's views each judged alone.
        detection={**({**detection_record(profile, width, height, picture.colourless), **picture_record(picture),
                        **head_record()} if picture else {}), **record, **runtime_record(),
                   **({"searched_across_the_seam": joined} if look else {}),
                   **({"transparency_views": [{"view": view, **picture_record(each)}
                                              for view, each in zip(TRANSPARENCY_VIEWS, pictures)]}
                      if len(pictures) > 1 else {}),
                   **file_record(photo), **({SALVAGED: True} if photo.damage_said else {})},
    )


# What a plan records of a photo's file beyond its picture (see file_record).
FILE_RECORD_KEYS = ("other_images_not_written", "motion_video_not_written", "data_after_image_not_written",
                    "decoder_messages", "hdr_tone_mapped", "colour_box_converted", "metadata_not_written")


def file_record(photo: Photo) -> dict[str, Any]:
    """What writing the photo leaves out of its file (other images, a motion photo's video, bytes
    stored after the picture, an HDR photo's range above SDR, a colour box's wide primaries, its
    metadata by name) and what its decoder said of it."""
    return {**({"other_images_not_written": photo.others} if photo.others else {}),
            **({"motion_video_not_written": True} if photo.video_after else {}),
            **({"data_after_image_not_written": photo.data_after} if photo.data_after else {}),
            **({"decoder_messages": list(photo.decoder_messages)} if photo.decoder_messages else {}),
            **({"hdr_tone_mapped": {**tone_map_record(photo.tone_mapped_from),
                                    "primaries": "the colour box's converted to BT.709 (sRGB's)"}}
               if photo.tone_mapped_from else {}),
            **({"colour_box_converted": photo.colour_box_converted} if photo.colour_box_converted else {}),
            **({"metadata_not_written": list(photo.metadata)} if photo.metadata else {})}


PLAN_SALVAGE_WAY = "plan it again with --salvage to write it as decoded"


def refuse_unsalvaged_plan(media: MediaPlan, way_through: str = PLAN_SALVAGE_WAY) -> None:
    """`refuse_unsalvaged` by what the plan records of the photo (its decoder's words), for a dry
    run and a review's opening, which do not decode it (a render refuses by what it decodes)."""
    refuse_unsalvaged(damage_lines(media.detection.get("decoder_messages", [])), media.detection.get(SALVAGED, False),
                      way_through)


def render_photo(media: MediaPlan, settings: RenderSettings, output: Path, photo: Photo | None = None,
                 keep_icc: bool = False, overwrite: bool = True) -> str | None:
    """Write the redacted photo to `output` (atomically), following the plan exactly; the SHA-256
    of what was written.

    By default the pixels are converted to sRGB and written without a colour profile: the
    photo's own profile can name the device that took it. `keep_icc` keeps that profile and
    the pixels' own colour values. A `photo` given (the one the plan was made from, read by a
    caller that has checked the file's hash against the plan) is converted and redacted in place.
    """
    if photo is None:
        check_as_planned(media)
    # Redacted in place, a given photo too: a caller that planned from it holds a huge photo once.
    photo = photo or read_photo(Path(media.path))
    refuse_unsalvaged(photo.damage_said, media.detection.get(SALVAGED, False), PLAN_SALVAGE_WAY)
    if photo.pixels.shape[:2] != (media.height, media.width):
        raise ValueError(
            f"plan is for a {media.width}x{media.height} image, the file is "
            f"{photo.pixels.shape[1]}x{photo.pixels.shape[0]}"
        )
    media.detection.pop("profile_converted", None)  # this render's, not an earlier one's (a saved plan)
    # The file decides what the output leaves out, as read now, not what the plan says of it: a plan
    # made by hand, edited or by an older veil left a second page or a motion photo's video out unsaid.
    for key in FILE_RECORD_KEYS:
        media.detection.pop(key, None)
    media.detection.update(file_record(photo))
    media.detection.pop("transparency_not_written", None)
    if transparency(photo.pixels) is not None and not holds_alpha(output.suffix):
        media.detection["transparency_not_written"] = True
    if keep_icc and photo.icc_profile and not holds_profile(output.suffix, photo.pixels):
        # Its own colour values without their profile would be shown as sRGB: wrong colours.
        media.detection["profile_converted"] = f"a {output.suffix} file of these pixels holds no colour profile"
        keep_icc = False
    if not keep_icc:
        if photo.icc_profile:
            media.detection["metadata_not_written"] = [*media.detection.get("metadata_not_written", []), ICC_NOT_WRITTEN]
        # Before redacting, so that a fill comes out in exactly the colour asked for.
        photo = to_srgb(photo)
    # A photo has frame 0 only; a box an edited plan put on another frame is hidden all the
    # same rather than dropped.
    boxes = [pair for frame_boxes in media.boxes_by_frame().values() for pair in frame_boxes]
    redact_frame(photo.pixels, boxes, settings, cover_all=bool(media.covered_frames()))
    with atomic_output(output, overwrite, still_as_planned(media), [media.path]) as written:
        write_photo(photo, written.path, output.suffix)
    return written.sha256
