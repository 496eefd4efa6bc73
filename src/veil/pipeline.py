"""One file through veil: media in -> detect (+ track) -> plan -> render -> media out.

The CLI, the review application and the library all call this module, so a photo or a
video is planned and rendered the same way whoever asks. Each input is hashed once and
(for a photo) decoded once; a video is decoded twice by design (veil.video). Every check
that can fail without looking at pixels (the output can be written, its format can hold
the media) runs in `preflight`, before any detection.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error
import cv2
from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OrtFail
from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException as OrtRuntimeException

from veil.avopen import open_local
from veil.animation import WRITE_FORMATS as ANIMATION_FORMATS
from veil.animation import plan_animation, render_animation
from veil.detect import DetectionProfile
from veil.imagefile import WRITE_FORMATS, Photo, read_photo
from veil.interrupt import temporary_folder
from veil.names import first_few, shown
from veil.outputs import MediaKind, OutputError, check_writable, is_empty, media_kind, unreadable
from veil.photo import PLAN_OUT_OF_DATE, file_sha256, plan_photo, refuse_unsalvaged_plan, render_photo
from veil.kinds import DEFAULT_HIDE, WORD_OF_KIND
from veil.plan import Encoding, Kind, MediaPlan, Region, RenderSettings, Shape, VoiceMode, as_stored, drawn_shape
from veil.remote import RemoteError, Url
from veil.video import plan_video, render_video
from veil.videofile import SALVAGE_HINT, check_output_holds, damage_lines, holes_line, lacks_its_index, left_out
from veil.audio import KEEP_REFUSED, check_audio_output, left_out_of_sound, plan_audio, render_audio
from veil.speech import SoundError, speech_regions
from veil.voice import VoicePlan, before_detection, spoken_seconds


@dataclass(frozen=True)
class Analysis:
    """How to find what to hide in every file of a run."""

    profile: DetectionProfile
    shape: Shape = "ellipse"
    start: float | None = None  # video: seconds from the file's start (video._Scan.range_origin)
    end: float | None = None
    only_range: bool = False  # video: leave frames outside [start, end] as they are
    hide: tuple[Kind, ...] = DEFAULT_HIDE  # what to find and hide (--hide)
    salvage: bool = False  # a damaged video redacted as far as it decodes, a damaged photo as decoded (--salvage)

    def __post_init__(self) -> None:
        # A kind misnamed ("faces" for "face") would be looked for by no detector: nothing hidden, no error.
        unknown = [kind for kind in self.hide if kind not in WORD_OF_KIND]
        if unknown or not self.hide:
            raise ValueError(f"hide {list(self.hide)}: name one or more of {', '.join(WORD_OF_KIND)}")


@dataclass(frozen=True)
class FileTask:
    """One input and what to do with it; small and picklable, so a worker process can take it."""

    source: Path | Url
    kind: MediaKind | None
    target: Path | Url | None  # None: plan only (--dry-run)
    render: RenderSettings
    encoding: Encoding
    analysis: Analysis | None = None  # how to detect; None only with `planned`
    overwrite: bool = False
    planned: MediaPlan | None = None  # from a loaded plan: render it, detect nothing
    # The run found no file at `target` when it made the task. One there now appeared since: most
    # often this task's own first attempt, whose worker died after writing it and before its result
    # was taken (it is then run again). It is made again, and kept if it is byte for byte the same.
    new_target: bool = False


@dataclass
class FileResult:
    source: Path | Url
    media: MediaPlan | None = None
    output: Path | Url | None = None
    error: str | None = None
    notes: list[Note] = field(default_factory=list)
    seconds: float = 0.0
    regions: int = 0  # regions hidden (or, for a dry run, that would be)
    # Those regions per kind (face, plate, ...); None where unknown (already done by an older veil).
    by_kind: dict[str, int] | None = field(default_factory=dict)
    unexpected: bool = False  # the error is a bug in veil, not a problem with the file
    already_done: bool = False  # an earlier run's output stands (veil.manifest)
    input_sha256: str | None = None
    output_sha256: str | None = None
    worker: str | None = None  # which process made it (host:pid)
    # Which veil made it, on a cluster's worker (`installed_veil_sha256`): it must be the command's.
    veil_sha256: str | None = None


class InputError(ValueError):
    """An input veil cannot take; the message says why."""


_A_KIND = {"image": "a photo", "animation": "an animation", "video": "a video", "audio": "a sound file"}


def _is_link(source: Path | Url) -> bool:
    return not isinstance(source, Url) and source.is_symlink()


EMPTY_FILE = "an empty file (no bytes)"


def preflight(task: FileTask) -> None:
    """Everything that can be refused before detection: the input's kind, the output's place and format.

    A file named by URL has the checks that need its content (can the container hold its
    streams?) on the worker's local copy, in redact_file.
    """
    if not task.source.is_file():
        raise InputError("not a regular file" if task.source.exists() else
                         "a symbolic link that leads nowhere (or in a loop)" if _is_link(task.source) else "no such file")
    if not isinstance(task.source, Url) and (reason := unreadable(task.source)) is not None:
        raise InputError(reason)
    if task.kind is None and not isinstance(task.source, Url) and lacks_its_index(task.source):
        raise InputError("an MP4/MOV file whose index (its moov box) is missing or cut off (a recording stopped "
                         "abruptly, an unfinished copy) or cannot be reached past damaged data: its frames cannot be "
                         "found without it, so nothing can be redacted (a repair tool such as untrunc can rebuild the "
                         "index from a complete recording of the same camera)")
    if task.kind is None:
        raise InputError(EMPTY_FILE if is_empty(task.source) else
                         "not a photo, video or sound file veil can read")
    if task.planned is not None and not isinstance(task.source, Url):
        # The file's content decides how it is read and written, not what a plan says of it.
        actual = media_kind(task.source)
        if actual != task.planned.kind:
            found = EMPTY_FILE if is_empty(task.source) else _A_KIND.get(actual, "nothing veil can read")
            raise InputError(f"the plan takes it for {_A_KIND[task.planned.kind]}, but it is {found}")
    if task.kind == "audio" and task.render.voice == "keep":
        raise InputError(KEEP_REFUSED)
    if task.target is None:
        return
    check_writable(task.target, task.overwrite or task.new_target)
    suffix = task.target.suffix.lower()
    if task.kind == "animation" and suffix not in ANIMATION_FORMATS:
        raise OutputError(f"cannot write an animation as {suffix or 'a file without a suffix'}: use one of "
                          f"{', '.join(sorted(ANIMATION_FORMATS))}")
    if task.kind == "image" and suffix not in WRITE_FORMATS:
        raise OutputError(f"cannot write a photo as {suffix or 'a file without a suffix'}: use one of "
                          f"{', '.join(sorted(WRITE_FORMATS))}")
    if task.kind == "video" and suffix in WRITE_FORMATS:
        raise OutputError(f"a {suffix} file cannot hold a video: choose .mp4, .mkv or .mov")
    if isinstance(task.source, Url) or isinstance(task.target, Url):
        return
    if task.kind == "video":
        check_output_holds(task.source, task.target, task.encoding, before_detection(task.render.voice))
    if task.kind == "audio":
        check_audio_output(task.source, task.target, VoicePlan(task.render.voice))


def redact_file(task: FileTask, show_progress: bool = False) -> FileResult:
    """Plan (or take the planned) and render one file. Any failure: no output, and the reason."""
    if isinstance(task.source, Url) or isinstance(task.target, Url):
        return _redact_staged(task, show_progress)
    started = time.monotonic()
    result = FileResult(task.source)
    there_already = False
    try:
        preflight(task)
        if task.target is None:
            result.media = _dry_run(task, show_progress)
        else:
            there_already = task.new_target and task.target.exists()
            result.media, result.output_sha256 = _render(task, task.target, show_progress)
        result.output = task.target
    except Exception as error:  # fail closed: the reason is the user's to see
        if out_of_memory(error):  # a library's own words, at any step: said as what they mean
            result.error = NO_MEMORY
        elif isinstance(error, (ValueError, OSError)):
            result.error = one_line(error)
        else:
            raise  # unforeseen: the caller says it is a bug
    if result.media is not None:
        dry_run = task.target is None
        result.notes = file_notes(result.media, task.encoding, task.render.voice, dry_run)
        if there_already:
            result.notes.append(Note(f"its output {shown(task.target)} appeared while it was redacted (an earlier "
                                     "attempt's, whose worker ended before reporting it, say): it is byte for byte "
                                     "the one made now, and stands"))
        # Regions that hide pixels: speech is time, and a box off the picture hides nothing.
        hiding = result.media.hiding_regions()
        result.regions = len(hiding)
        result.by_kind = dict(sorted(Counter(r.kind for r in hiding).items()))
        result.input_sha256 = result.media.sha256
    result.seconds = time.monotonic() - started
    return result


def _redact_staged(task: FileTask, show_progress: bool) -> FileResult:
    """A file named by URL, or written to one: redacted as local files in a private temporary
    folder (removed however this ends, Ctrl-C included); a finished output is then uploaded.
    This runs where the file's task runs, so a worker on another machine fetches its own input."""
    started = time.monotonic()
    with temporary_folder("veil-") as scratch:
        source, target = task.source, task.target
        try:
            if isinstance(task.source, Url):
                source = Path(scratch, "input", task.source.name)
                source.parent.mkdir()
                task.source.fetch(source)
            if isinstance(task.target, Url):
                target = Path(scratch, "output", task.target.name)
        except (RemoteError, OSError) as error:  # unreachable, or no room for the copy
            return FileResult(task.source, error=one_line(error), seconds=time.monotonic() - started)
        # A loaded plan names the URL; the pipeline (speech found late, say) reads the copy.
        planned = dataclasses.replace(task.planned, path=str(source)) if task.planned is not None else None
        result = redact_file(dataclasses.replace(task, source=source, target=target, planned=planned), show_progress)
        if result.error:  # messages name the files as the user did, not as their temporary copies
            result.error = result.error.replace(str(source), str(task.source)).replace(str(target), str(task.target))
        if isinstance(task.target, Url) and isinstance(target, Path) and result.output is not None:
            try:
                task.target.upload(target, task.overwrite)
            except RemoteError as error:  # nothing was hidden where nothing was written
                result.error, result.output, result.output_sha256, result.regions = one_line(error), None, None, 0
                result.by_kind = {}
    result.source = task.source
    result.output = task.target if result.output is not None else None
    if result.media is not None and isinstance(task.source, Url):
        result.media.path = str(task.source)
    result.seconds = time.monotonic() - started
    return result


