"""Video files in and out through PyAV (FFmpeg's libraries; no ffmpeg binary).

Reading streams decoded frames and fails loudly: a decode error, a frame FFmpeg marks
as corrupt, or a file that ends before its own index says it should raises VideoError,
so a damaged video never yields a partly redacted output unasked. Asked to salvage one
(--salvage), reading goes on past the damage and says what it met (`Damage`): frames
decoded from damaged data (the caller covers them whole), packets that could not be decoded
(their frames are missing), frames out of order, and where the data ends before the file says
it should.

Writing builds a new container: the video re-encoded with the input's timestamps, size,
display rotation and colour tags (10-bit stays 10-bit), audio packets copied unchanged
(re-encoded only where the container cannot hold the codec), subtitles and data streams
dropped unless asked, closed captions carried in the video frames not written. Nothing of
the input's container or stream metadata is copied, so GPS location atoms, creation
times, device make/model, encoder names and chapter titles are gone. Nor does the output
give the versions of what made it: FFmpeg's bitexact flag leaves its name without a version
where a container has a field for it (Matroska's writing application, MOV's vendor, MPEG-TS's
service), and x264's and x265's settings strings, which give their version and the machine's
thread count, are not written.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import struct
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.error
import av.filter
import numpy as np
from av.bitstream import BitStreamFilterContext
from av.packet import PacketSideData, packet_sidedata_type_from_literal
from av.video.frame import PictureType

from veil.avopen import open_local
from veil.fferror import external_memory_failures_said, readable_packets, reason
from veil.interrupt import temporary_folder
from veil.names import shown
from veil.plan import CODEC_ENCODERS, X26X_CRF_MAX, Encoding
from veil.speech import Converter, WiderSound, widened
from veil.voice import (LastFrameCut, VoiceEdit, VoicePlan, add_edited_stream, add_encoded_stream, container_codecs,
                        exact_sound_end, output_layout, rate_stated)

# Output container per suffix; anything else lets FFmpeg guess from the name.
CONTAINER_FORMATS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
    ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts", ".3gp": "3gp", ".3g2": "3g2", ".wmv": "asf",
    ".asf": "asf", ".flv": "flv", ".ogv": "ogg",
}
# Muxers that hold no time before zero and have no edit list: FFmpeg moves every stream by the
# earliest packet's time below zero.
NO_NEGATIVE_TIMES = frozenset({"avi", "flv", "asf", "asf_stream"})
# FFmpeg's muxers of the ISO base media file format (MP4, MOV and their kin).
ISO_MEDIA = frozenset({"mp4", "mov", "3gp", "3g2", "psp", "ipod", "ismv", "f4v"})
# Encoders whose pixel shape Matroska and WebM files do not yet get from veil (they come out square).
SHAPE_UNSTATED_IN_MATROSKA = frozenset({"libvpx-vp9", "libsvtav1"})
# Containers that state a display rotation (a display matrix): AVI, MPEG-TS, ASF and FLV do not,
# and a recording turned so was written turned, unsaid.
ROTATION_STATED = ISO_MEDIA | {"matroska", "webm"}
# Containers that keep B-frames' times exactly: an edit list (MP4, MOV; not ISMV's or F4V's
# muxers), negative times (Matroska), or a clock that starts well after zero (MPEG-TS). H.264 and
# H.265 are written without B-frames in any other.
B_FRAME_CONTAINERS = ISO_MEDIA - {"ismv", "f4v"} | {"matroska", "webm", "mpegts"}
WEBM_VIDEO = {"vp8": "libvpx", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
# WebM holds VP8, VP9 and AV1 alone: the input's is kept where it is one of them, else VP9.
# FFmpeg's Ogg muxer takes VP8 alone of these, whatever the input's codec.
WEBM_DEFAULT, OGG_VIDEO = "libvpx-vp9", "libvpx"
# --codec names -> FFmpeg encoders.
ENCODERS = CODEC_ENCODERS
# Encoder speed presets (quality is set by the CRF; the preset trades quality and file size for
# speed). x264's veryfast was chosen by bench/video_quality.py: outside the redacted regions it
# stays more faithful to the input than deface's output, for less CPU than medium.
PRESETS = {"libx264": "veryfast", "libx265": "fast"}
# FFmpeg's field orders (AVFieldOrder) of interlaced video, by the field shown first.
TOP_FIELD_FIRST, BOTTOM_FIELD_FIRST = (2, 4), (3, 5)
CODEC_NAMES = {"libvpx": "VP8", "libvpx-vp9": "VP9", "libsvtav1": "AV1"}
# Each encoder by the --codec name that asks for it (H.265 by its first name; VP8, which none asks
# for, by its own).
CODEC_OPTIONS = {"libvpx": "vp8", **{encoder: name for name, encoder in reversed(CODEC_ENCODERS.items())}}
# FFmpeg's muxers name themselves and their version in the file unless asked to be bitexact.
NAMELESS_MUXING = {"fflags": "+bitexact"}
# x264 writes its version and every setting (threads included) in an SEI unit in front of its
# first frame, and has no option to stop it: that first packet is passed through FFmpeg's
# filter_units filter without SEI units (type 6). The first frame's other SEI go with it: with
# veil's settings only a 3D video's frame packing, which x264 repeats on every keyframe.
X264_WITHOUT_SEI = "filter_units=remove_types=6"


class VideoError(ValueError):
    """A video that cannot be read or written faithfully; the message says why."""


# Said after the refusal of a damaged video: the way to redact what can be decoded. A plan made
# without --salvage cannot take it: the way is to plan again.
SALVAGE_HINT = " (--salvage redacts what can be decoded)"
PLAN_SALVAGE_HINT = " (plan it again with --salvage to redact what can be decoded)"
# A frame given this far behind the latest is not damaged picture order but timestamps that run
# backwards (files joined end to end), which --salvage does not go past either.
REORDER_S = 1.0
# A stretch with no frame, longer than HOLE_STEPS of the video's usual step and than the usual step
# plus HOLE_S, is a hole: frames lost (Matroska's, WebM's and MPEG-TS's readers resync past damaged
# data without a word), or a pause in the recording. A phone's variable rate doubles its step in
# the dark, a capture may skip a few frames, a video call's picture may stall for a moment: those
# are not holes. (One or two frames lost cannot be told from them.)
HOLE_STEPS = 4
HOLE_S = 0.15
# Steps the usual one is taken from, while reading.
USUAL_OF = 30


def is_hole(step: float, usual: float) -> bool:
    """Whether a step between two frames is a hole (see HOLE_STEPS) where the usual step is `usual`."""
    return step > HOLE_STEPS * usual and step > usual + HOLE_S


@dataclass
class Damage:
    """What reading a damaged video met and went past (--salvage). `damaged_frames`: frames decoded
    from damaged data, covered whole: marked corrupt by the decoder (patched up with pieces of other
    frames), or decoded after damage (a piece lost, a patched-up or missing picture, frames lost
    between two) up to the next clean keyframe, since they are predicted from what was damaged.
    `undecodable_packets`: pieces the decoder could not decode (what they held is missing).
    `frames_out_of_order`: frames given after a later one, left out (an encoder and a muxer take
    frames in time order only). `ends_early`: where the data ends before the file says it should."""

    damaged_frames: list[int] = field(default_factory=list)
    undecodable_packets: int = 0
    frames_out_of_order: int = 0
    ends_early: str | None = None

    def covers(self, index: int) -> bool:
        """Whether frame `index`, the one `read` has just given, is decoded from damaged data."""
        return self.damaged_frames[-1:] == [index]

    def record(self) -> dict:
        return {"damaged_frames": list(self.damaged_frames), "undecodable_packets": self.undecodable_packets,
                "frames_out_of_order": self.frames_out_of_order, "ends_early": self.ends_early}


@dataclass
class Timing:
    """How `read` timed the frames it gave: `decoding_from`, the first frame given a decoding time
    other than its presentation time (an AVI's: `_Reading._decoding_time`), None while none was."""

    decoding_from: int | None = None


def damage_lines(record: dict, sound_lost: int, are: str = "are") -> list[str]:
    """What a salvaged video's damage record says, a sentence each (for the user and the report);
    `sound_lost`: pieces of its sound that could not be decoded."""
    lines = []
    if damaged := len(record["damaged_frames"]):
        lines.append(f"{damaged} frame(s) decoded from damaged data (patched up by the decoder, or predicted from a "
                     f"damaged or missing picture, up to the next keyframe) {are} fully covered")
    if lost := record["undecodable_packets"]:
        lines.append(f"{lost} piece(s) of the picture could not be decoded: what they held {are} missing")
    if disordered := record["frames_out_of_order"]:
        lines.append(f"{disordered} frame(s) the decoder gave out of time order {are} left out")
    if record["ends_early"]:
        lines.append(f"{record['ends_early']}: the output ends with the last frame that could be read")
    if sound_lost:
        lines.append(f"{sound_lost} piece(s) of the sound could not be decoded: heard as silence in the search for "
                     "speech, written as silence where voices are edited, and left out with --voice keep (they "
                     "could hold anything, a picture or a name, and players cannot decode them either)")
    return lines


def holes_line(holes: list[list[float]]) -> str:
    """The stretches of a video with no frame where several were due (`time_holes`), in a sentence."""
    more = f" (and {len(holes) - 1} more such stretch(es))" if len(holes) > 1 else ""
    return (f"its picture has no frame from {holes[0][0]:.2f} s to {holes[0][1]:.2f} s{more}: frames lost to damaged "
            "data that the reader passed without a word, or a pause in the recording")


def open_input(path: Path) -> av.container.InputContainer:
    try:
        container = open_local(path)
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"cannot open video: {reason(error)}") from None
    if not container.streams.video:
        container.close()
        raise VideoError("no video stream in the file")
    return container


