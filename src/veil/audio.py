"""Audio files (WAV, FLAC, MP3, M4A/AAC, Ogg/Opus) in and out through PyAV.

A sound file's only identifying content veil handles is voices, so it is always re-encoded
with its voices muted or anonymised (veil.voice): there is no keep for it. The output is a
new container: tags (artist, title, comments, ID3 frames), cover pictures and chapters of
the input are not copied.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import av
import av.error

from veil.avopen import open_local
from veil.outputs import atomic_output
from veil.photo import check_as_planned, file_sha256, still_as_planned
from veil.plan import MediaPlan, RenderSettings
from veil.speech import SoundError, speech_regions
from veil.fferror import reason
from veil.videofile import (NAMELESS_MUXING, advice_after_refusal, never_written, refusal_to_write,
                            sound_it_cannot_decode)
from veil.voice import (LastFrameCut, VoiceEdit, VoicePlan, add_edited_stream, channels_read_back, media_voice_plan,
                        sound_written_as)

# Output container per suffix.
AUDIO_FORMATS = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".m4a": "ipod", ".aac": "adts", ".ogg": "ogg",
                 ".oga": "ogg", ".opus": "opus",
                 ".mka": "matroska"}
KEEP_REFUSED = ("an audio file's voices are all veil can protect, so --voice keep would copy it unprotected: "
                "use --voice mute, mute-all or anonymise")


def plan_audio(source: Path, sha256: str | None = None) -> MediaPlan:
    regions, record = speech_regions(source)
    container = _open(source)
    try:
        extras = left_out_of_sound(container)
    finally:
        container.close()
    return MediaPlan(path=str(Path(source).absolute()), kind="audio", width=0, height=0, frame_count=0,
                     sha256=sha256 or file_sha256(source), regions=regions,
                     detection={"speech": record, "stream": extras})


def left_out_of_sound(container: av.container.InputContainer) -> dict[str, int | list[str]]:
    """What a sound file holds that its output never does, for the plan and the user's notes: what
    `never_written` counts (cover pictures), and its subtitle streams (lyrics, captions), which a
    sound file is written without, --keep-subtitles or not."""
    return {**never_written(container), "subtitle_streams_not_written": len(container.streams.subtitles)}


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = open_local(path)
    except (av.error.FFmpegError, OSError) as error:
        raise SoundError(f"cannot open the sound: {reason(error)}") from None
    if not container.streams.audio:
        container.close()
        raise SoundError("no audio stream in the file")
    return container


def _open_output(path: Path, suffix: str, source: av.container.InputContainer,
                 voice: VoicePlan) -> tuple[av.container.OutputContainer, dict[int, tuple[av.audio.stream.AudioStream, VoiceEdit]]]:
    try:
        out = open_local(path, "w", format=AUDIO_FORMATS.get(suffix.lower()), container_options=NAMELESS_MUXING)
    except (av.error.FFmpegError, ValueError) as error:
        raise SoundError(f"cannot write a {suffix or 'suffix-less'} file: {reason(error)}") from None
    try:
        return out, {a.index: add_edited_stream(out, a, voice, from_zero=True) for a in source.streams.audio}
    except Exception:
        out.close()
        raise


def check_audio_output(source: Path, target: Path, voice: VoicePlan) -> None:
    """Before any work: can a file named like `target` hold this sound, re-encoded as veil would?"""
    if not voice.edits:
        raise SoundError(KEEP_REFUSED)
    suffix = target.suffix
    if suffix.lower() not in AUDIO_FORMATS:
        raise SoundError(f"cannot write sound as {suffix or 'a file without a suffix'}: use one of "
                         f"{', '.join(sorted(AUDIO_FORMATS))}")
    container = _open(source)
    try:
        def refusal(suffix: str) -> str | None:
            return refusal_to_write(suffix, lambda path: _open_output(path, suffix, container, voice)[0], SoundError)

        if undecodable := sound_it_cannot_decode(container):
            raise SoundError(undecodable)
        channels = max(a.codec_context.layout.nb_channels for a in container.streams.audio)
        # FFmpeg's MP3 encoder refuses more than two channels with only "Invalid argument".
        reason = (f"MP3 holds at most two channels, and it has {channels}" if suffix.lower() == ".mp3" and channels > 2
                  else refusal(suffix))
        if reason is None:
            return
        advice = advice_after_refusal(suffix, (".m4a", ".flac", ".wav"), lambda other: refusal(other) is None)
        raise SoundError(f"a {suffix} file cannot hold this sound ({reason}): {advice}")
    finally:
        container.close()


def render_audio(media: MediaPlan, settings: RenderSettings, target: Path, overwrite: bool = True,
                 hash_checked: bool = False) -> str | None:
    """Write the sound with its voices treated to `target`, atomically; the SHA-256 of what was written."""
    if not hash_checked:
        check_as_planned(media)
    voice = media_voice_plan(media, settings.voice)
    if not voice.edits:
        raise SoundError(KEEP_REFUSED)
    container = _open(Path(media.path))
    try:
        with atomic_output(target, overwrite, still_as_planned(media), [media.path]) as written:
            out, edits = _open_output(written.path, target.suffix, container, voice)
            try:
                _transcode(container, out, edits)
                _close(out)
                media.detection.setdefault("stream", {})["sound_written_as"] = sound_written_as(edits, container)
                if moved := channels_read_back(container, written.path):
                    media.detection["stream"]["sound_channels_read_back"] = moved
            except BaseException:
                with contextlib.suppress(Exception):
                    out.close()
                raise
    finally:
        container.close()
    return written.sha256


def _close(out: av.container.OutputContainer) -> None:
    """Writes the container's trailer and closes it: a write that failed (a full disk) surfaces
    here, and must stop the rename of a short file into place (atomic_output names the cause)."""
    try:
        out.close()
    except av.error.FFmpegError as error:
        if isinstance(error, OSError):
            raise
        raise SoundError(f"cannot write the sound: {error.strerror or 'the encoder failed'}") from None


def _transcode(container: av.container.InputContainer, out: av.container.OutputContainer,
               edits: dict[int, tuple[av.audio.stream.AudioStream, VoiceEdit]]) -> None:
    samples = 0
    cuts = {index: LastFrameCut(container, container.streams[index]) for index in edits}
    try:
        for packet in container.demux(*container.streams.audio):
            if packet.dts is None and packet.size == 0:
                continue
            stream, edit = edits[packet.stream.index]
            for frame in packet.decode():
                if frame.is_corrupt:
                    raise SoundError("the sound is damaged (a corrupt frame)")
                samples += frame.samples
                for whole in cuts[packet.stream.index].push(frame):
                    for ready in edit.resample(whole):
                        out.mux(stream.encode(ready))
        if not samples:  # an empty file out would look like a protected one
            raise SoundError("the file holds no sound: its audio stream has no samples")
        for index, (stream, edit) in edits.items():
            for ready in cuts[index].drain(edit):
                out.mux(stream.encode(ready))
            out.mux(stream.encode(None))
    except av.error.FFmpegError as error:  # its words alone: PyAV's name the hidden temporary file
        raise SoundError(f"cannot re-encode the sound: {error.strerror or type(error).__name__}") from None