def _plan(task: FileTask, show_progress: bool, sha256: str | None = None, photo: Photo | None = None) -> MediaPlan:
    if task.planned is not None:
        if task.render.voice != "keep" and "speech" not in task.planned.detection:
            # A plan made before veil looked for speech: muting nothing would leak (and a sound
            # muted whole must not be said to be none).
            _add_speech(task.planned)
        if task.planned.kind in ("video", "audio"):
            _count_left_out(task.planned, task.source)
        return task.planned
    analysis = task.analysis
    if analysis is None:
        raise InputError("nothing to render: the file has no plan and no detection was asked for")
    if task.kind == "image":
        media = plan_photo(task.source, analysis.profile, photo, sha256, analysis.hide, analysis.salvage)
    elif task.kind == "animation":
        media = plan_animation(task.source, analysis.profile, sha256, analysis.hide)
    elif task.kind == "audio":
        return plan_audio(task.source, sha256)
    else:
        media = plan_video(task.source, analysis.profile, show_progress=show_progress, start=analysis.start,
                           end=analysis.end, only_range=analysis.only_range, sha256=sha256,
                           hide=analysis.hide, salvage=analysis.salvage)
    for region in media.regions:
        region.shape = drawn_shape(region.kind, analysis.shape)  # --shape is for faces: other kinds are boxes
    if task.kind == "video":
        _add_speech(media)
    as_stored(media.regions)
    return media