def lacks_its_index(path: Path) -> bool:
    """Whether the file is an MP4/MOV whose index (its `moov` box, written when a recording stops)
    is missing or cut short (a recording cut off by a crash or a dead battery, a copy that
    stopped), or cannot be reached, the boxes before it damaged. FFmpeg cannot open it then."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, 2)
            at, ends = 0, {}
            while at + 8 <= size:
                file.seek(at)
                length, kind = struct.unpack(">I4s", file.read(8))
                if length == 1 and at + 16 <= size:
                    length = struct.unpack(">Q", file.read(8))[0]
                if length < 8:  # 0: to the end of the file; smaller: not a box
                    ends[kind] = size
                    break
                ends[kind] = at + length
                at += length
    except OSError:
        return False
    return b"ftyp" in ends and ends.get(b"moov", size + 1) > size


# Matroska's (and WebM's) first two elements: the EBML header, then the Segment, which holds the rest.
EBML_ID, SEGMENT_ID = b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"


def _matroska_bytes_missing(path: str) -> int:
    """How many bytes a Matroska or WebM file lacks of what its Segment says it holds (a copy cut
    short); 0 where none, where the Segment's size is not stated (a live recording's, which
    states no duration either) or the file is not Matroska."""
    try:
        with open(path, "rb") as file:
            if file.read(4) != EBML_ID or (header := _ebml_size(file)) is None:
                return 0
            file.seek(header, 1)
            if file.read(4) != SEGMENT_ID or (size := _ebml_size(file)) is None:
                return 0
            return max(0, file.tell() + size - file.seek(0, 2))
    except (OSError, ValueError):
        return 0


# ASF's Header, File Properties and Data Objects (ASF 1.2, sections 3.1, 3.2 and 5.1), as their
# GUIDs are stored.
ASF_HEADER_ID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
ASF_FILE_PROPERTIES_ID = bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")
ASF_DATA_ID = bytes.fromhex("3626b2758e66cf11a6d900aa0062ce6c")
ASF_BROADCAST_FLAG_AT = 88  # in the File Properties Object: set, its sizes are not valid
ASF_DATA_HEADER = 50  # a Data Object's own header: GUID, size, file id, packet count, reserved


def _asf_bytes_missing(path: str) -> int:
    """How many bytes an ASF file (WMV, WMA) lacks of the packets its Data Object says it holds
    (a copy cut short: FFmpeg states no duration for one, so its times cannot tell); 0 where none,
    where the size is not valid (a broadcast's) or the file is not ASF."""
    try:
        with open(path, "rb") as file:
            header = file.read(30)
            size = int.from_bytes(header[16:24], "little")
            if header[:16] != ASF_HEADER_ID or not 30 <= size <= os.fstat(file.fileno()).st_size:
                return 0  # (a Header Object larger than the file: FFmpeg reads on; nothing to tell by)
            header += file.read(size - 30)
            at = 30  # past the Header Object's GUID, size, object count and two reserved bytes
            while at + 24 <= len(header):
                if header[at:at + 16] == ASF_FILE_PROPERTIES_ID:
                    flags = header[at + ASF_BROADCAST_FLAG_AT:at + ASF_BROADCAST_FLAG_AT + 4]
                    if len(flags) < 4 or flags[0] & 1:
                        return 0
                at += max(int.from_bytes(header[at + 16:at + 24], "little"), 24)
            data = file.read(24)
            if data[:16] != ASF_DATA_ID or (size := int.from_bytes(data[16:], "little")) < ASF_DATA_HEADER:
                return 0
            return max(0, file.tell() - 24 + size - file.seek(0, 2))
    except (OSError, ValueError):
        return 0


def _ebml_size(file: BinaryIO) -> int | None:
    """The EBML element size the file is at (its first byte's leading zeros say how many bytes follow);
    None where the size is unknown (all ones). A size that cannot be read raises ValueError."""
    first = file.read(1)
    if not first or not first[0]:
        raise ValueError("not an EBML size")
    length = 9 - first[0].bit_length()
    rest = file.read(length - 1)
    if len(rest) < length - 1:
        raise ValueError("not an EBML size")
    value = int.from_bytes(bytes([first[0] & (0xFF >> length)]) + rest, "big")
    return None if value == (1 << (7 * length)) - 1 else value


def moving_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """The video streams that are moving pictures: a cover picture (an MP3's, an M4A's) is stored
    as a video stream too."""
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def is_text_subtitle(stream: av.stream.Stream) -> bool:
    """Whether a subtitle stream is known to hold text. Pictures (DVD, Blu-ray, DVB subtitles) are
    never searched for faces, so only text is copied; a stream FFmpeg cannot decode counts as
    pictures."""
    try:
        return bool(stream.codec_context.codec.text_sub)
    except (AttributeError, av.error.FFmpegError, ValueError):
        return False


def subtitles_copied(container: av.container.InputContainer, encoding: Encoding) -> tuple[av.stream.Stream, ...]:
    """The subtitle streams written: the text ones, where asked (--keep-subtitles)."""
    return tuple(filter(is_text_subtitle, container.streams.subtitles)) if encoding.keep_subtitles else ()


def never_written(container: av.container.InputContainer) -> dict[str, int | list[str]]:
    """What a file holds that veil never writes, for the plan and the user: cover pictures (a
    face on an album or a thumbnail), attached files (a Matroska file's fonts and pictures), data
    tracks (a camera's GPS track, timecode), chapters (whose titles can name people and places)
    and its tags, by name (`tag_names`)."""
    return {"cover_pictures_not_written": sum(bool(s.disposition & av.stream.Disposition.attached_pic)
                                              for s in container.streams.video),
            "attachments_not_written": len(container.streams.attachments),
            "data_tracks_not_written": len(container.streams.data),
            "chapters_not_written": len(container.chapters()),
            "metadata_not_written": tag_names(container)}


# Tags that describe a container's own layout, which every muxer writes afresh: not metadata of the
# recording.
LAYOUT_TAGS = {"major_brand", "minor_version", "compatible_brands", "duration"}
# Tag names that FFmpeg's demuxers give the metadata of the common containers (MP4 and QuickTime,
# Matroska and WebM, Ogg, FLAC, ID3, RIFF), a phone's (Apple's, Android's) among them: said by
# name. Any other name is the file's own words (a Matroska, Vorbis or ID3 TXXX tag may be named
# anything, a person's name too): counted, not said.
KNOWN_TAGS = {
    "album", "album_artist", "artist", "author", "comment", "composer", "copyright", "creation_time", "date",
    "description", "disc", "encoded_by", "encoder", "genre", "grouping", "handler_name", "keywords", "language",
    "location", "location-eng", "lyrics", "make", "model", "performer", "publisher", "rating", "rotate", "show",
    "software", "synopsis", "timecode", "title", "track", "vendor_id", "year", "com.android.version",
    "com.android.capture.fps", "com.android.manufacturer", "com.android.model", "com.apple.quicktime.author",
    "com.apple.quicktime.comment", "com.apple.quicktime.creationdate", "com.apple.quicktime.description",
    "com.apple.quicktime.displayname", "com.apple.quicktime.keywords", "com.apple.quicktime.location.iso6709",
    "com.apple.quicktime.location.accuracy.horizontal", "com.apple.quicktime.make", "com.apple.quicktime.model",
    "com.apple.quicktime.software", "com.apple.quicktime.title", "com.apple.quicktime.content.identifier",
    "com.apple.quicktime.live-photo.auto", "com.apple.quicktime.full-frame-rate-playback-intent",
    "xmp", "isrc", "bps", "number_of_frames", "number_of_bytes", "_statistics_writing_app",
    "_statistics_writing_date_utc", "_statistics_tags", "date_recorded", "date_released", "encoder_options",
    "metadata_block_picture",
}


def tag_names(container: av.container.InputContainer) -> list[str]:
    """The file's tags and its streams', by name, never valued (the values are what identifies: a
    phone's GPS position, its make and model, dates, a recorder's title or comment): not one of
    their values is copied (a muxer writes a few of the same names afresh: a track's
    handler_name, the encoder). A written track's language, which veil keeps where it is a
    language tag (`keep_track_choice`), is not listed. The audit report lists the rest, so the
    user can check what was taken out."""
    def said(tags: list[str], where: str) -> list[str]:
        known = [tag for tag in tags if tag.lower() in KNOWN_TAGS]
        others = len(tags) - len(known)
        return [f"{where}{tag}" for tag in known] + ([f"{where}{others} tag(s) of other names"] if others else [])

    names = said([tag for tag in container.metadata if tag.lower() not in LAYOUT_TAGS], "")
    for stream in container.streams:
        kept = stream.type in ("video", "audio", "subtitle") and TRACK_LANGUAGE.fullmatch(
            stream.metadata.get("language", "")) is not None
        tags = [tag for tag in stream.metadata if tag.lower() not in LAYOUT_TAGS and not (kept and tag == "language")]
        if stream.type == "audio" and stream.codec_context.name == "vorbis" and stream.codec_context.extradata:
            # (An Ogg reader gives them as the stream's tags too: named once.)
            given = {tag.lower() for tag in tags}
            tags += [name for name in vorbis_comment_names(stream.codec_context.extradata) if name.lower() not in given]
        names += said(tags, f"stream {stream.index} ({stream.type}) ")
    return names


def left_out(container: av.container.InputContainer) -> dict[str, int | list[str]]:
    """What a video file holds beside the video redacted, for the plan and the user's notes:
    other moving pictures (another angle, a preview) and whatever `never_written` counts, never
    written; subtitle streams, the text ones written only if asked (--keep-subtitles)."""
    try:
        video = video_stream(container)
        transparent = has_transparency(video)
        # Matroska's StereoMode (the frames' own, an H.264 frame-packing SEI, the scan sees).
        stereo = video.metadata.get("stereo_mode", "mono") != "mono"
    except VideoError:
        transparent = stereo = False  # no video to write: the render says why
    return {"other_videos_not_written": max(0, len(moving_streams(container)) - 1),
            "transparency_not_written": int(transparent),
            "stereo_3d_not_written": int(stereo),
            "subtitle_streams": len(container.streams.subtitles),
            "picture_subtitle_streams": sum(not is_text_subtitle(s) for s in container.streams.subtitles),
            **never_written(container)}


def has_transparency(stream: av.video.stream.VideoStream) -> bool:
    """Whether the video's pictures carry transparency, which veil's output does not keep: an alpha
    plane in its pixel format (ProRes 4444, PNG, FFV1), or a WebM's VP8/VP9 alpha, stored beside
    the picture (Matroska's alpha_mode) where FFmpeg's own decoder leaves it aside."""
    if stream.metadata.get("alpha_mode") == "1":
        return True
    pixels = stream.codec_context.format
    return pixels is not None and alpha_component(pixels) is not None


def alpha_component(pixels: av.VideoFormat) -> av.video.format.VideoFormatComponent | None:
    return next((component for component in pixels.components if component.is_alpha), None)


# Beside a moving picture, a video stream that runs under this share of the longest one's stated
# length is a still (`_stills`): a preview of a few frames, a thumbnail track.
STILL_SHARE = 0.1
# A Matroska track's length, as FFmpeg and mkvmerge tag it: H:MM:SS.nnnnnnnnn.
MATROSKA_DURATION = re.compile(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)")


def video_stream(container: av.container.InputContainer, exact: bool = False,
                 planned: int | None = None) -> av.video.stream.VideoStream:
    """The video that is redacted and written: the recording. Of the moving pictures, a still
    beside one that moves (`_stills`: one frame, or far shorter) is never it; of the rest, the one
    marked to be shown by default, the largest of those (the first on a tie), or the largest of
    all when none is marked. By size alone, or by the mark (a phone marks every track), a larger
    one-frame preview track beside a recording was chosen over it; by FFmpeg's own rule, which
    takes the first of equals, a small blank stream before the picture was. `planned`: the
    stream a plan was made from (its index), which rendering and review must take whatever this
    rule would choose (an older veil chose otherwise). `exact`: decoded on one thread (see below)."""
    moving = moving_streams(container)
    if not moving:
        raise VideoError("no moving picture in the file (only a cover picture)")
    if planned is not None:
        stream = next((s for s in moving if s.index == planned), None)
        if stream is None:
            raise VideoError(f"the plan was made from video stream {planned}, which the file does not hold as a "
                             "moving picture: plan it again")
    else:
        stills = _stills(container, moving)
        stream = max(moving, key=lambda s: (s.index not in stills, bool(s.disposition & av.stream.Disposition.default),
                                            s.codec_context.width * s.codec_context.height if s.codec_context else 0))
    if stream.codec_context is None:
        raise VideoError("unsupported video codec: FFmpeg has no decoder for it")
    # A stream's crop rectangle (H.264's, H.265's conformance window) is how players show it: FFmpeg
    # applies a crop from the left or top only where it keeps the planes aligned, unless told not
    # to, and handed on the columns no player shows (a name card cut off by a lossless crop).
    stream.codec_context.flags |= av.codec.context.Flags.unaligned
    # Frame threads make decoding about as fast as the cores allow. But how FFmpeg patches damage
    # up, and whether it marks a frame corrupt at all, depend on its threads' number and timing:
    # planning decodes on one thread, so that a damaged frame is always seen (and refused, or
    # covered), and so do rendering and review of a damaged file planned with --salvage, so that
    # on any machine they see the frames planned. (Pass 1's time is the detector's: one decoding
    # thread did not change it, bench/README.md.)
    if exact:
        stream.codec_context.thread_type, stream.codec_context.thread_count = "NONE", 1
    else:
        stream.codec_context.thread_type = "AUTO"
    return stream


def _stills(container: av.container.InputContainer, moving: list[av.video.stream.VideoStream]) -> set[int]:
    """The indexes of the moving pictures that are stills beside another: marked as one, holding one
    frame (as the container states, else counted, `_one_frame`), or running under STILL_SHARE of the
    longest stated length (`_stated_length`). Empty where the file holds one moving picture."""
    if len(moving) < 2:
        return set()
    stills = {s.index for s in moving if s.disposition & av.stream.Disposition.still_image or s.frames == 1}
    if any(not s.frames for s in moving):
        stills |= _one_frame(container.name, [s.index for s in moving])
    lengths = {s.index: length for s in moving if (length := _stated_length(s)) is not None}
    longest = max(lengths.values(), default=0.0)
    return stills | {index for index, length in lengths.items() if length < STILL_SHARE * longest}


def _stated_length(stream: av.video.stream.VideoStream) -> float | None:
    """How long a video stream runs, in seconds, where its container says: a Matroska track's
    DURATION tag, or the duration of a stream whose frames are indexed (MP4, MOV, AVI). FFmpeg's
    own duration of a Matroska stream is a guess: the whole file's, for a one-frame preview."""
    if match := MATROSKA_DURATION.fullmatch(stream.metadata.get("DURATION", "")):
        hours, minutes, seconds = match.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if stream.frames and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _one_frame(path: str, indexes: list[int]) -> set[int]:
    """`_counted_one_frame`, once for each state of the file: a run chooses its stream several times."""
    try:
        state = os.stat(path)
    except OSError:
        return set()
    return set(_counted_one_frame(path, tuple(indexes), (state.st_ino, state.st_size, state.st_mtime_ns,
                                                         state.st_ctime_ns)))


@functools.lru_cache(maxsize=8)
def _counted_one_frame(path: str, indexes: tuple[int, ...], state: tuple[int, ...]) -> frozenset[int]:
    """Of the video streams `indexes`, those with one packet or none in the whole file, beside one
    with more: where a container states no frame counts (Matroska, WebM, MPEG-TS), a phone's
    preview or a cover. Counted in a second opening of the file, so that the caller's reads it
    from its start, and only until every stream has shown two (at once, for two recordings): a
    recording that starts late is one. A file that cannot be read so has none (its reading says why)."""
    counts = dict.fromkeys(indexes, 0)
    try:
        with open_local(path) as again:
            streams = [s for s in again.streams.video if s.index in counts]
            for packet in readable_packets(again, streams, []):
                counts[packet.stream.index] += bool(packet.size)
                if min(counts.values()) > 1:
                    return frozenset()
    except (av.error.FFmpegError, OSError):
        return frozenset()
    return frozenset(i for i, count in counts.items() if count <= 1) if max(counts.values()) > 1 else frozenset()


def frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    """The nominal frame rate; some Matroska files report a nonsensical (negative) average."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= 1000:
            return Fraction(rate)
    return Fraction(30)


def read(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    copied: tuple[av.stream.Stream, ...] = (),
    damage: Damage | None = None,
    hint: str = SALVAGE_HINT,
    timing: Timing | None = None,
) -> Iterator[av.VideoFrame | av.Packet]:
    """Decoded video frames in order, with the packets of `copied` streams interleaved. The sound
    is read too (in a file without a frame index, every stream: `_demuxed`), for where the file's
    data ends (`_incomplete`). A damaged file raises VideoError (its message ending in `hint`),
    unless `damage` is given: then its frames are read as far as they can be, and `damage` says
    what was met on the way. `timing` learns how frames were timed."""
    # An AVI without B-frames keeps the times its reader gives (in order, as they were before).
    decoding_order = container.format.name == "avi" and bool(video.codec_context.has_b_frames)
    reading = _Reading(video, damage, hint, timing or Timing(), decoding_order=decoding_order)
    for packet in reading.packets(container, copied):
        if packet.stream is video or packet.stream is None:  # None: the decoder flushed, its data cut off
            yield from reading.frames(packet)
        elif packet.stream in copied and packet.dts is not None:
            yield packet
    reading.finish(container)


@dataclass
class _Reading:
    """One pass over a video's packets and frames, and what it learns of the file's damage."""

    video: av.video.stream.VideoStream
    damage: Damage | None
    hint: str
    timing: Timing
    decoded: int = 0
    latest: float | None = None  # the latest time of a frame given
    steps: deque[float] = field(default_factory=lambda: deque(maxlen=USUAL_OF))  # between the last frames given
    last_frame_end: float = 0.0  # where the last frame decoded ends, in seconds from the first
    last_frame_reach: float = 0.0  # the same, in seconds from the stream's start where that is earlier
    video_packets: int = 0  # the picture's packets with data given to the decoder
    first_time: float | None = None
    data_end: float = 0.0  # the end of the last packet of any stream read (`_demuxed`), in seconds
    data_start: float = 0.0  # the start of the earliest, where it lies before 0 (an MPEG-TS clock that wrapped)
    cut_short: bool = False  # whether the last packet of the picture or the sound has less data than it says
    mistimed: int = 0  # packets timed past the file's stated end (damage read as a time), left out
    damaged: bool = False  # salvaging: damage met since the last clean keyframe
    # An AVI's frames are timed by their decoding times (`_decoding_time`).
    decoding_order: bool = False
    last_dts: int | None = None
    dts_step: int = 0
    # The decoding times not yet given to a frame, in order (`_decoding_time`), and the packets given
    # to the decoder that no frame has answered yet, by the presentation time their frame will
    # carry (made up in decoding order): each one's place in that order (`video_packets` then) and
    # decoding time.
    unanswered_dts: deque[int] = field(default_factory=deque)
    unanswered: dict[int, tuple[int, int]] = field(default_factory=dict)

    def refuse(self, problem: str) -> None:
        """Refuses a damaged video, unless it is being salvaged: then the problem is where it ends."""
        if self.damage is None:
            raise VideoError(problem + self.hint)
        self.damage.ends_early = self.damage.ends_early or problem

    def packets(self, container: av.container.InputContainer,
                copied: tuple[av.stream.Stream, ...]) -> Iterator[av.Packet]:
        """The packets of the streams `_demuxed` reads, noting where the data ends. Salvaging, a
        container that cannot be read on ends there, the video's decoder flushed (a stream-less packet)."""
        failures: list[av.error.FFmpegError] = []
        latest = _latest_packet_end(container)
        for packet in readable_packets(container, _demuxed(container, self.video, copied), failures):
            if packet.size and packet.stream.type in ("video", "audio"):
                # A file cut off mid-packet (a crashed recording, an unfinished copy): the demuxer
                # marks the packet, and frame threads let its decode error pass unsaid.
                self.cut_short = packet.is_corrupt
            if packet.pts is not None and packet.time_base:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                # A time past the file's stated end is damage read as a time (a Matroska cluster's
                # garbled bytes): counted, it would make a file cut short at half look whole, and
                # copied, it would stretch the output's sound to that time.
                if latest is not None and end > latest:
                    if self.damage is None:
                        self.refuse(f"the file is damaged: a packet is timed at {end:.2f} s, past the end it states")
                    self.mistimed += 1
                    continue
                self.data_end = max(self.data_end, end)
                self.data_start = min(self.data_start, float(packet.pts * packet.time_base))
            yield packet
        for error in failures:  # the container itself is damaged: its data ends here
            self.refuse(f"the file is damaged: its data cannot be read after frame {self.decoded} ({reason(error)})")
            yield av.Packet()

    def frames(self, packet: av.Packet) -> Iterator[av.VideoFrame]:
        """The frames the packet completes (a stream-less packet: all the decoder holds), each
        checked for damage and counted."""
        if packet.stream is not None and packet.size:
            self.video_packets += 1
        timed = self.decoding_order and packet.stream is not None and packet.size and packet.dts is not None
        if timed:
            self.unanswered_dts.append(packet.dts)
            if packet.pts is not None:
                self.unanswered[packet.pts] = (self.video_packets, packet.dts)
        try:
            decoded = self.video.decode(None if packet.stream is None else packet)
        except av.error.FFmpegError as error:
            if timed:  # that packet gives no frame
                self._without_frame(self.unanswered.pop(packet.pts, (0, packet.dts))[1])
            if self.damage is None:
                raise VideoError(f"decode error after frame {self.decoded}: {reason(error)}{self.hint}") from None
            self.damage.undecodable_packets += 1
            self.damaged = True
            return
        for frame in decoded:
            if frame.pts is None and (rate := self.video.guessed_rate or self.video.average_rate) and self.video.time_base:
                # A bare stream (.h264 from a dashcam or a recorder) has no timestamps: its
                # frames are placed at its nominal rate, as players do, not all at 0.
                frame.time_base = self.video.time_base
                frame.pts = round(self.decoded / rate / self.video.time_base)
            self._decoding_time(frame)
            if self._out_of_order(frame):
                continue
            if frame.is_corrupt and self.damage is None:
                raise VideoError(f"frame {self.decoded} is corrupt (damaged or truncated data){self.hint}")
            if self.damage is not None and self._decoded_from_damage(frame):
                self.damage.damaged_frames.append(self.decoded)
            self._count(frame)
            yield frame

    def _decoding_time(self, frame: av.VideoFrame) -> None:
        """An AVI's frames, where it holds B-frames, are timed by their decoding times: AVI stores
        no presentation times, and its reader makes them up in decoding order, which with B-frames
        runs backwards (FFmpeg's best-effort time turns to decoding times only once they have,
        which gave two frames one time where B-frames are not stacked). The n-th frame given takes
        the n-th packet's decoding time, not the frame's own: that is the time of the packet whose
        decoding gave it, later by the decoder's delay (its reordering, its threads), which moved
        the picture that much later against the sound. Frames given past the last packet's time
        follow on at the last step."""
        if not self.decoding_order:
            return
        own = self.unanswered.pop(frame.pts, None) if frame.pts is not None else None
        if own is not None:
            # A packet given well before this frame's own that no frame has answered never will
            # (the decoder dropped it: a picture before the first keyframe, one whose reference
            # was cut off): else its time would go to the next frame, and every later one run early.
            window = (self.video.codec_context.has_b_frames or 0) + 2
            for pts, (place, dts) in list(self.unanswered.items()):
                if place < own[0] - window:
                    del self.unanswered[pts]
                    self._without_frame(dts)
        dts = self.unanswered_dts.popleft() if self.unanswered_dts else None
        if dts is None and self.last_dts is not None and self.dts_step > 0:
            dts = self.last_dts + self.dts_step
        if dts is None:
            return
        if self.last_dts is not None and dts > self.last_dts:
            self.dts_step = dts - self.last_dts
        self.last_dts = dts
        if dts != frame.pts and self.timing.decoding_from is None:
            self.timing.decoding_from = self.decoded
        frame.pts = dts

    def _without_frame(self, dts: int) -> None:
        """A packet that gives no frame: its decoding time goes (`_decoding_time`), or, where a frame
        has taken it already, the next one does."""
        if dts in self.unanswered_dts:
            self.unanswered_dts.remove(dts)
        elif self.unanswered_dts:
            self.unanswered_dts.popleft()

    def _out_of_order(self, frame: av.VideoFrame) -> bool:
        """Salvaging: a frame given a little after a later one (damaged picture order), left out."""
        if self.damage is None or frame.time is None or self.latest is None:
            return False
        if self.latest - REORDER_S <= frame.time < self.latest:
            self.damage.frames_out_of_order += 1
            self.damaged = True
            return True
        return False

    def _decoded_from_damage(self, frame: av.VideoFrame) -> bool:
        """Salvaging: whether the frame is decoded from damaged data (see Damage). Keeps the state:
        damage met (here a hole before the frame: frames lost, which later ones may be predicted
        from), until a clean keyframe puts it behind."""
        if frame.time is not None and self.latest is not None and len(self.steps) >= 2:
            self.damaged |= is_hole(frame.time - self.latest, float(np.median(self.steps)))
        if frame.is_corrupt:
            self.damaged = True
        elif frame.key_frame:
            self.damaged = False
        return self.damaged

    def _count(self, frame: av.VideoFrame) -> None:
        self.decoded += 1
        if frame.time is None:
            return
        if self.latest is not None and frame.time > self.latest:
            self.steps.append(frame.time - self.latest)
        self.latest = frame.time if self.latest is None else max(self.latest, frame.time)
        self.first_time = frame.time if self.first_time is None else min(self.first_time, frame.time)
        # A frame timed by its decoding time (`_decoding_time`) lasts its decoding step (an AVI
        # copied from MP4 states one tick of 1/600 s a frame).
        ticks = max(frame.duration or 0, self.dts_step if self.decoding_order else 0)
        length = float(ticks * frame.time_base) if ticks and frame.time_base else 0.0
        self.last_frame_end = max(self.last_frame_end, frame.time - self.first_time + length)
        start = self.first_time
        if self.video.start_time is not None and self.video.time_base:
            start = min(start, float(self.video.start_time * self.video.time_base))
        self.last_frame_reach = max(self.last_frame_reach, frame.time - start + length)

    def finish(self, container: av.container.InputContainer) -> None:
        """After the last packet: a file that ends before it says it does is refused (or, salvaging, said)."""
        if self.decoded == 0:
            raise VideoError("no frame could be decoded")
        if self.cut_short:
            self.refuse(f"the file is truncated or damaged: its data ends inside a packet, after frame {self.decoded}")
        # How far the data reaches, counted from its start where that lies before 0: FFmpeg times an
        # MPEG-TS whose 33-bit clock wrapped (every 26.5 hours, in a broadcast recording) from
        # before 0 to after it, and its stated duration is a length.
        reached = max(self.latest or 0.0, self.data_end) - self.data_start
        # Where every packet gave a frame, frames the count holds beyond them are empty ones (an AVI
        # whose picture starts after its sound holds them before it): the frames reach from the
        # stream's start. Packets that gave none were pictures that could not be decoded.
        ends = self.last_frame_reach if self.video_packets == self.decoded else self.last_frame_end
        if problem := _incomplete(container, self.video, self.decoded, reached, ends):
            self.refuse(problem)
        if self.mistimed:
            self.refuse(f"the file is damaged: {self.mistimed} packet(s) timed past the end it states, left out")


def _latest_packet_end(container: av.container.InputContainer) -> float | None:
    """The latest a packet of a Matroska or WebM file can end: its stated start and duration (its
    header's), with a second's room for rounding; None for a file of another format, whose duration
    FFmpeg may only estimate (from the bit rate, in MPEG program streams), or one that states none."""
    if not container.duration or "matroska" not in container.format.name:
        return None
    return ((container.start_time or 0) + container.duration) / av.time_base + 1.0


def _demuxed(container: av.container.InputContainer, video: av.video.stream.VideoStream,
             copied: tuple[av.stream.Stream, ...]) -> list[av.stream.Stream]:
    """The streams `read` reads the packets of: the video, the sound and `copied`; in a file without
    a frame index (Matroska, WebM, MPEG-TS), every stream, since its stated duration, which the data
    must reach (`_incomplete`), counts them all: a subtitle cue or another video may end after the
    picture. Their packets are read, not decoded (Matroska's reader reads them even when left
    aside); in an MP4 another video's would be read for nothing."""
    if video.frames:
        return [video, *{*container.streams.audio, *copied}]
    return list(container.streams)


def _incomplete(container: av.container.InputContainer, video: av.video.stream.VideoStream,
                decoded: int, data_end: float, last_frame_end: float) -> str | None:
    """A truncated file often decodes without an error, just fewer frames: how it falls short."""
    if video.frames and decoded < video.frames:
        # The frame index also counts frames an edit list hides (a trimmed clip) and frames no
        # decoder can show (before the first keyframe, an open GOP's leading pictures): fewer
        # frames is a truncation unless the last one decoded ends where the picture does.
        length = (float(video.duration * video.time_base) if video.duration and video.time_base
                  else container.duration / av.time_base if container.duration else None)
        if length is None or last_frame_end < length - 2 / float(frame_rate(video)):
            return f"the file is truncated or damaged: {decoded} of {video.frames} frames decoded"
    # Containers without a frame index (Matroska, WebM) state a duration instead: the file's data
    # must reach it. Which stream ends last does not matter (sound, a subtitle cue, another video
    # may outlast the picture: every stream is read, `_demuxed`), as a file cut short cuts them all;
    # the duration is an end time in some (Matroska that starts after 0) and a length in others.
    if not video.frames and container.duration:
        expected = _stated_end(container)
        # Matroska's (and WebM's) muxers state the end of the last block, give or take a frame whose
        # duration is not stored; others' figures are looser. Slack measured in frames alone would
        # let a low-rate file (a timelapse, CCTV at 1 fps) lose its last seconds unsaid.
        frame = 1 / float(frame_rate(video))
        slack = 1.5 * frame + 0.15 if container.format.name.startswith("matroska") else 2.5 * frame + 0.5
        if data_end < expected - slack:
            # A subtitle cue read may end after the last picture: the output ends with the picture.
            picture = f" (its picture at {last_frame_end:.2f} s)" if last_frame_end < data_end - slack / 2 else ""
            return f"the file is truncated or damaged: its data ends at {data_end:.2f} s of {expected:.2f} s{picture}"
    # A subtitle cue stored early may last to the stated duration however short the copy: the
    # bytes a Matroska or ASF file states it holds tell what the times cannot.
    if missing := _matroska_bytes_missing(container.name) or _asf_bytes_missing(container.name):
        return f"the file is truncated or damaged: {missing} bytes of it are missing"
    return None


def _stated_end(container: av.container.InputContainer) -> float:
    """Where the file's header says its data ends (s). FFmpeg gives each ASF stream the file's
    play time as its length, which is the end from zero, and adds the stream's start to it: a
    WMV whose sound starts 3 s late would look 3 s longer than it is."""
    if container.format.name == "asf":
        ends = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
        if ends:
            return max(ends)
    return container.duration / av.time_base


def choose_encoder(container_format: str, input_codec: str, bit_depth: int, encoding: Encoding) -> str:
    requested = encoding.codec
    typed = "codec" not in encoding.from_plan
    if requested:
        if requested not in ENCODERS:
            raise VideoError(f"unknown codec: {encoding.given_as('codec')}: {'use' if typed else '--codec overrides it with'} "
                             f"one of {', '.join(sorted(ENCODERS))}")
        encoder = ENCODERS[requested]
    elif container_format == "webm":
        encoder = WEBM_VIDEO.get(input_codec, WEBM_DEFAULT)
    elif container_format == "ogg":
        encoder = OGG_VIDEO
    elif bit_depth > 8 or input_codec == "hevc":
        # libx264's 10-bit profile plays almost nowhere; HEVC does, and keeps the depth.
        encoder = "libx265"
    else:
        encoder = "libx264"
    if container_format == "webm" and encoder not in WEBM_VIDEO.values():
        raise VideoError(f"a WebM file cannot hold {encoding.given_as('codec')}: "
                         f"{'use' if typed else '--codec overrides it with'} vp9 or av1")
    if container_format == "ogg" and encoder != OGG_VIDEO:
        raise VideoError(f"an Ogg file cannot hold {encoding.given_as('codec')}: use .mkv or .webm")
    return encoder


def bit_depth(stream: av.video.stream.VideoStream) -> int:
    fmt = stream.codec_context.format
    return max((c.bits for c in fmt.components), default=8) if fmt else 8


def output_pix_fmt(encoder: str, input_fmt: str, depth: int, width: int, height: int) -> str:
    """Keep the input's chroma layout and depth where the encoder can (RGB: 4:4:4). An odd width or height
    that the chroma layout halves is written in 4:4:4 by x264 and x265, which refuse it
    otherwise (a screen recording of 641x481, say): the size stays as it was. Never with an alpha
    plane, though VP9 and some x265 builds list one: veil searches the colour a player shows under
    it, not the transparency, so a face drawn in the alpha would be written as it was (and this
    libx265 refuses to open with it)."""
    supported = {f.name for f in (av.codec.Codec(encoder, "w").video_formats or ())}
    full_colour = "yuv444p10le" if depth > 8 else "yuv444p"
    # RGB (a lossless screen recording) the encoder cannot take keeps its full colour as 4:4:4.
    for candidate in (input_fmt, input_fmt.replace("yuvj", "yuv"), *_same_layout_deepest_first(input_fmt, depth),
                      *((full_colour,) if _in_colours(input_fmt) else ()),
                      "yuv420p10le" if depth > 8 else "yuv420p", "yuv420p"):
        if candidate in supported and alpha_component(av.VideoFormat(candidate)) is None:
            if encoder in ("libx264", "libx265") and _halves_odd_side(candidate, width, height):
                return next(f for f in (full_colour, "yuv444p") if f in supported)
            return candidate
    raise VideoError(f"encoder {encoder} supports none of the usable pixel formats")


def frame_side_data(frame: av.VideoFrame) -> list[Any]:
    """The frame's side data (each with its `type`): PyAV 18 lists it, PyAV 19 (the one pip gives
    Python 3.12 and later) maps each type to it."""
    container = frame.side_data
    return [container[item] if isinstance(item, av.sidedata.sidedata.Type) else item for item in container]


def hdr10_levels(frame: av.VideoFrame) -> tuple[str, ...]:
    """x265's parameters for the HDR10 levels a frame carries: its mastering display's colours and
    light, and its content's light. Without them players tone-map an HDR10 picture by guesswork,
    and it looks other than it did."""
    levels = []
    for data in frame_side_data(frame):
        if data.type == av.sidedata.sidedata.Type.MASTERING_DISPLAY_METADATA:
            # FFmpeg's AVMasteringDisplayMetadata: red, green, blue and white x, y, then the least
            # and most light, each a fraction of two ints; then whether each group is given.
            values = struct.unpack_from("<20i2i", bytes(data))  # a later FFmpeg may add fields after these
            ratio = [values[i] / values[i + 1] if values[i + 1] else 0.0 for i in range(0, 20, 2)]
            if values[20] and values[21]:
                x = [round(r * 50_000) for r in ratio[:8]]  # x265 counts chromaticity in 0.00002, light in 0.0001 cd/m2
                levels += ["hdr10=1", f"master-display=G({x[2]},{x[3]})B({x[4]},{x[5]})R({x[0]},{x[1]})"
                           f"WP({x[6]},{x[7]})L({round(ratio[9] * 10_000)},{round(ratio[8] * 10_000)})"]
        elif data.type == av.sidedata.sidedata.Type.CONTENT_LIGHT_LEVEL:
            most, average = struct.unpack_from("<2I", bytes(data))
            levels += ["hdr10=1", f"max-cll={most},{average}"]
    return tuple(dict.fromkeys(levels))


def _in_colours(input_fmt: str) -> bool:
    """RGB, or a palette of RGB colours (its one component is an index, not a grey level: taken for
    grey, a colour animation was written black and white)."""
    fmt = av.VideoFormat(input_fmt)
    return fmt.is_rgb or fmt.has_palette


def _same_layout_deepest_first(input_fmt: str, depth: int) -> list[str]:
    """Planar formats with the input's chroma layout (or grey), from its depth down: a lossless
    master in 4:4:4 at 16 bits is kept 4:4:4 at the most bits the encoder takes (it fell to 4:2:0)."""
    fmt = av.VideoFormat(input_fmt, 64, 64)
    if _in_colours(input_fmt):
        return []
    if len(fmt.components) < 3:
        family = "gray"
    else:
        chroma = fmt.components[1]
        layouts = {(64, 64): "444", (32, 64): "422", (32, 32): "420", (64, 32): "440"}
        if (chroma.width, chroma.height) not in layouts:
            return []
        family = f"yuv{layouts[chroma.width, chroma.height]}p"
    return [family + ("" if bits == 8 else f"{bits}le") for bits in (16, 14, 12, 10, 8) if bits <= max(depth, 8)]


def _halves_odd_side(pix_fmt: str, width: int, height: int) -> bool:
    """Whether the format's chroma is subsampled along a side whose length is odd (gray has none)."""
    components = av.VideoFormat(pix_fmt, width, height).components
    if len(components) < 3:
        return False
    chroma = components[1]
    return (width % 2 == 1 and chroma.width < width) or (height % 2 == 1 and chroma.height < height)


def default_crf(encoder: str) -> int:
    # Visually transparent for x264/x265 (18 / 20); VP9 and AV1 use a different scale.
    return {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libvpx": 8, "libsvtav1": 26}.get(encoder, 20)


KEYFRAME_SPACING_S = 1.0

# FFmpeg's colour matrix and range codes (AVColorSpace, AVColorRange).
RGB_MATRIX, BT601_MATRIX = 0, 6
LIMITED_RANGE, FULL_RANGE = 1, 2


class FieldOrder:
    """Marks frames with the interlaced output's field order. FFmpeg's x264 wrapper codes each frame
    in the order the frame states, whatever its options say, and a frame made anew from redacted
    pixels states none: a top-field-first recording came out bottom field first, its fields shown
    in the wrong order by deinterlacers and interlaced displays. FFmpeg's setfield filter marks it."""

    def __init__(self, order: str):
        self.order = order
        self.graph: av.filter.Graph | None = None

    @classmethod
    def of(cls, stream: av.video.stream.VideoStream) -> FieldOrder | None:
        """For an output stream coded interlaced, else None."""
        order = stream.codec_context.field_order
        if stream.codec_context.name != "libx264" or order not in TOP_FIELD_FIRST + BOTTOM_FIELD_FIRST:
            return None
        return cls("tff" if order in TOP_FIELD_FIRST else "bff")

    def marked(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The frame (its pixels, times and type as they were) stating the stream's field order."""
        if self.graph is None:
            self.graph = av.filter.Graph()
            source = self.graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                           time_base=frame.time_base)
            self.graph.link_nodes(source, self.graph.add("setfield", self.order), self.graph.add("buffersink"))
            self.graph.configure()
        self.graph.push(frame)
        return self.graph.pull()


@dataclass
class Output:
    container: av.container.OutputContainer
    video: av.video.stream.VideoStream
    copies: dict[int, av.stream.Stream]  # input stream index -> output stream, packets copied
    # Streams decoded and encoded again: converted (a resampler) or with voices edited (a VoiceEdit).
    reencode: dict[int, tuple[av.audio.stream.AudioStream, Converter | VoiceEdit]]
    # What the video's first packet passes through before the file (X264_WITHOUT_SEI), if anything.
    first_packet_filter: BitStreamFilterContext | None = None
    fields: FieldOrder | None = None  # interlaced output: each frame told its field order
    last_keyframe: float | None = None  # when the last frame made a keyframe was (s)
    # Each frame's duration by its timestamp, until its packet comes: the encoders leave packets
    # without one, and a muxer then gives the last frame 1 / the average rate (a long still at a
    # VFR clip's end, a phone's slow-motion tail, came out longer or shorter).
    durations: dict[int, int] = field(default_factory=dict)
    # Copied streams whose packets can hold what players do not show: a subtitle's speaker name
    # (`SHOWN_ONLY`), tags joined to an MP3 frame (`mpeg_audio_frame_only`); each packet rewritten
    # without it (None: left out).
    rewritten: dict[int, Callable[[av.Packet], av.Packet | None]] = field(default_factory=dict)
    # Each re-encoded stream's last frame held back, to be cut at the sound's end (LastFrameCut).
    cuts: dict[int, LastFrameCut] = field(default_factory=dict)
    # Copied sound streams whose container says exactly where the sound ends (in the stream's time
    # base), and each one's last packet, held back until then.
    sound_ends: dict[int, int] = field(default_factory=dict)
    held: dict[int, av.Packet] = field(default_factory=dict)
    # A damaged file planned with --salvage: a sound packet that cannot be decoded is passed over,
    # in a stream whose voices are edited (the edit's timeline makes its time silence) and in one
    # copied (`mux`).
    salvage: bool = False
    last_pts: int | None = None  # the last video frame's time, in the video's time base
    # The codec, CRF and (x264, x265) preset the video is encoded with (`written_as`).
    video_written_as: dict[str, Any] = field(default_factory=dict)
    # Each re-encoded stream's shift (its time base) where its encoder's first packet comes before
    # zero (an MP3 or AAC encoder's priming) in a container that holds no negative time and has no
    # edit list to skip the priming (AVI, FLV, ASF): its muxer would move every stream later by that
    # much, the picture too, rounded up to a whole frame in AVI. The sound starts that much late instead.
    sound_shifts: dict[int, int] = field(default_factory=dict)
    # Where the written streams' clock starts in the input (s; `clock_origin`): every packet is
    # written that much earlier, so the output's clock starts at zero. A camera's or a recorder's
    # own clock (its wall clock, FFmpeg's -copyts) would otherwise tell when it was recorded.
    origin: Fraction = Fraction(0)
    # Each copied or re-encoded stream's last packet written: its decoding time (its time base).
    last_dts: dict[int, int] = field(default_factory=dict)
    timed_back: int = 0  # packets left out under --salvage as timed before the one written before them

    def _in_time_order(self, packets: list[av.Packet]) -> list[av.Packet]:
        """The packets not timed before the last one written in their stream. One that is has a
        garbled time (damage): no muxer takes it (FFmpeg's "Invalid argument", after all the work),
        and it would play out of its place. Under --salvage it is left out and counted; without,
        nothing is written."""
        kept = []
        for packet in packets:
            index = packet.stream.index
            if packet.dts is not None and index in self.last_dts and packet.dts < self.last_dts[index]:
                if not self.salvage:
                    at, before = (float(dts * packet.time_base) for dts in (packet.dts, self.last_dts[index]))
                    what = {"audio": "sound", "subtitle": "subtitles"}.get(packet.stream.type, packet.stream.type)
                    raise VideoError(f"its {what} is damaged: a piece at {at:.3f} s is timed before the one before "
                                     f"it ({before:.3f} s){SALVAGE_HINT}")
                self.timed_back += 1
                continue
            if packet.dts is not None:
                self.last_dts[index] = packet.dts
            kept.append(packet)
        return kept

    def _from_origin(self, packets: list[av.Packet]) -> None:
        """The packets' times counted from the output's origin (`origin`), in place."""
        if not self.origin:
            return
        for packet in packets:
            if packet.time_base:
                shift = round(self.origin / packet.time_base)
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift

    def encode(self, frame: av.VideoFrame | None) -> None:
        """The next video frame, in display order; None flushes the encoder."""
        if frame is not None:
            if (frame.width, frame.height) != (self.video.width, self.video.height):
                # PyAV's encoder would scale it to the stream's size, unsaid.
                raise VideoError(f"a frame of {frame.width}x{frame.height} in a video of {self.video.width}x"
                                 f"{self.video.height}: not supported")
            if self.fields is not None:
                frame = self.fields.marked(frame)
            self._choose_type(frame)
            self._after_the_last(frame)
            if frame.duration and frame.pts is not None:
                self.durations[frame.pts] = frame.duration
        with external_memory_failures_said():  # x264 opens at the first frame, and allocates as it goes
            packets = self.video.encode(frame)
        for packet in packets:
            if packet.pts in self.durations:
                duration = self.durations.pop(packet.pts)
                packet.duration = packet.duration or duration
        if self.first_packet_filter is not None and packets:
            first, *rest = packets
            packets = [*self.first_packet_filter.filter(first), *self.first_packet_filter.filter(None), *rest]
            self.first_packet_filter = None
        self._from_origin(packets)
        self.container.mux(packets)

    def _after_the_last(self, frame: av.VideoFrame) -> None:
        """A frame at the time of the frame before (`Scan.same_time`) is written one tick of the
        stream's clock later: an MP4's or a MOV's muxer refuses two packets at one time, and a
        player shows only one of them anyway."""
        if frame.pts is None:
            return
        if self.last_pts is not None and frame.pts <= self.last_pts:
            frame.pts = self.last_pts + 1
        self.last_pts = frame.pts

    def _choose_type(self, frame: av.VideoFrame) -> None:
        """The input's keyframes stay keyframes (its seek points and cuts), at most one every
        KEYFRAME_SPACING_S: an intra-only input (MJPEG, ProRes, DNxHR) has nothing else, and
        encoders honour a frame's type. Every other type is the encoder's choice."""
        time = frame.time if frame.time is not None else 0.0
        if frame.pict_type == PictureType.I and (self.last_keyframe is None
                                                 or time - self.last_keyframe >= KEYFRAME_SPACING_S):
            self.last_keyframe = time
        else:
            frame.pict_type = PictureType.NONE

    def mux(self, packet: av.Packet) -> None:
        """A packet of one of the input's other streams: copied, or decoded and encoded again."""
        index = packet.stream.index
        if index in self.copies:
            if self.salvage and packet.stream.type == "audio" and not _decodes(packet):
                # A piece of sound the decoder cannot read may hold anything: an ID3 tag at the head
                # of an MP3 track, with a photo of a face and a name, was copied into the output so.
                # Players cannot play it either: it is left out.
                return
            if index in self.rewritten:
                packet = self.rewritten[index](packet)
                if packet is None:
                    return
            if index in self.sound_ends:  # the last packet is held back, to be cut at the sound's end
                packet, self.held[index] = self.held.get(index), packet
                if packet is None:
                    return
            packet = decoding_data_only(packet)
            packet.stream = self.copies[index]
            self._from_origin([packet])
            if packet.stream.type == "audio" and packet.pts is not None and packet.time_base \
                    and (packet.pts + (packet.duration or 0)) * packet.time_base < -SOUND_PREROLL_S:
                # Sound an edit list cuts away (a phone's trim): no player plays it from the input,
                # and a voice there is never searched for speech; copied, it stayed in an MP4's
                # packets, and Matroska and MPEG-TS, which hold no edit list, played it.
                return
            if packet.stream.type == "subtitle" and packet.pts is not None and packet.pts < 0:
                # A cue before the picture and sound begin (`clock_origin`): its part after it, if any.
                end = packet.pts + (packet.duration or 0)
                if end <= 0:
                    return
                packet.pts = packet.dts = 0
                packet.duration = end
            self.container.mux(self._in_time_order([packet]))
            return
        stream, resampler = self.reencode[index]
        try:
            frames = packet.decode()
        except av.error.FFmpegError as error:
            if self.salvage and isinstance(resampler, VoiceEdit):
                return
            at = f" at {float(packet.pts * packet.time_base):.2f} s" if packet.pts is not None and packet.time_base else ""
            raise VideoError(f"the sound is damaged{at} ({reason(error)}): it cannot be re-encoded, as this output's "
                             "container needs (--salvage with --voice keep copies what can be decoded into a "
                             "container that holds it; with --voice mute, mute-all or anonymise it is written as silence)") from None
        for decoded in frames:
            if not isinstance(resampler, VoiceEdit):  # (which times what it gives by its samples)
                _on_sample_clock(decoded)
            for whole in self.cuts[index].push(decoded):
                try:
                    resampled_frames = resampler.resample(whole)
                except WiderSound as wider:  # (a VoiceEdit says so itself)
                    raise widened(resampler.widest, wider) from None
                for resampled in resampled_frames:
                    self._mux_sound(index, stream.encode(resampled))

    def _mux_sound(self, index: int, packets: list[av.Packet]) -> None:
        """A re-encoded stream's packets, moved by its `sound_shifts` where the container needs."""
        if self.container.format.name in SIDE_DATA_ALONE_REFUSED:
            packets = [packet for packet in packets if packet.size]
        self._from_origin(packets)
        if self.container.format.name in NO_NEGATIVE_TIMES:
            for packet in packets:
                if index not in self.sound_shifts and packet.pts is not None:
                    self.sound_shifts[index] = max(0, -min(packet.pts, packet.dts if packet.dts is not None else packet.pts))
                shift = self.sound_shifts.get(index, 0)
                if shift:
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts = None if packet.dts is None else packet.dts + shift
        self.container.mux(self._in_time_order(packets))

    def sound_encoded_again(self, source: av.container.InputContainer) -> list[str]:
        """The sound streams kept (their voices not edited) yet encoded again, since this container
        cannot hold them as they are, each as "stream N: FROM as TO", for the user: they are not
        the input's bytes."""
        return [f"stream {index}: {source.streams[index].codec_context.name} as {stream.codec_context.name}"
                for index, (stream, resampler) in self.reencode.items() if not isinstance(resampler, VoiceEdit)]

    def finish(self) -> None:
        """Flushes every encoder and closes the file (the caller renames it into place)."""
        self.encode(None)
        for index, last in self.held.items():
            # A copied sound's last packet is a whole frame; the input's container said where in it
            # the sound ends (an MP4's edit list): so says the output's.
            if last.pts is not None and last.duration:
                last.duration = max(1, min(last.duration, self.sound_ends[index] - last.pts))
            last = decoding_data_only(last)
            last.stream = self.copies[index]
            self._from_origin([last])
            self.container.mux(self._in_time_order([last]))
        for index, (stream, resampler) in self.reencode.items():
            for resampled in self.cuts[index].drain(resampler):
                self._mux_sound(index, stream.encode(resampled))
            self._mux_sound(index, stream.encode(None))
        self.container.close()


# How much of a copied sound's packets before its start is kept: the decoder's pre-roll, which it
# decodes and drops (an encoder's priming, 1024 or 2112 samples of AAC; the packet before the one
# an edit list's cut falls in, whose samples that one overlaps; an MP3 frame's bit reservoir).
SOUND_PREROLL_S = 0.05

# A packet of no data is an encoder's last word, side data alone (FLAC's final STREAMINFO: its
# checksum and length, which Matroska and MP4 write into the header, and no decoder needs): AVI
# refused it, after all the work, and NUT wrote it as a packet no decoder reads.
SIDE_DATA_ALONE_REFUSED = {"avi", "nut"}


def _on_sample_clock(frame: av.AudioFrame) -> None:
    """The frame timed in samples (time base 1/its rate), at the same time: an AVI times MP3 and
    AC-3 one tick a frame, and an encoder of another frame size (AAC's 1,024 samples) timed its
    packets from those ticks, two alike, which the muxer refused after all the work."""
    if frame.pts is not None and frame.time_base:
        frame.pts = round(frame.pts * frame.time_base * frame.sample_rate)
        frame.time_base = Fraction(1, frame.sample_rate)


def _decodes(packet: av.Packet) -> bool:
    """Whether the packet's own stream's decoder reads it (in stream order, as the decoder needs)."""
    try:
        packet.decode()
    except av.error.FFmpegError:
        return False
    return True


def open_output(path: Path, suffix: str, source: av.container.InputContainer,
                video: av.video.stream.VideoStream, rotation: int, encoding: Encoding,
                voice: VoicePlan = VoicePlan(), light: tuple[str, ...] = (), salvage: bool = False,
                sound: bool = True, fields: int | None = None) -> Output:
    """The output file's container and streams (without `sound`, no sound stream: to tell
    whether a refusal is the sound's). `light`: the first frame's HDR10 levels (`hdr10_levels`),
    written into an H.265 stream; `fields`: its field order (`field_order`), else the stream's."""
    fmt = CONTAINER_FORMATS.get(suffix.lower())
    # MP4/MOV: index at the front, so the file plays while it downloads.
    options = NAMELESS_MUXING | ({"movflags": "+faststart"} if fmt in ("mp4", "mov") else {})
    try:
        out = open_local(path, "w", format=fmt, container_options=options)
    except (av.error.FFmpegError, ValueError) as error:
        named = f"as {suffix}" if suffix else "in a file without a suffix"
        why = reason(error) if isinstance(error, av.error.FFmpegError) else error
        raise VideoError(f"cannot write a video {named} ({why}): choose .mp4, .mkv or .mov") from None
    try:
        if round(rotation) % 360 and out.format.name not in ROTATION_STATED:
            raise VideoError(f"a {suffix or 'suffix-less'} file cannot state this video's rotation ({round(rotation) % 360}"
                             " degrees, as a phone records on its side): players would show it turned; choose .mp4, "
                             ".mkv or .mov")
        stream = _add_video(out, video, rotation, encoding, light,
                            video.codec_context.field_order if fields is None else fields)
        copies, reencode = _add_audio(out, source, voice, salvage) if sound else ({}, {})
        rewritten: dict[int, Callable[[av.Packet], av.Packet | None]] = {}
        for index in copies:  # MP3 sound: each packet no more than its frame (`mpeg_audio_frame_only`)
            if source.streams[index].codec_context.codec.canonical_name in MPEG_AUDIO:
                rewritten[index] = mpeg_audio_frame_only
        for sub in subtitles_copied(source, encoding):
            copies[sub.index] = out.add_stream_from_template(sub)
            keep_track_choice(sub, copies[sub.index])  # a forced track is shown without being chosen
            if sub.codec_context.name in SHOWN_ONLY:
                header, rewritten[sub.index] = SHOWN_ONLY[sub.codec_context.name](sub.codec_context.extradata or b"")
                if sub.codec_context.extradata:
                    copies[sub.index].codec_context.extradata = header
        sei_stripper = BitStreamFilterContext(X264_WITHOUT_SEI, stream) if stream.codec_context.name == "libx264" else None
        cuts = {index: LastFrameCut(source, source.streams[index]) for index in reencode}
        ends = {index: end for index in copies if (end := exact_sound_end(source, source.streams[index])) is not None}
        return Output(out, stream, copies, reencode, sei_stripper, rewritten=rewritten, cuts=cuts, sound_ends=ends,
                      salvage=salvage, fields=FieldOrder.of(stream), video_written_as=written_as(stream),
                      origin=clock_origin(source, [video.index, *copies, *reencode]))
    except Exception:
        out.close()
        raise


def clock_origin(source: av.container.InputContainer, written: list[int]) -> Fraction:
    """Where the clock of the picture and sound written starts (s): the earliest of their starts,
    or the file's; never before zero (a start before it is an encoder's priming, an edit list's
    cut, which the output keeps as it is). Not a subtitle's: an MP4's timed text starts with an
    empty cue at zero, whatever the clock."""
    starts = [Fraction(s.start_time) * s.time_base for s in (source.streams[i] for i in written)
              if s.type in ("video", "audio") and s.start_time is not None and s.time_base]
    if not starts and source.start_time is not None:
        starts = [Fraction(source.start_time, av.time_base)]
    return max(Fraction(0), min(starts, default=Fraction(0)))


def written_as(stream: av.video.stream.VideoStream) -> dict[str, Any]:
    """The codec, CRF and preset of a video stream `_add_video` made, before it opens (the encoder
    takes its options then): the encoding settings asked for leave out (None) what veil chose."""
    return {"codec": CODEC_OPTIONS.get(stream.codec_context.name, stream.codec_context.name),
            "crf": int(stream.options["crf"]), "preset": stream.options.get("preset")}


def field_order(stream: av.video.stream.VideoStream, first: av.VideoFrame) -> int:
    """The stream's field order (AVFieldOrder), or where it states none and its frames are
    interlaced standard-definition DV, bottom field first, as the DV standard has it: DV's readers
    (a camcorder's .dv, DV in .avi) leave it unknown, and the output was coded progressive."""
    order = stream.codec_context.field_order
    if (order in TOP_FIELD_FIRST + BOTTOM_FIELD_FIRST or not first.interlaced_frame
            or stream.codec_context.name != "dvvideo" or first.height > 576):
        return order
    return BOTTOM_FIELD_FIRST[0]


def _add_video(out: av.container.OutputContainer, video: av.video.stream.VideoStream, rotation: int,
               encoding: Encoding, light: tuple[str, ...], fields: int) -> av.video.stream.VideoStream:
    cc = video.codec_context
    if cc.format is None or not cc.width or not cc.height:
        # A recorder stopped before its first frame leaves a track with no frame at all.
        raise VideoError("the video stream holds no frame that can be read (its size or pixel format is unknown): "
                         "the file is empty, damaged or truncated")
    depth = bit_depth(video)
    # The codec's own name, not its decoder's (AV1 is decoded by libdav1d): an AV1 WebM stays AV1.
    encoder = choose_encoder(out.format.name, cc.codec.canonical_name, depth, encoding)
    ratio = video.sample_aspect_ratio
    if ratio and ratio != 1 and encoder in SHAPE_UNSTATED_IN_MATROSKA and out.format.name in ("matroska", "webm"):
        # Written, its pixels came out square: the picture squeezed or stretched, unsaid.
        raise VideoError(f"veil cannot yet state this video's pixel shape ({ratio.numerator}:{ratio.denominator}, "
                         f"an anamorphic recording's) in {encoder} in a {out.format.name.capitalize()} file: players "
                         "would show it squeezed; choose .mp4 or .mov")
    stream = out.add_stream(encoder, rate=frame_rate(video))
    if encoder == "libx265" and out.format.name in ISO_MEDIA:
        # FFmpeg tags H.265 there 'hev1', which Apple's players (QuickTime, iPhones, Safari)
        # refuse to play; 'hvc1', as phones and cameras write it, plays everywhere.
        stream.codec_context.codec_tag = "hvc1"
    stream.width, stream.height = cc.width, cc.height
    stream.pix_fmt = output_pix_fmt(encoder, cc.format.name, depth, cc.width, cc.height)
    # The input's time base, so every frame keeps its exact timestamp (VFR included).
    stream.time_base = video.time_base
    stream.codec_context.time_base = video.time_base
    if video.sample_aspect_ratio:
        stream.sample_aspect_ratio = video.sample_aspect_ratio
    for tag in ("color_range", "color_primaries", "color_trc", "colorspace"):
        setattr(stream.codec_context, tag, getattr(cc, tag))
    stream.codec_context.field_order = fields
    if (cc.colorspace == RGB_MATRIX or cc.format.has_palette) and not av.VideoFormat(stream.pix_fmt).is_rgb:
        # RGB pictures (PNG or QuickTime animation in a .mov), or a palette's colours, encoded as
        # YUV: the tag must name the matrix and range the conversion used, or decoders would read
        # the Y, U and V planes as G, B and R (or guess BT.709 for a large picture). PyAV converts
        # with BT.601, to full range where the frames say they are full range (PNG's do), else to limited.
        stream.codec_context.colorspace = BT601_MATRIX
        stream.codec_context.color_range = FULL_RANGE if cc.color_range == FULL_RANGE else LIMITED_RANGE
    crf = encoding.crf if encoding.crf is not None else default_crf(encoder)
    if encoder in ("libx264", "libx265") and crf > X26X_CRF_MAX:
        raise VideoError(f"{encoding.given_as('crf')} is beyond {'H.264' if encoder == 'libx264' else 'H.265'}'s "
                         f"scale (0-51){': --crf overrides it' if 'crf' in encoding.from_plan else ''}")
    if encoding.preset and encoder not in PRESETS:
        advice = "--codec h264 or h265 overrides the codec" if "preset" in encoding.from_plan else \
            "leave --preset out or choose --codec h264"
        raise VideoError(f"{encoding.given_as('preset')} is for H.264 and H.265 only, and this video would be "
                         f"written as {CODEC_NAMES.get(encoder, encoder)}: {advice}")
    options = {"crf": str(crf)}
    if encoder in PRESETS:
        options["preset"] = encoding.preset or PRESETS[encoder]
    if encoder in ("libx264", "libx265"):
        # FFmpeg's decoders attach closed captions (A53, which may hold names or a
        # transcript) to the frames, and these encoders write them back by default.
        options["a53cc"] = "0"
    if encoder in ("libx264", "libx265") and out.format.name not in B_FRAME_CONTAINERS:
        # AVI stores no presentation times, and ASF (WMV) its own that readers take out of
        # order: reordered B-frames would play out of order, or late against the copied sound.
        # FLV, NUT, MPEG-PS, ISMV and F4V store no decoding time before zero: the B-frames', which
        # start before the first picture, made their muxers push the video (and in most, the
        # sound) later by that much.
        options["bf"] = "0"
    if encoder == "libx264" and fields in TOP_FIELD_FIRST + BOTTOM_FIELD_FIRST:
        # Interlaced footage (broadcast, camcorders) stays interlaced: coded as one picture, its
        # two fields would blur into each other, and players would no longer deinterlace it.
        options["flags"] = "+ildct+ilme"
        options["x264-params"] = "interlaced=1:" + ("tff=1" if fields in TOP_FIELD_FIRST else "bff=1")
        # (FieldOrder tells each frame the order too: x264 takes it from the frame, not the options.)
    if encoder == "libx265":
        # info=0: no SEI with its version, build and settings.
        options["x265-params"] = ":".join(("log-level=error", "info=0", *light))
    if encoder == "libvpx-vp9":
        options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
    if encoder == "libvpx":  # VP8's CRF caps a target bitrate: set one high enough for the CRF to rule
        options.update({"b": "20M", "deadline": "good", "cpu-used": "4"})
    stream.options = options
    if rotation:
        stream.set_display_rotation(rotation)
    keep_track_choice(video, stream)
    return stream


def sound_it_cannot_decode(source: av.container.InputContainer) -> str | None:
    """Why a file's sound cannot be written (a track whose codec FFmpeg does not know), or None."""
    for audio in source.streams.audio:
        if audio.codec_context is None:
            return f"audio stream {audio.index} has a codec FFmpeg cannot handle"
    return None


# Containers that write PCM's channels by their places (ISO 23003-5's chnl box): a bare count
# no layout names (twelve from a WAV) failed their trailer, after all the work.
CHANNELS_BY_PLACE = {"mp4", "ismv"}


def _add_audio(out: av.container.OutputContainer, source: av.container.InputContainer, voice: VoicePlan,
               salvage: bool = False):
    """The output's sound streams: each copied, or encoded again where its voices change or the
    container cannot hold it. A damaged file's sound (`salvage`) is encoded again under any
    voice mode but keep, even with no speech in it: pieces that cannot be decoded are written as
    silence in time with the picture, where a copy would leave them out."""
    copies: dict[int, av.stream.Stream] = {}
    reencode: dict[int, tuple[av.audio.stream.AudioStream, Converter | VoiceEdit]] = {}
    if undecodable := sound_it_cannot_decode(source):
        raise VideoError(undecodable)
    for audio in source.streams.audio:
        cc = audio.codec_context
        if out.format.name in CHANNELS_BY_PLACE and cc.name.startswith("pcm_") and \
                output_layout(cc.layout) == f"{cc.layout.nb_channels} channels":
            # Said as the container's refusal (a ValueError, as PyAV's own), before the work.
            raise ValueError(f"MP4 names PCM's channels by their places, and {cc.layout.nb_channels} channels "
                             "without places have none")
        if voice.changes_sound or (voice.edits and salvage):
            reencode[audio.index] = add_edited_stream(out, audio, voice)
            continue
        # By the codec's name too: FFmpeg's MP3 decoder is "mp3float", and MPEG-TS lists "mp3" only.
        if {cc.name, cc.codec.canonical_name} & container_codecs(out) \
                and rate_stated(out, cc.codec.canonical_name, cc.sample_rate):
            copies[audio.index] = out.add_stream_from_template(audio)
            # A bare channel count (PCM from a WAV-made file) fails MP4's trailer, after all the
            # work: named as mono or stereo, the same packets are written.
            if (layout := output_layout(cc.layout)) != cc.layout.name:
                copies[audio.index].codec_context.layout = layout
            if cc.name == "vorbis" and cc.extradata:
                # Vorbis keeps its tags (artist, place, e-mail) in a header of the stream's own.
                copies[audio.index].codec_context.extradata = without_vorbis_comments(cc.extradata)
            continue
        # The container cannot hold this codec (PCM in WebM, AAC in MPEG-PS, say): re-encode it.
        stream = add_encoded_stream(out, audio)
        # (Converter: an av.AudioResampler refuses a frame whose rate, format or layout changed mid-stream.)
        reencode[audio.index] = (stream, Converter(format=stream.format.name, rate=stream.rate, layout=stream.layout.name))
    for index, stream in [*copies.items(), *((index, stream) for index, (stream, _) in reencode.items())]:
        keep_track_choice(source.streams[index], stream)
    return copies, reencode


# A language as ISO 639-2 (Matroska's "eng") or a BCP 47 tag of a language, a script and a region
# ("en", "pt-BR", "zh-Hant-TW"), in their own casing: a name written as a tag ("Tom-Hanks") is not
# one. A variant ("sl-rozaj") is not kept either: any lowercase word of five to eight letters has
# its form ("ana-petrenko", "uk-bucha-irpin"), and players choose a track by language and region.
TRACK_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|[0-9]{3}))?")