def _add_speech(media: MediaPlan) -> None:
    """The file's speech segments as regions, and how they were found (nothing for a silent file)."""
    salvage = media.salvaged_damage() is not None
    try:
        speech, record = speech_regions(Path(media.path), salvage=salvage)
    except SoundError as error:
        if media.kind == "video" and not salvage:  # damaged sound: the way past it for a video
            raise SoundError(f"{error}{SALVAGE_HINT}") from None
        raise
    media.regions += speech
    if record:
        media.detection["speech"] = record
    else:  # searched: a plan with neither was made before veil looked for speech
        media.detection["no_sound"] = True


def _check_planned(task: FileTask, sha256: str) -> None:
    if task.planned is not None and task.planned.sha256 and task.planned.sha256 != sha256:
        # The plan's boxes were found in other pixels: rendering them could leave faces visible.
        raise InputError(PLAN_OUT_OF_DATE)


def _dry_run(task: FileTask, show_progress: bool) -> MediaPlan:
    """Plan, or take the planned once it is checked against the file as a render checks it: a dry
    run of a plan for a file since changed said what it would hide, and the run then failed."""
    if task.planned is not None:
        _check_planned(task, file_sha256(task.source))
        if task.planned.kind == "image":  # as render_photo refuses it
            refuse_unsalvaged_plan(task.planned)
    return _plan(task, show_progress)