def keep_track_choice(source: av.stream.Stream, stream: av.stream.Stream) -> None:
    """What a player chooses a track by: its language and whether it is the default (or forced).
    Its title is not kept (it may name a person, as "Interview with ..."), nor a "language" that
    is no language tag (Matroska takes any text there: a name, a place)."""
    if (language := source.metadata.get("language")) and TRACK_LANGUAGE.fullmatch(language):
        stream.metadata["language"] = language
    with contextlib.suppress(AttributeError):  # a PyAV without dispositions: left as the muxer sets them
        stream.disposition = source.disposition


# What an ASS/SSA subtitle header keeps: the lines that shape how the subtitles look. Its
# author, title and editor's notes (Aegisub's names the source files, with their folders) go,
# and so do embedded fonts and pictures.
ASS_SECTIONS = ("[script info]", "[v4+ styles]", "[v4 styles]", "[events]")
ASS_STYLE_SECTIONS = ("[v4+ styles]", "[v4 styles]")
ASS_DISPLAY_KEYS = ("scripttype", "playresx", "playresy", "wrapstyle", "scaledborderandshadow", "ycbcr matrix",
                    "layoutresx", "layoutresy", "collisions", "timer", "format", "style")
# The style players fall back on (for a line whose style the header lacks): its name stays.
ASS_DEFAULT_STYLE = "default"


def ass_as_shown(extradata: bytes) -> tuple[bytes, Callable[[av.Packet], av.Packet]]:
    """An ASS/SSA stream's header as shown (`_ass_header_for_display`), and the rewriting of its
    events without what players do not show, their styles named as in that header."""
    header, renamed = _ass_header_for_display(extradata)
    return header, functools.partial(_ass_event_as_shown, renamed)


def _ass_header_for_display(extradata: bytes) -> tuple[bytes, dict[str, str]]:
    """An ASS/SSA stream's header with only what its display needs (ASS_DISPLAY_KEYS), its styles
    renamed Style1, Style2, ... (a style is often named after the speaker whose lines it shows;
    "Default" stays), and the new name of each style's old one."""
    kept: list[str] = []
    renamed: dict[str, str] = {}
    section, name_at = "", 0
    for line in extradata.decode("utf-8", "replace").splitlines():
        if line.startswith("["):
            section = line.strip().lower()
            if section in ASS_SECTIONS:
                kept += ["", line.strip()] if kept else [line.strip()]
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if section not in ASS_SECTIONS or key not in ASS_DISPLAY_KEYS:
            continue
        if key == "format" and section in ASS_STYLE_SECTIONS:  # the order of a style's fields
            columns = [column.strip().lower() for column in value.split(",")]
            name_at = columns.index("name") if "name" in columns else 0
        elif key == "style":
            fields = value.lstrip().split(",")
            if name_at < len(fields) and _ass_style_name(fields[name_at]).lower() != ASS_DEFAULT_STYLE:
                fields[name_at] = renamed.setdefault(_ass_style_name(fields[name_at]), f"Style{len(renamed) + 1}")
            line = f"{line.partition(':')[0]}: {','.join(fields)}"
        kept.append(line)
    return ("\n".join(kept) + "\n").encode(), renamed