def _render(task: FileTask, target: Path, show_progress: bool) -> tuple[MediaPlan, str | None]:
    """Hash once, decode a photo once, plan, render: the plan, and the SHA-256 of the output written."""
    sha256 = file_sha256(task.source)
    _check_planned(task, sha256)
    if task.kind == "image":
        photo = read_photo(task.source)
        media = _plan(task, show_progress, sha256, photo)
        written = render_photo(media, task.render, target, photo, keep_icc=task.encoding.keep_icc,
                               overwrite=task.overwrite)
    elif task.kind == "animation":
        media = _plan(task, show_progress, sha256)
        written = render_animation(media, task.render, target, overwrite=task.overwrite,
                                   keep_icc=task.encoding.keep_icc)
    elif task.kind == "audio":
        media = _plan(task, show_progress, sha256)
        written = render_audio(media, task.render, target, overwrite=task.overwrite, hash_checked=True)
    else:
        media = _plan(task, show_progress, sha256)
        written = render_video(media, task.render, target, show_progress=show_progress, encoding=task.encoding,
                               overwrite=task.overwrite, hash_checked=True)
    return media, written


def _count_left_out(media: MediaPlan, source: Path) -> None:
    """What the file holds that rendering leaves out (covers, picture subtitles, attachments, data
    tracks), counted from the file for a plan given: one made before veil counted them, or by hand,
    or edited, is rendered without them all the same, and the notes must say so. The file decides,
    not what the plan says of it."""
    try:
        container = open_local(source)
    except (av.error.FFmpegError, OSError):
        return  # the render says why it cannot be read
    try:
        counted = left_out(container) if media.kind == "video" else left_out_of_sound(container)
    finally:
        container.close()
    media.detection.setdefault("stream", {}).update(counted)
    media.forget_earlier_render()


@dataclass(frozen=True)
class Note:
    """What the user must know about a file beyond its region count. A warning says that part of
    it stays as it was or was left out, and is printed even with --quiet."""
    text: str
    warning: bool = False


def file_notes(media: MediaPlan, encoding: Encoding, voice: VoiceMode, dry_run: bool) -> list[Note]:
    """Everything the run says of a file beyond its region count: its pictures', then its sound's."""
    return notes(media, encoding, dry_run) + voice_notes(media, voice, dry_run) + layout_notes(media)


def layout_notes(media: MediaPlan) -> list[Note]:
    """Sound written with its surrounds moved back (`voice.encoder_and_layout`), or whose channels
    the written file names otherwise (`voice.channels_read_back`), as the render recorded."""
    stream = media.detection.get("stream", {})
    return [*(Note(f"its sound's {each['layout_moved_from']} was written as {each['layout']} ({each['codec']} names "
                   "no side surrounds): its side channels are the back ones, each as it was", warning=True)
              for each in stream.get("sound_written_as", []) if "layout_moved_from" in each),
            *(Note(f"its sound's {each['given']} reads back from the output as {each['reads_back_as']} (its container "
                   "names them so): the same channels, in order, which a player may put on other speakers",
                   warning=True)
              for each in stream.get("sound_channels_read_back", []))]


def notes(media: MediaPlan, encoding: Encoding, dry_run: bool) -> list[Note]:
    """The notes on a file's pictures and subtitles."""
    found: list[Note] = []
    are = "would be" if dry_run else "are"
    were = "would be" if dry_run else "were"
    was = "would be" if dry_run else "was"
    damage = media.salvaged_damage()
    # Frames decoded from a damaged video's damaged data are said with the damage.
    if unanalysed := set(media.unanalysed_frames) - set(damage["damaged_frames"] if damage else ()):
        found.append(Note(f"{len(unanalysed)} frame(s) could not be analysed and {are} fully covered"))
    # (A damaged frame is covered whole for its damage, said with it, and it may have hidden a cut
    # that would have ended the hold there.)
    # (A frame outside --start/--end is said with those: nothing was seen there.)
    held = {f for r in media.regions if not r.keep_visible for f, box in r.boxes.items() if box.origin == "held"} \
        - set(damage["damaged_frames"] if damage else ()) - set(media.unchecked_frames)
    if held:
        found.append(Note(f"{len(held)} frame(s) {were} hidden whole: a face grew past the frame there (a zoom, a "
                          "close-up), where no detector sees it as a face; the review shows them (frames that "
                          "face regions happen to cover edge to edge are not counted here)"))
    if others := media.detection.get("other_images_not_written"):
        found.append(Note(f"the file holds {others + 1} images (pages, a burst, a second view): only the one viewers "
                          f"show {was} redacted and written ({others} left out)", warning=True))
    if media.detection.get("motion_video_not_written"):
        found.append(Note(f"the photo carries a short video after it (a motion photo): it {was} left out, the still "
                          f"{was} redacted and written", warning=True))
    if after := media.detection.get("data_after_image_not_written"):
        found.append(Note(f"{after} bytes stored after the picture (another picture appended, a program's data; "
                          f"no viewer shows them) {were} left out", warning=True))
    if tone_mapped := media.detection.get("hdr_tone_mapped"):
        found.append(Note(f"an HDR photo ({tone_mapped['transfer']}): it {was} tone-mapped to SDR and written as sRGB, as veil "
                          "writes every photo (its light above SDR white is rolled off)", warning=True))
    if encoding.keep_icc and (primaries := media.detection.get("colour_box_converted")):
        found.append(Note(f"--keep-icc: its colours were described by a colour box ({primaries} primaries), not an ICC "
                          f"profile, so they {were} converted to sRGB", warning=True))
    if why := media.detection.get("profile_converted"):
        found.append(Note(f"--keep-icc: {why}, so its colours {were} converted to sRGB (a .png keeps the profile)",
                          warning=True))
    if said := media.detection.get("decoder_messages"):
        found.append(Note(f"its decoder warned: {'; '.join(said)}; the picture {was} searched and written as "
                          "decoded (where the data is damaged, as the decoder filled it in)", warning=True))
    if damage:  # each a warning: the output differs from the file by more than its redactions
        sound_lost = media.speech_record().get("undecodable_packets", 0)
        found += [Note(line, warning=True) for line in damage_lines(damage, sound_lost, are)]
    stream = media.detection.get("stream", {})
    if timed_back := stream.get("packets_timed_back_left_out"):
        found.append(Note(f"{timed_back} piece(s) of its sound or subtitles timed before the piece before them (a "
                          f"garbled time) {were} left out", warning=True))
    if holes := stream.get("time_holes"):
        found.append(Note(holes_line(holes), warning=True))
    if stream.get("decoding_times_from") is not None:
        found.append(Note("an AVI stores no presentation times, and this one's B-frames put its frames out of "
                          "decoding order: they are timed by their decoding times, as FFmpeg reads them (about a "
                          "frame late against the sound)"))
    if same := stream.get("frames_at_the_time_before"):
        found.append(Note(f"{same} frame(s) had the time of the frame before: each {was} written one tick of the "
                          "stream's clock later, and so were the frames after it that lay a tick apart (a file holds "
                          "one frame at a time, and a player shows one)"))
    if others := stream.get("other_videos_not_written"):
        found.append(Note(f"the file holds {others + 1} video streams: only the recording (not a still such as a "
                          f"one-frame preview; the one marked to be shown, else the largest) {was} redacted and "
                          f"written ({others} left out)", warning=True))
    pictures = stream.get("picture_subtitle_streams", 0)
    if (subtitles := stream.get("subtitle_streams", 0) - pictures) and not encoding.keep_subtitles:
        found.append(Note(f"its {subtitles} text subtitle stream(s) {were} left out (--keep-subtitles copies them)",
                          warning=True))
    elif subtitles:
        found.append(Note(f"its {subtitles} text subtitle stream(s) {were} copied (--keep-subtitles) with the words "
                          "players show as they are, a name among them too (veil does not read them); the track's title "
                          "and, in ASS and WebVTT, what players do not show (speakers' names, notes) taken out",
                          warning=True))  # words left as they were: said under --quiet too
    if pictures:
        found.append(Note(f"its {pictures} picture or unreadable subtitle stream(s) {were} left out, with "
                          "--keep-subtitles too: veil does not search subtitle pictures for faces", warning=True))
    if again := stream.get("sound_encoded_again"):
        found.append(Note(f"its sound {was} encoded again ({'; '.join(again)}): the output's container cannot hold it "
                          "as it is, so it is not the input's sound bit for bit"))
    if stream.get("transparency_not_written") or media.detection.get("transparency_not_written"):
        found.append(Note(f"its transparency (an alpha channel) {was} left out: the output is opaque, and what "
                          "was transparent shows as the colours stored under it (searched for faces as well)",
                          warning=True))
    if stream.get("stereo_3d_not_written"):
        found.append(Note(f"its stereoscopic 3D signalling (two views in one picture) {was} left out: a 3D player "
                          "or headset shows the output as one flat picture holding both views", warning=True))
    if stream.get("closed_captions_not_written"):
        found.append(Note(f"its closed captions (CEA-608/708 text carried in the video, which can name people or "
                          f"hold a transcript) {were} left out", warning=True))
    if covers := stream.get("cover_pictures_not_written"):
        found.append(Note(f"its {covers} cover picture(s) {were} left out", warning=True))
    if attached := stream.get("attachments_not_written"):
        found.append(Note(f"its {attached} attached file(s) (fonts, pictures) {were} left out", warning=True))
    if data := stream.get("data_tracks_not_written"):
        found.append(Note(f"its {data} data track(s) (a GPS track, timecode, the text of a chapter list) {were} left "
                          "out", warning=True))
    if subtitles := stream.get("subtitle_streams_not_written"):
        found.append(Note(f"its {subtitles} subtitle stream(s) (lyrics, captions) {were} left out: a sound file is "
                          "written with its sound alone", warning=True))
    if chapters := stream.get("chapters_not_written"):
        found.append(Note(f"its {chapters} chapter(s) (titled marks in its time, which can name people and places) "
                          f"{were} left out", warning=True))
    # Said as speech kept audible is: a plan (edited by hand, or from someone else) can keep any face
    # visible, and the count of regions hidden alone does not show it.
    if kept := [r for r in media.regions if r.keep_visible and r.kind != "speech"]:
        found.append(Note(f"{len(kept)} region(s) {were} left visible, as the plan's reviewer chose "
                          f"({region_ids(kept)}; the plan and the report give the reasons)", warning=True))
    if off := media.off_picture_regions():
        found.append(Note(f"{len(off)} region(s) of the plan cover no pixel of the picture (wholly outside it, or "
                          f"of no area) and hide nothing ({region_ids(off)})", warning=True))
    if media.unchecked_frames:
        asked = " or ".join(WORD_OF_KIND[kind] for kind in media.detection.get("hide", ["face"]) if kind in WORD_OF_KIND)
        outside = f"{len(media.unchecked_frames)} frame(s) outside --start/--end were not checked for {asked}"
        carried = media.unchecked_frames_hidden_in()
        but = (f", but for the boxes in {len(carried)} of them (tracks carried on from the range, or drawn by "
               "a reviewer)" if carried else "")
        if media.unchecked_covered and len(media.unchecked_frames) == media.frame_count:
            # A range past the video's end (a typo) leaves nothing to see: not a quiet success.
            found.append(Note(f"no frame lies in --start/--end: all {media.frame_count} frames were left "
                              f"unchecked and {are} fully covered", warning=True))
        else:
            found.append(Note(f"{outside} and {are} fully covered") if media.unchecked_covered
                         else Note(f"{outside} and {were} left as they are (--only-range){but}", warning=True))
    return found