def _ass_style_name(name: str) -> str:
    """A style's name as players match it: without the white space around it or asterisks before it."""
    return name.strip().lstrip("*")


# Effects that change how an ASS/SSA line is shown; any other Effect text is a note players ignore.
ASS_EFFECTS = (b"karaoke", b"scroll up", b"scroll down", b"banner")
# A {...} block without a \ override in it: a comment (a translator's note, the original line).
ASS_COMMENT = re.compile(rb"\{[^}\\]*\}")
# An override block, and a \r in it: back to the style named after it (up to the next override),
# or to the line's own.
ASS_OVERRIDES = re.compile(rb"\{[^}]*\}")
ASS_RESET = re.compile(rb"\\r([^\\}]*)")


def _ass_event_as_shown(renamed: dict[str, str], packet: av.Packet) -> av.Packet:
    """An ASS/SSA event as FFmpeg carries it (ReadOrder, Layer, Style, Name, MarginL, MarginR,
    MarginV, Effect, Text) without what players do not show: its Name (the speaker, or whoever the
    editor noted), an Effect that is no effect, and comments in its text; the styles it names
    (its own, those its \\r overrides switch to) `renamed` as in the header."""
    fields = bytes(packet).split(b",", 8)
    if len(fields) < 9:
        return packet
    fields[2] = _ass_style_renamed(fields[2], renamed, b"Default")
    fields[3] = b""
    if not fields[7].strip().lower().startswith(ASS_EFFECTS):
        fields[7] = b""

    def reset_renamed(reset: re.Match[bytes]) -> bytes:
        return b"\\r" + _ass_style_renamed(reset[1], renamed, b"")

    fields[8] = ASS_OVERRIDES.sub(lambda block: ASS_RESET.sub(reset_renamed, block[0]), ASS_COMMENT.sub(b"", fields[8]))
    return _timed_like(av.Packet(b",".join(fields)), packet)