def region_ids(regions: list[Region]) -> str:
    """The first few regions' ids, as a note names them."""
    return first_few([r.id for r in regions])


# Less than this between the speech found and the speech planned is the record's rounding.
REMOVED_SPEECH_S = 0.05


def voice_notes(media: MediaPlan, mode: VoiceMode, dry_run: bool) -> list[Note]:
    """The notes on a file's voices: how much speech the plan holds, and what became of it (a
    reviewer's deletions and segments left audible counted, not the detector's first findings)."""
    if not (record := media.detection.get("speech")):
        return [Note(f"it has no sound: --voice {mode} had nothing to treat")] \
            if media.kind == "video" and mode != "keep" else []
    notes = [Note(overrun_line(record["overrun"], media.kind), warning=True)] \
        if "overrun" in record and mode != "keep" else []
    if media.kind == "audio":
        notes += [Note(line, warning=True) for line in sound_damage_lines(record)]
    speech = [r for r in media.regions if r.kind == "speech" and r.start is not None]
    seconds = spoken_seconds(speech, record.get("sound_seconds"))
    were = "would be" if dry_run else "were"
    if mode == "mute-all":
        return notes + [Note(f"all sound {'would be' if dry_run else 'was'} muted ({seconds:.1f} s of it speech)")]
    # Speech the detector found that the plan no longer holds (a reviewer removed or shortened it)
    # stays audible: said as such, never as sound without speech.
    removed = record["speech_seconds"] - seconds if mode != "keep" else 0.0
    left = (f"{removed:.1f} s of the speech the detector found {'would be' if dry_run else 'was'} left audible: "
            "the plan no longer holds it (removed in review)")
    if not speech:
        if removed >= REMOVED_SPEECH_S:
            return notes + [Note(left, warning=True)]
        return notes + [Note("no speech found in the sound" + ("" if mode == "keep" else ": nothing changed in it"))]
    if mode == "keep":
        return [Note(f"{seconds:.1f} s of speech in {len(speech)} segment(s): voices are not protected "
                     "(--voice keep); use --voice mute, mute-all or anonymise", warning=True)]
    treated = [r for r in speech if not r.keep_visible]
    done = "muted" if mode == "mute" else "anonymised"
    treated_seconds = spoken_seconds(treated, record.get("sound_seconds"))
    notes.append(Note(f"{treated_seconds:.1f} s of speech in {len(treated)} segment(s) {were} {done}"))
    if removed >= REMOVED_SPEECH_S:
        notes.append(Note(left, warning=True))
    if kept := len(speech) - len(treated):
        notes.append(Note(f"{kept} speech segment(s) {were} left audible, as the plan's reviewer chose", warning=True))
    return notes


# A sound file's data ending this much before the end its header states, or a gap this long in
# its timestamps, is damage to say (its output holds the sound there is, a gap as silence).
SOUND_SHORTFALL_S = 0.5
SOUND_GAP_S = 0.05


def sound_damage_lines(record: dict) -> list[str]:
    """What a sound file's speech record (`speech.speech_regions`) shows of damage: data ending before
    the end its header states (a file cut short), a gap in its timestamps (damaged data passed over)."""
    lines = []
    if (stated := record.get("stated_seconds")) is not None and stated - record["sound_seconds"] > SOUND_SHORTFALL_S:
        lines.append(f"its sound ends at {record['sound_seconds']:.2f} s of the {stated:.2f} s its header states: "
                     "the file is truncated or damaged (or its header wrong), and the output holds the sound there is")
    if (gap := record.get("widest_gap")) is not None and gap["for_s"] > SOUND_GAP_S:
        lines.append(f"its sound has a gap of {gap['for_s']:.2f} s at {gap['at_s']:.2f} s in its timestamps (damaged "
                     "or missing data passed over by the decoder): the output holds silence there")
    return lines


def overrun_line(overrun: dict, kind: str) -> str:
    """A sound that decodes longer than its time leaves room for (`speech.Timeline.overrun`), in a
    sentence: a video's sound falls behind its picture; a sound file's plays later than its
    timestamps say (parts joined at another sample rate, which ADTS and MP3 streams time by the
    first part's, read the same)."""
    late = (f"plays up to {overrun['up_to_s']:.2f} s late against the picture" if kind == "video" else
            f"plays up to {overrun['up_to_s']:.2f} s later than the file's timestamps placed it, every sample kept")
    return (f"its sound holds more than its timestamps leave room for from {overrun['from_s']:.2f} s on (damaged "
            f"sound decoded too long, or a part at another sample rate): written again, the sound after it {late}")