def _ass_style_renamed(name: bytes, renamed: dict[str, str], unknown: bytes) -> bytes:
    """A style an event names, as the header renamed it; one the header lacks (a name all the same)
    becomes `unknown`, which players show as they showed it: in the default style, or the line's own."""
    style = _ass_style_name(name.decode("utf-8", "replace"))
    if not style or style.lower() == ASS_DEFAULT_STYLE:
        return name
    return renamed[style].encode() if style in renamed else unknown


# A WebVTT cue text's tag as WebVTT's parser reads it: </ for an end tag, its name, its classes
# (<c.olena>), its annotation (<v Olena Petrenko>, <lang en>), and > or the cue's end.
WEBVTT_TAG = re.compile(rb"<(/?)([^\s.>]*)((?:\.[^\s.>]*)*)\s*([^>]*)(?:>|\Z)")
# The tags kept, without their classes (only STYLE blocks, which are not kept, select by them).
# Voice spans go: their annotation is the speaker's name, which players may show.
WEBVTT_KEPT_TAGS = (b"c", b"i", b"b", b"u", b"ruby", b"rt", b"lang")
WEBVTT_TIMESTAMP = re.compile(rb"(?:\d+:)?\d{2}:\d{2}\.\d{3}")
LANGUAGE_TAG = re.compile(rb"[A-Za-z0-9-]+")
PERCENT = rb"\d+(?:\.\d+)?%"
# A cue's settings that place it, by the values WebVTT's parser takes (any other text after the
# cue's times is passed on by FFmpeg all the same); its region is renamed as in the header.
WEBVTT_CUE_SETTINGS = {
    b"vertical": re.compile(rb"rl|lr"),
    b"line": re.compile(rb"-?\d+(?:\.\d+)?%?(?:,(?:start|center|end))?"),
    b"position": re.compile(PERCENT + rb"(?:,(?:line-left|center|line-right|start|middle|end))?"),
    b"size": re.compile(PERCENT),
    b"align": re.compile(rb"start|center|middle|end|left|right"),
}
# A REGION block's settings that shape it; its identifier is renamed (region1, ...).
WEBVTT_REGION_SETTINGS = {
    b"width": re.compile(PERCENT),
    b"lines": re.compile(rb"\d+"),
    b"regionanchor": re.compile(PERCENT + b"," + PERCENT),
    b"viewportanchor": re.compile(PERCENT + b"," + PERCENT),
    b"scroll": re.compile(rb"up"),
}
WEBVTT_SETTINGS_TYPE = packet_sidedata_type_from_literal("webvtt_settings")


def webvtt_as_shown(header: bytes) -> tuple[bytes, Callable[[av.Packet], av.Packet]]:
    """A WebVTT stream's header as shown (`_webvtt_header_for_display`), and the rewriting of its
    cues without what players do not show, their regions named as in that header."""
    kept, regions = _webvtt_header_for_display(header)
    return kept, functools.partial(_webvtt_cue_as_shown, regions)


def _webvtt_header_for_display(header: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """A WebVTT stream's header (the text before the first cue, as Matroska keeps it) with only what
    places cues: "WEBVTT" without its title, and REGION blocks, renamed region1, region2, ...
    (an identifier can name a speaker: "olena_left"). The title and NOTE blocks (who was
    interviewed, where) go, and so do STYLE blocks, which can name speakers (::cue(v[voice=...])):
    cues keep their text and places, not their colours. Also the new identifier of each region's
    old one."""
    regions: dict[bytes, bytes] = {}
    blocks = re.split(rb"(?:\r?\n){2,}", header.strip())
    kept = [_webvtt_region(block, regions) for block in blocks[1:] if block.startswith(b"REGION")]
    return b"\n\n".join([b"WEBVTT", *filter(None, kept)]) + b"\n", regions


def _webvtt_region(block: bytes, regions: dict[bytes, bytes]) -> bytes | None:
    """A REGION block with only the settings that shape it, its identifier renamed (a new one
    added to `regions`); None without an identifier (no cue can be placed in it)."""
    kept, identifier = [], None
    for setting in block.split()[1:]:
        name, _, value = setting.partition(b":")
        if name == b"id" and value:
            identifier = regions.setdefault(value, b"region%d" % (len(regions) + 1))
        elif name in WEBVTT_REGION_SETTINGS and WEBVTT_REGION_SETTINGS[name].fullmatch(value):
            kept.append(setting)
    return b"REGION\n" + b" ".join([b"id:" + identifier, *kept]) if identifier else None


def _webvtt_cue_as_shown(regions: dict[bytes, bytes], packet: av.Packet) -> av.Packet:
    """A WebVTT cue as FFmpeg carries it (its text; its identifier and settings beside it) without
    the speakers' names of its voice spans, its tags' classes and unknown tags, its identifier (a
    label: "olena-1") and whatever follows its times that is not a setting that places it."""
    cue = _timed_like(av.Packet(WEBVTT_TAG.sub(_webvtt_tag, bytes(packet))), packet)
    if packet.has_sidedata("webvtt_settings"):
        if settings := _webvtt_settings(bytes(packet.get_sidedata("webvtt_settings")), regions):
            side_data = PacketSideData(WEBVTT_SETTINGS_TYPE, len(settings))
            side_data.update(settings)
            cue.set_sidedata(side_data)
    return cue


def _webvtt_tag(tag: re.Match[bytes]) -> bytes:
    """A cue text's tag as kept: a timestamp as it is, a known tag without classes or annotation
    (a language's aside), nothing of a voice span's or an unknown one's."""
    end, name, classes, annotation = tag.groups()
    if not end and not annotation and WEBVTT_TIMESTAMP.fullmatch(name + classes):
        return b"<" + name + classes + b">"
    if name not in WEBVTT_KEPT_TAGS:
        return b""
    if end:
        return b"</" + name + b">" if not classes and not annotation else b""
    language = annotation.strip()
    return b"<" + name + (b" " + language if name == b"lang" and LANGUAGE_TAG.fullmatch(language) else b"") + b">"


def _webvtt_settings(settings: bytes, regions: dict[bytes, bytes]) -> bytes:
    """A cue's settings that place it (WEBVTT_CUE_SETTINGS), its region renamed as in the header;
    a region the header lacks goes (players place the cue in none)."""
    kept = []
    for setting in settings.split():
        name, _, value = setting.partition(b":")
        if name == b"region" and value in regions:
            kept.append(b"region:" + regions[value])
        elif name in WEBVTT_CUE_SETTINGS and WEBVTT_CUE_SETTINGS[name].fullmatch(value):
            kept.append(setting)
    return b" ".join(kept)


# MPEG audio (MP1, MP2, MP3): bit rates (kb/s) by version (1; 2 and 2.5) and layer (I, II, III),
# and sample rates by version, as a frame's header indexes them.
MPEG_AUDIO = {"mp1", "mp2", "mp3"}
_MPEG_BIT_RATES = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


def mpeg_audio_frame_length(header: bytes) -> int | None:
    """The bytes of the MPEG audio frame a 4-byte header starts; 0 for a free-format frame, whose
    length only the next frame's sync tells; None where `header` starts no frame."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version_bits, layer_bits = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    rate_index, sample_index, padding = header[2] >> 4, (header[2] >> 2) & 3, (header[2] >> 1) & 1
    if version_bits == 1 or layer_bits == 0 or rate_index == 15 or sample_index == 3:
        return None
    if rate_index == 0:
        return 0
    layer = 4 - layer_bits
    bit_rate = _MPEG_BIT_RATES[(1 if version_bits == 3 else 2, layer)][rate_index] * 1000
    sample_rate = _MPEG_SAMPLE_RATES[version_bits][sample_index]
    if layer == 1:
        return (12 * bit_rate // sample_rate + padding) * 4
    return (72 if layer == 3 and version_bits != 3 else 144) * bit_rate // sample_rate + padding


def mpeg_audio_frame_only(packet: av.Packet) -> av.Packet | None:
    """An MP3 (MP2, MP1) packet as the whole frames it should hold (one, or several where a muxer
    put several in a sample). A demuxer joins to a frame whatever lies between it and the next
    frame's sync: in a recording made by joining two, the first one's ID3v1 tag and the second
    one's ID3v2 tag (a name, a place, a cover photo of a face), which the decoder passes over unsaid
    and a copy of the sound would publish byte for byte. Kept: the run of whole frames the packet
    starts with, and after ID3 tags (read by their own lengths, never searched for a frame sync,
    which a cover picture's bytes can hold) the run of frames that ends the packet. Anything else is
    cut off; a packet left with nothing is left out (None)."""
    data = bytes(packet)
    if mpeg_audio_frame_length(data[:4]) == 0:
        return packet  # a free-format frame: its length is unknown
    if (head := _frames_end(data, 0)) == len(data):
        return packet
    after_tags = _id3_tags_end(data, head)
    tail = data[after_tags:] if after_tags > head and _frames_end(data, after_tags) == len(data) else b""
    kept = data[:head] + tail
    return _timed_like(av.Packet(kept), packet) if kept else None


def _id3_tags_end(data: bytes, at: int) -> int:
    """Past the ID3 tags that lie one after another from `at` (v1: 128 bytes; v2: its header, the
    size it states, its footer), where each fits in `data`; `at` where none starts there."""
    while True:
        if data.startswith(b"TAG", at) and at + 128 <= len(data):
            at += 128
        elif (length := id3v2_length(data, at)) is not None:
            if at + length > len(data):
                return at
            at += length
        else:
            return at


def id3v2_length(data: bytes, at: int = 0) -> int | None:
    """The bytes of the ID3v2 tag that starts at `at` in `data` (its header, the size it states, its
    footer); None where none starts there."""
    if not (data.startswith(b"ID3", at) and at + 10 <= len(data) and all(b < 128 for b in data[at + 6:at + 10])):
        return None
    size = sum(b << (7 * (3 - n)) for n, b in enumerate(data[at + 6:at + 10]))  # 7 bits a byte
    return 10 + size + (10 if data[at + 5] & 0x10 else 0)


def _frames_end(data: bytes, start: int) -> int:
    """Where the run of whole MPEG audio frames from `start` ends (`start`, where none starts there)."""
    at = start
    while (length := mpeg_audio_frame_length(data[at:at + 4])) and at + length <= len(data):
        at += length
    return at


# The side data a copied packet keeps: what decoding it needs. Any other can carry anything no
# player shows (a Matroska block's additional data, chained metadata strings), copied unseen.
DECODING_SIDE_DATA = {"skip_samples", "new_extradata", "param_change",
                      "webvtt_settings"}  # (a cue's placement: `webvtt_as_shown` keeps it so)


def decoding_data_only(packet: av.Packet) -> av.Packet:
    """The packet with no side data but what decoding it needs (`DECODING_SIDE_DATA`)."""
    sides = list(packet.iter_sidedata())
    if all(side.data_type in DECODING_SIDE_DATA for side in sides):
        return packet
    bare = _timed_like(av.Packet(bytes(packet)), packet)
    bare.is_keyframe = packet.is_keyframe
    for side in sides:
        if side.data_type in DECODING_SIDE_DATA:
            bare.set_sidedata(side)
    return bare


def _timed_like(packet: av.Packet, original: av.Packet) -> av.Packet:
    packet.pts, packet.dts, packet.duration, packet.time_base = (original.pts, original.dts, original.duration,
                                                                 original.time_base)
    return packet


def without_header(extradata: bytes) -> tuple[bytes, Callable[[av.Packet], av.Packet]]:
    """SubRip has no header: one a file carries (Matroska's CodecPrivate) holds only what someone
    put there, a name or a folder. Its cues stay as they are."""
    return b"", lambda packet: packet


# The boxes after a 3GPP timed text (mov_text) cue's text that players read: its styles,
# highlights and wrapping. Any other (a hyperlink's address, a box of a writer's own) is shown by
# none and may hold anything.
MOV_TEXT_SHOWN_BOXES = {b"styl", b"hlit", b"hclr", b"twrp", b"krok", b"dlay", b"blnk"}


def mov_text_as_shown(extradata: bytes) -> tuple[bytes, Callable[[av.Packet], av.Packet]]:
    """A 3GPP timed text stream (MP4's own subtitles): its header (styles and fonts) kept, each
    cue cut to its text and the boxes players read (`MOV_TEXT_SHOWN_BOXES`), 3GPP TS 26.245."""

    def as_shown(packet: av.Packet) -> av.Packet:
        data = bytes(packet)
        at = 2 + int.from_bytes(data[:2], "big")  # the text's length, then the text
        kept = [data[:at]]
        while at + 8 <= len(data):
            size = int.from_bytes(data[at:at + 4], "big")
            if size < 8:
                break
            if data[at + 4:at + 8] in MOV_TEXT_SHOWN_BOXES:
                kept.append(data[at:at + size])
            at += size
        shown = b"".join(kept)
        return packet if shown == data else _timed_like(av.Packet(shown), packet)

    return extradata, as_shown


# The subtitle formats that hold what players do not show (a speaker's name, an editor's note), by
# codec: from the stream's header, the header kept and the rewriting of each packet to match it.
SHOWN_ONLY: dict[str, Callable[[bytes], tuple[bytes, Callable[[av.Packet], av.Packet]]]] = {
    "ass": ass_as_shown,
    "ssa": ass_as_shown,
    "webvtt": webvtt_as_shown,
    "subrip": without_header,
    "srt": without_header,
    "mov_text": mov_text_as_shown,
}


# A Vorbis comment header without vendor or comments (the framing bit ends it).
EMPTY_VORBIS_COMMENT = b"\x03vorbis" + bytes(8) + b"\x01"


def _vorbis_headers(extradata: bytes) -> list[bytes] | None:
    """Vorbis's three headers (identification, comment, setup), as FFmpeg keeps them (Xiph
    lacing, or each behind a 16-bit length); None where they cannot be read."""
    try:
        if extradata[0] == 2:  # Xiph lacing: the sizes of the first two, each a run of 255s and a rest
            at, sizes = 1, []
            for _ in range(2):
                size = 0
                while extradata[at] == 255:
                    size, at = size + 255, at + 1
                sizes.append(size + extradata[at])
                at += 1
            headers = [extradata[at:at + sizes[0]], extradata[at + sizes[0]:at + sum(sizes)], extradata[at + sum(sizes):]]
        else:
            headers, at = [], 0
            for _ in range(3):
                size = int.from_bytes(extradata[at:at + 2], "big")
                headers.append(extradata[at + 2:at + 2 + size])
                at += 2 + size
    except IndexError:
        return None
    return headers if [h[:7] for h in headers] == [b"\x01vorbis", b"\x03vorbis", b"\x05vorbis"] else None


def vorbis_comment_names(extradata: bytes) -> list[str]:
    """The names of a Vorbis stream's comments (ARTIST, LOCATION, a METADATA_BLOCK_PICTURE: a cover
    picture), never their values: FFmpeg's Matroska reader gives them as no tags."""
    headers = _vorbis_headers(extradata)
    if headers is None:
        return []
    comment, names = headers[1], []
    with contextlib.suppress(struct.error):
        at = 7 + 4 + struct.unpack_from("<I", comment, 7)[0]  # past the vendor's name
        for _ in range(struct.unpack_from("<I", comment, at)[0]):
            size = struct.unpack_from("<I", comment, at + 4)[0]
            names.append(comment[at + 8:at + 8 + size].split(b"=", 1)[0].decode("ascii", "replace"))
            at += 4 + size
    return names


def without_vorbis_comments(extradata: bytes) -> bytes:
    """Vorbis's three headers as FFmpeg keeps them (`_vorbis_headers`), with the comment header emptied."""
    headers = _vorbis_headers(extradata)
    if headers is None:
        raise VideoError("the Vorbis sound's headers cannot be read (its tags could not be removed): "
                         "use --voice mute or anonymise, which encode the sound again")
    identification, _, setup = headers

    def laced(size: int) -> bytes:
        return b"\xff" * (size // 255) + bytes([size % 255])

    return bytes([2]) + laced(len(identification)) + laced(len(EMPTY_VORBIS_COMMENT)) + identification + \
        EMPTY_VORBIS_COMMENT + setup


def advice_after_refusal(suffix: str, candidates: tuple[str, ...], holds: Callable[[str], bool]) -> str:
    """What to choose once a `suffix` file was refused: the candidates other than it whose files
    would hold the media (`holds` tries each, as the output would be written)."""
    others = [s for s in candidates if s != suffix.lower() and holds(s)]
    if not others:
        return "no format veil writes can hold it"
    return "choose " + (", ".join(others[:-1]) + " or " + others[-1] if len(others) > 1 else others[0])


def check_output_holds(source: Path, target: Path, encoding: Encoding, voice: VoicePlan = VoicePlan()) -> None:
    """Before any work: can a file named like `target` hold this video, re-encoded as veil would?

    Builds the output's streams and writes its header to a scratch file, so a `.jpg` for a
    video, or a codec the container refuses, fails in a second rather than after detection.
    """
    container = open_input(source)
    try:
        stream = video_stream(container)
        suffix = target.suffix
        rotation = first_rotation(container, stream)
        def refusal(suffix: str, sound: bool = True) -> str | None:
            return refusal_to_write(suffix, lambda path: open_output(
                path, suffix, container, stream, rotation, encoding, voice, sound=sound).container, VideoError)

        why = refusal(suffix)
        if why is not None:
            advice = advice_after_refusal(suffix, (".mp4", ".mkv", ".mov"), lambda other: refusal(other) is None)
            # Held without its sound: the sound is what it cannot hold, which "this video" hid.
            what = "this video" if refusal(suffix, sound=False) is not None else \
                f"this video's sound, {sound_described(container)}"
            raise VideoError(f"a {suffix or 'suffix-less'} file cannot hold {what} ({why}): {advice}")
    finally:
        container.close()


def first_rotation(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> float:
    """The display rotation of the video's first frame (degrees), decoded from `container`, which
    is read no further; 0 where it cannot be decoded (the render, which decodes it, meets it again)."""
    try:
        first = next(container.decode(video), None)
    except av.error.FFmpegError:
        first = None
    return first.rotation if first is not None else 0


def sound_described(container: av.container.InputContainer) -> str:
    """The sound streams' codecs and channels, as "ac3 in 5.1(side) and pcm_s16le in 12 channels"."""
    return " and ".join(f"{a.codec_context.name} in {output_layout(a.codec_context.layout)}"
                        for a in container.streams.audio)


def refusal_to_write(suffix: str, open_for: Callable[[Path], av.container.OutputContainer],
                     own: type[Exception]) -> str | None:
    """Why a `suffix` file cannot hold the media, or None: `open_for(path)` opens an output
    with its streams as veil would, and its header is written to a scratch file. Veil's `own`
    refusals (a codec asked for by name that the container cannot hold) pass through."""
    def scratch_failed(why: str) -> Exception:  # the scratch file's, not the format's: "a .flac file cannot hold..." misled
        return own(f"cannot check that a {suffix or 'suffix-less'} file can hold it: a scratch file in the temporary "
                   f"folder {shown(Path(tempfile.gettempdir()))} could not be made or written ({why})")

    try:
        with temporary_folder("veil-check-") as folder:
            try:
                out = open_for(Path(folder) / f"check{suffix}")
                try:
                    out.start_encoding()
                finally:
                    out.close()
            except own:
                raise
            except (av.error.FFmpegError, ValueError, TypeError) as error:
                if (number := getattr(error, "errno", None)) in NO_ROOM:
                    raise scratch_failed(os.strerror(number)) from None
                return _muxer_refusal(error)
    except OSError as error:
        raise scratch_failed(error.strerror or str(error)) from None
    return None


# The errors of a file that could not be written for want of room: space, quota, a size limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _muxer_refusal(error: Exception) -> str:
    """FFmpeg's words for a muxer's refusal. Some muxers (MXF, SWF) refuse streams they cannot hold
    with a bare -1, which is errno's EPERM: said as "Operation not permitted", it read as a
    permission problem, on a scratch file veil had made itself."""
    if getattr(error, "errno", None) == errno.EPERM:
        return "its muxer refuses these streams"
    return reason(error)