REPORT_BUG = ("this is a bug in veil: please report it on the veil issue tracker, with this line and the "
              "output of `veil --version`")
NO_MEMORY = ("not enough memory to redact it: free memory (close other programs; in a batch, run fewer --jobs) "
             "and run veil again")


def unexpected_error(error: BaseException) -> str:
    """The one line for an error veil did not foresee (running out of memory, or of file
    descriptors, and a library missing, aside: said as such)."""
    if out_of_memory(error):
        return NO_MEMORY
    if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
        return f"{error.strerror}: the limit on open files is too low (raise it, `ulimit -n`, or run fewer --jobs)"
    if isinstance(error, ImportError):  # one imported when first used: the review's server, a cluster's Dask
        return f"{one_line(error)}: a library veil needs is missing or broken (install veil again, in a new virtualenv)"
    return f"unexpected {type(error).__name__}: {one_line(error)}; {REPORT_BUG}"


def out_of_memory(error: BaseException) -> bool:
    """Whether the system refused memory, as `error` or an error it was raised from says it, in the
    words of each library veil runs: Python's, numpy's and PyAV's MemoryError (ENOMEM), OpenCV's
    "Insufficient memory", onnxruntime's "Failed to allocate memory", and a thread that could not
    start (its stack is memory): Python's "can't start new thread", onnxruntime's "pthread_create
    failed, error code: 12", FFmpeg's EAGAIN (PyAV's
    BlockingIOError; the EAGAIN of decoding and encoding is handled where it is asked for)."""
    each: BaseException | None = error
    seen: set[int] = set()
    while each is not None and id(each) not in seen:
        seen.add(id(each))
        if (isinstance(each, MemoryError)
                or (isinstance(each, OSError) and each.errno == errno.ENOMEM)
                # By its words: OpenCV sets `code` on the class, for the last cv2.error of any thread.
                or (isinstance(each, cv2.error) and "(-4:Insufficient memory)" in str(each))
                or (isinstance(each, (OrtFail, OrtRuntimeException)) and "Failed to allocate memory" in str(each))
                # onnxruntime's thread pool, whose threads' stacks could not be had (ENOMEM: 12)
                or (isinstance(each, RuntimeError) and "pthread_create failed, error code: 12" in str(each))
                or isinstance(each, av.error.BlockingIOError)
                or (isinstance(each, RuntimeError) and str(each) == "can't start new thread")):
            return True
        each = each.__cause__ or each.__context__
    return False


def one_line(error: BaseException) -> str:
    """An error's message on a single line: names in it are escaped, and so is any other control character."""
    return shown(str(error) or type(error).__name__)


def render_planned(media: MediaPlan, render: RenderSettings, encoding: Encoding, target: Path,
                   overwrite: bool = False) -> FileResult:
    """Render one file of a reviewed plan, with the plan's own render and encoding settings."""
    task = FileTask(Path(media.path), media.kind, target, render, encoding, overwrite=overwrite, planned=media)
    result = redact_file(task)
    if result.error:  # the caller names the file
        raise InputError(result.error)
    return made_here(result)


def made_here(result: FileResult) -> FileResult:
    """The result with where it was made (host:pid), as its manifest record needs it."""
    result.worker = f"{socket.gethostname()}:{os.getpid()}"
    return result
