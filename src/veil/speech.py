"""Where people speak in a file's sound: Silero VAD (ONNX, run by onnxruntime) over every audio stream.

Each stream is decoded and resampled to 16 kHz on the fly, and each of its channels fed to the
model in 32 ms chunks, so memory does not grow with the length of the file. Speech probabilities become
segments with Silero's own hysteresis; segments are then padded, because a voice that is
muted or anonymised must be covered from its first syllable to its last breath. Segments
of all streams are united: every stream is then treated over the same times.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from veil.avopen import open_local
from veil.fferror import readable_packets, reason
from veil.models import model_sha256, onnx_session, shared

MODEL_NAME = "silero_vad.onnx"
RATE = 16000
CHUNK = 512  # the model's input at 16 kHz: 32 ms
CONTEXT = 64  # samples of the previous chunk the model sees again with each chunk
LANES = 8  # stretches of sound run as one batch
LANE = 250  # chunks per stretch: 8 s
WARM_UP = 16  # chunks (0.5 s) heard before a stretch to settle the model's state
# Quiet speech (a voice across the room, a recording made at low gain) goes unfound by the model,
# which hears speech at ordinary levels, though a listener turning the volume up hears every word
# (bench/README.md, voice: quiet readings). Each chunk is heard raised so
# that the loudest chunk of its channel within LEVEL_SPAN chunks either way reaches LEVEL_DBFS, by
# at most LIFT_DB; never lowered. Looking either way keeps the gain steady through a word.
# Raised to -20 dBFS, not the -30 first chosen: a voice across a reverberant room, or through a
# radio's narrow band, was heard as speech only in part at -30 (bench/README.md, voice: rooms).
# By at most 100 dB, not the 40 first chosen: a 24-bit recorder at its lowest gain holds a voice
# peaking at -90 dBFS that anyone can raise and hear, and it was half missed at 40; 100 dB reaches
# down to such recorders' own noise floor, and raised that far, noise alone was still not speech
# (bench/README.md, voice: far under 16 bits).
LEVEL_DBFS = -20.0
LIFT_DB = 100.0
LEVEL_SPAN = 16  # chunks: half a second
# Speech under music goes unheard: a reading 5 dB under a band (chords, bass, a lead line, drums) was
# mostly missed, and a listener still follows it. Notes, chords and hum hold their pitch for longer
# than a voice holds its own: each channel is also heard with what is steady taken out, each
# frequency's power less STEADY_OVER times its median over STEADY_SPAN frames either way (down to
# STEADY_FLOOR of its level), which leaves the moving harmonics of speech standing above what
# remains of the music. Taking out twice the median, not once, left less music for the model to
# mistake and found more speech under it (bench/voice.py); it costs more of the quiet beside speech.
STEADY_WINDOW = 512  # samples a frame of the spectrum (32 ms), half of it a hop
STEADY_SPAN = 19  # frames either way: 0.3 s
STEADY_OVER = 2.0
STEADY_FLOOR = 0.1

Segment = tuple[float, float]  # seconds from the sound's first sample (the earliest stream's)


class SoundError(ValueError):
    """Sound that cannot be read faithfully; the message says why."""


@dataclass(frozen=True)
class SpeechParams:
    """How probabilities become segments (Silero's get_speech_timestamps, with wider padding)."""

    # A chunk above it starts speech. Lower (0.35, 0.4) found more of a voice across a room or over a
    # radio, but took a band with no voice for speech (bench/README.md, voice: rooms).
    threshold: float = 0.5
    release: float = 0.35  # speech ends only when probability falls below this ...
    min_silence_s: float = 0.1  # ... for this long
    # Shorter bursts are not speech. Silero's own 0.25 s (made for transcription) left a short word
    # heard alone audible, a "yes" or a name called out, which the model does mark as speech.
    min_speech_s: float = 0.1
    # Added before and after each segment. The model marks speech only once it is under way: a soft
    # first syllable, or a breath before it, can start over half a second before, and a word's tail
    # fades out after (bench/voice.py measures how far, and what the padding mutes beyond).
    pad_before_s: float = 0.6
    pad_after_s: float = 0.5
    join_s: float = 0.6  # segments this close are joined: no flicker of voice between them


SPEECH = SpeechParams()


class VoiceDetector:
    """An onnxruntime session over Silero VAD; one stream at a time (the model is stateful)."""

    def __init__(self) -> None:
        # One small step per call, on the CPU: a second thread, or a GPU, costs more in
        # hand-over than it saves.
        self.session = onnx_session(MODEL_NAME, ["CPUExecutionProvider"], threads=1)
        self.lock = threading.Lock()

    def probabilities(self, chunks: Iterator[np.ndarray]) -> np.ndarray:
        """Speech probability of each chunk of CHUNK samples a channel, in order: the highest of its
        channels', their mix's, and each of those heard without its steady sound (see STEADY_SPAN).
        Each channel is heard alone: a mix can cancel a voice (one channel the other inverted) or
        drown it (speech on one side, noise on both); the mix too, as music spread wide is weaker in
        it than in either channel, and a voice in the centre is not.

        The model is called once per chunk, and a call costs far more than its arithmetic, so
        the sound is cut into LANES stretches run side by side, each channel of each its own
        row of one batch. Each stretch first hears the WARM_UP chunks before it (probabilities
        discarded), so its state is settled.
        """
        found: list[np.ndarray] = []
        history: np.ndarray | None = None
        block: list[np.ndarray] = []
        with self.lock:
            for chunk in chunks:
                if history is None:
                    history = np.zeros((WARM_UP, *chunk.shape), np.float32)
                block.append(chunk)
                if len(block) == LANES * LANE:
                    found.append(self._block(np.stack(block), history))
                    history, block = found_history(history, block), []
            if block:
                found.append(self._block(np.stack(block), history))
        return np.concatenate(found) if found else np.zeros(0, np.float32)

    def _block(self, block: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Probabilities of a block of chunks (chunks x channels x CHUNK), the highest of all heard."""
        sound = np.concatenate([history, block])
        # Each channel as it is, their mix (music spread wide mixes down under a voice in the centre),
        # then each of those with its steady sound taken out: the likeliest of all is taken.
        if sound.shape[1] > 1:
            sound = np.concatenate([sound, sound.mean(axis=1, keepdims=True)], axis=1)
        heard = levelled(np.concatenate([sound, without_steady_sound(sound)], axis=1))
        lanes, channels = -(-len(block) // LANE), heard.shape[1]
        history, block = heard[:len(history)], heard[len(history):]
        padded = np.concatenate([history, block, np.zeros((lanes * LANE - len(block), *block.shape[1:]), np.float32)])
        # Lane i: chunks [i*LANE - WARM_UP, (i+1)*LANE) of the block, history first; a row per lane and channel.
        steps = padded[np.arange(lanes)[:, None] * LANE + np.arange(WARM_UP + LANE)[None, :]]
        steps = steps.transpose(0, 2, 1, 3).reshape(lanes * channels, WARM_UP + LANE, CHUNK)
        rows = len(steps)
        state = np.zeros((2, rows, 128), np.float32)
        context = np.zeros((rows, CONTEXT), np.float32)
        rate = np.array(RATE, np.int64)
        out = np.zeros((rows, WARM_UP + LANE), np.float32)
        for step in range(WARM_UP + LANE):
            x = np.concatenate([context, steps[:, step]], axis=1)
            try:
                p, state = self.session.run(None, {"input": x, "state": state, "sr": rate})
            except Exception as error:  # onnxruntime raises its own types; any means no answer
                raise SoundError(f"the speech detector failed: {error}") from None
            out[:, step] = p[:, 0]
            context = steps[:, step, -CONTEXT:]
        likeliest = out.reshape(lanes, channels, WARM_UP + LANE).max(axis=1)
        return likeliest[:, WARM_UP:].reshape(-1)[:len(block)]


def levelled(chunks: np.ndarray) -> np.ndarray:
    """Chunks (chunks x channels x CHUNK) as the model hears them: see LEVEL_DBFS."""
    power = np.mean(chunks.astype(np.float64) ** 2, axis=2)  # chunks x channels
    padded = np.pad(power, ((LEVEL_SPAN, LEVEL_SPAN), (0, 0)))
    loudest = np.max([padded[i:i + len(power)] for i in range(2 * LEVEL_SPAN + 1)], axis=0)
    target, most = 10 ** (LEVEL_DBFS / 20), 10 ** (LIFT_DB / 20)
    gain = np.clip(target / np.sqrt(np.maximum(loudest, 1e-30)), 1.0, most)
    return np.clip(chunks * gain[:, :, None], -1.0, 1.0).astype(np.float32)


def without_steady_sound(chunks: np.ndarray) -> np.ndarray:
    """Chunks (chunks x channels x CHUNK), one stretch of sound, with the steady sound of each channel
    taken out (see STEADY_SPAN); a channel at a time, to hold one spectrum in memory."""
    count, channels, _ = chunks.shape
    signals = chunks.transpose(1, 0, 2).reshape(channels, -1)
    return np.stack([unsteady(signal) for signal in signals]).reshape(channels, count, CHUNK).transpose(1, 0, 2)


def unsteady(signal: np.ndarray) -> np.ndarray:
    """A signal with each frequency less STEADY_OVER times its median over STEADY_SPAN frames either way."""
    hop, window = STEADY_WINDOW // 2, np.hanning(STEADY_WINDOW + 1)[:-1].astype(np.float32)
    padded = np.pad(signal.astype(np.float32), (hop, hop + STEADY_WINDOW))
    frames = np.lib.stride_tricks.sliding_window_view(padded, STEADY_WINDOW)[::hop]
    spectrum = np.fft.rfft(frames * window, axis=1)  # frames x bins
    power = np.abs(spectrum) ** 2
    steady = running_median(power, STEADY_SPAN)
    gain = np.sqrt(np.maximum(1 - STEADY_OVER * steady / np.maximum(power, 1e-30), STEADY_FLOOR ** 2))
    # Overlap-add with the window again, divided by the windows' summed squares.
    pieces = np.fft.irfft(spectrum * gain, STEADY_WINDOW, axis=1).astype(np.float32) * window
    out, norm = np.zeros_like(padded), np.zeros_like(padded)
    for i, piece in enumerate(pieces):
        out[i * hop:i * hop + STEADY_WINDOW] += piece
        norm[i * hop:i * hop + STEADY_WINDOW] += window ** 2
    return out[hop:hop + len(signal)] / np.maximum(norm[hop:hop + len(signal)], 1e-6)


def running_median(power: np.ndarray, span: int) -> np.ndarray:
    """The median of each bin (frames x bins) over `span` frames either way, the edges held. Taken
    at every other frame over every other frame (a quarter of the work), held between."""
    padded = np.pad(power, ((span, span + 1), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1, axis=0)[::2, :, ::2]
    step = 256  # frames at a time: the windows of a whole stretch at once would take gigabytes
    medians = np.concatenate([np.median(windows[i:i + step], axis=2) for i in range(0, len(windows), step)])
    return np.repeat(medians, 2, axis=0)[:len(power)]


def found_history(history: np.ndarray, block: list[np.ndarray]) -> np.ndarray:
    """The last WARM_UP chunks heard, for the next block's first lane."""
    return np.concatenate([history, np.stack(block[-WARM_UP:])])[-WARM_UP:]


def shared_voice_detector() -> VoiceDetector:
    return shared(VoiceDetector)


# A frame starting this much later than the samples before it end leaves a gap; closer, it is
# timestamp rounding.
GAP_S = 0.01


class Timeline:
    """Where a stream's decoded frames fall, from its first: a frame that starts later than the
    sound before it ends (a recording paused, packets lost) leaves a gap, counted as silence of
    that length, so times found in the sound are the times it plays at, and an edited stream
    keeps the gap and its sync with the picture."""

    def __init__(self) -> None:
        self.origin: Fraction | None = None  # the first frame's time (s), from the first that has one
        self.position = Fraction(0)  # seconds counted so far, gaps included (rates may change)
        # Sound beyond its place: damaged data can decode to more samples than its time leaves room
        # for (an Opus packet to 120 ms in a 20 ms slot), and all the sound after it counts late by
        # that much. From where (s from the first frame), and by how much at most (s).
        self.overrun_from: float | None = None
        self.overrun = 0.0
        self.widest_gap: tuple[float, float] | None = None  # where (s from the first frame), how long (s)

    def gap_before(self, frame: av.AudioFrame) -> int:
        """Samples (at the frame's rate) of silence before `frame`; counts the frame."""
        gap = 0
        if frame.pts is not None and frame.time_base:
            at = frame.pts * frame.time_base
            if self.origin is None:  # where the first frame was, for frames without a time before it
                self.origin = at - self.position
            late = round((at - self.origin - self.position) * frame.sample_rate)
            gap = late if late > GAP_S * frame.sample_rate else 0
            if gap and (self.widest_gap is None or gap / frame.sample_rate > self.widest_gap[1]):
                self.widest_gap = (float(self.position), gap / frame.sample_rate)
            if late < -GAP_S * frame.sample_rate:
                self.overrun_from = float(at - self.origin) if self.overrun_from is None else self.overrun_from
                self.overrun = max(self.overrun, -late / frame.sample_rate)
        self.position += Fraction(gap + frame.samples, frame.sample_rate)
        return gap


class WiderSound(Exception):
    """A frame of more channels than the layout its stream is converted to (recordings joined end
    to end, mono then stereo): mixed down, a voice on one side only, or in opposite phase on the
    two, would be weakened or cancelled."""

    def __init__(self, layout: str, channels: int, at: float | None):
        super().__init__(layout)
        self.layout, self.channels, self.at = layout, channels, at


class Converter:
    """An av.AudioResampler to one sample format and rate (and layout, if given; else the first
    frame's), made anew, the old one flushed, where the input's rate, layout or format changes
    mid-stream (recordings joined end to end): PyAV's refuses such a frame. A later frame of more
    channels than both the first and that layout raises WiderSound rather than being mixed down."""

    def __init__(self, format: str, rate: int, layout: str | None = None):
        self.target = {"format": format, "rate": rate, "layout": layout}
        self.resampler: av.AudioResampler | None = None
        self.source: tuple[str, str, int] | None = None
        self.widest = av.AudioLayout(layout).nb_channels if layout else 0

    def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        """Converted frames; None flushes."""
        if frame is None:
            return self.resampler.resample(None) if self.resampler else []
        out: list[av.AudioFrame] = []
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self.source is None:
            self.widest = max(self.widest, frame.layout.nb_channels)
        elif frame.layout.nb_channels > self.widest:
            raise WiderSound(frame.layout.name, frame.layout.nb_channels, frame.time)
        if source != self.source:
            if self.resampler is not None:
                out += self.resampler.resample(None)
            self.resampler = av.AudioResampler(**self.target)
            self.target["layout"] = self.target["layout"] or frame.layout.name  # later: the first frame's channels
            self.source = source
        return out + self.resampler.resample(frame)


def _frames(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
            lost: list[int] | None) -> Iterator[av.AudioFrame]:
    """The stream's frames; with `lost` (a damaged file salvaged), past the packets that cannot be
    decoded (counted there) up to where the data cannot be read."""
    if lost is None:
        yield from container.decode(stream)
        return
    failures: list[av.error.FFmpegError] = []
    for packet in readable_packets(container, [stream], failures):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            lost[0] += 1
            continue
        yield from frames
    lost[0] += len(failures)


def channel16k_chunks(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                      timeline: Timeline, lost: list[int] | None = None,
                      layout: str | None = None) -> Iterator[np.ndarray]:
    """The stream at 16 kHz as float chunks of CHUNK samples a channel (channels x CHUNK; the last
    zero-padded), gaps in its timestamps (`timeline`) filled with silence, in `layout` (None: the
    first frame's; a wider frame later raises WiderSound). `lost`: see `_frames`."""
    # Interleaved samples, not a plane a channel: PyAV crashes turning an 8-plane frame into an array.
    resampler = Converter(format="flt", rate=RATE, layout=layout)
    pending: np.ndarray | None = None  # channels x samples not yet yielded

    def take(frames: list[av.AudioFrame], gap: int = 0) -> Iterator[np.ndarray]:
        """Chunks from converted frames after `gap` samples of silence (at 16 kHz)."""
        nonlocal pending
        arrays = [f.to_ndarray().reshape(-1, f.layout.nb_channels).T for f in frames]
        if pending is None:
            if not arrays:
                return
            pending = np.zeros((len(arrays[0]), 0), np.float32)
        pending = np.concatenate([pending, np.zeros((len(pending), gap), np.float32), *arrays], axis=1)
        usable = pending.shape[1] - pending.shape[1] % CHUNK
        yield from pending[:, :usable].reshape(len(pending), -1, CHUNK).transpose(1, 0, 2)
        pending = pending[:, usable:]

    try:
        for frame in _frames(container, stream, lost):
            gap = timeline.gap_before(frame) * RATE // frame.sample_rate
            yield from take(resampler.resample(frame), gap)
        yield from take(resampler.resample(None))
    except av.error.FFmpegError as error:
        raise SoundError(f"cannot decode audio stream {stream.index}: {reason(error)}") from None
    if pending is not None and pending.shape[1]:
        yield np.pad(pending, ((0, 0), (0, CHUNK - pending.shape[1])))


def segments(probabilities: np.ndarray, duration: float, params: SpeechParams = SPEECH) -> list[Segment]:
    """Speech segments from per-chunk probabilities, padded and joined, clipped to [0, duration]."""
    step = CHUNK / RATE
    found: list[Segment] = []
    start: int | None = None
    quiet_since: int | None = None
    for i, p in enumerate(probabilities):
        if start is None:
            if p >= params.threshold:
                start, quiet_since = i, None
            continue
        if p >= params.release:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = i
        elif (i - quiet_since) * step >= params.min_silence_s:
            found.append((start * step, quiet_since * step))
            start = quiet_since = None
    if start is not None:
        found.append((start * step, len(probabilities) * step))
    padded = [(max(0.0, a - params.pad_before_s), min(duration, b + params.pad_after_s))
              for a, b in found if b - a >= params.min_speech_s]
    return join(padded, params.join_s)


def join(spans: list[Segment], gap: float) -> list[Segment]:
    """Sorted spans with those closer than `gap` merged."""
    merged: list[Segment] = []
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass(frozen=True)
class SoundSpeech:
    """Where speech is in a file's sound, on one time axis for all its streams: seconds from the
    sound's first sample (the earliest of its streams'), gaps in timestamps counted as silence."""

    segments: list[Segment]
    seconds: float  # from the first sample to the last of the longest-reaching stream
    origin: float  # the first sample's time on the file's own clock (a video's frame times' clock)
    streams: int  # audio streams heard (none: the file has no sound)
    undecodable_packets: int = 0  # passed over as silence (a damaged file salvaged)
    overrun: tuple[float, float] | None = None  # a stream's sound beyond its place: from (s), by up to (s)
    widest_gap: tuple[float, float] | None = None  # the widest gap in a stream's timestamps: at (s), for (s)
    # Where the file's header says its sound ends (s on the same axis), in the formats whose header
    # states it (STATED_LENGTH_FORMATS, and WAV's data size); None elsewhere.
    stated_end: float | None = None


# Containers whose header states how long the sound is (Matroska's duration, FLAC's sample count,
# an MP3's frame count in its Xing, Info or VBRI header: `_mp3_states_its_length`): FFmpeg takes the
# others' from the data it has (WAV, Ogg) or guesses it from a bit rate (ADTS AAC, an MP3 without
# such a header), which a cut file does not contradict, and a VBR one does. A WAV's header states
# its data's size, which veil reads itself (`_wav_stated_seconds`).
STATED_LENGTH_FORMATS = ("matroska", "flac", "mp3")
MP3_LENGTH_HEADERS = (b"Xing", b"Info", b"VBRI")
WAV_PCM_TAGS = (1, 3, 0xFFFE)  # integer PCM, float, WAVE_FORMAT_EXTENSIBLE


def _stated_end(path: Path, container: av.container.InputContainer) -> float | None:
    """Where the file's header says its sound ends (s), in the formats whose header states it
    (STATED_LENGTH_FORMATS, and WAV's data size); None elsewhere. (FFmpeg's duration of these is
    where the sound ends, from zero: a late start is in it.)"""
    name = container.format.name
    if name == "wav":
        return _wav_stated_seconds(path)
    if not container.duration or not any(f in name for f in STATED_LENGTH_FORMATS):
        return None
    return container.duration / av.time_base if "mp3" not in name or _mp3_states_its_length(path) else None


def _mp3_states_its_length(path: Path) -> bool:
    """Whether an MP3's first frame, past its ID3v2 tag, is a Xing, Info or VBRI header (which
    sits 13-36 bytes into that frame)."""
    from veil.videofile import id3v2_length  # (videofile imports this module)

    with open(path, "rb") as file:
        file.seek(id3v2_length(file.read(10)) or 0)
        frame = file.read(64)
    return any(marker in frame for marker in MP3_LENGTH_HEADERS)


def _wav_stated_seconds(path: Path) -> float | None:
    """How long a WAV file's sound is by its header: the 'data' chunk's size over the 'fmt '
    chunk's bytes a second (FFmpeg takes the length of the data there is). None for a header
    written before its size was known (0 or 0xFFFFFFFF, a recorder's stream) or one unread."""
    with open(path, "rb") as file:
        if file.read(12)[8:] != b"WAVE":
            return None
        byte_rate = None
        while len(header := file.read(8)) == 8:
            kind, size = header[:4], int.from_bytes(header[4:], "little")
            padded = size + size % 2  # chunks are padded to an even length
            if kind == b"fmt ":
                fmt = file.read(padded)
                if len(fmt) >= 14:
                    tag, rate = int.from_bytes(fmt[:2], "little"), int.from_bytes(fmt[4:8], "little")
                    # PCM's by its frame size (what decoders read by), a compressed one's as stated
                    byte_rate = rate * int.from_bytes(fmt[12:14], "little") if tag in WAV_PCM_TAGS \
                        else int.from_bytes(fmt[8:12], "little")
                padded -= len(fmt)
            elif kind == b"data":
                return size / byte_rate if byte_rate and size not in (0, 0xFFFFFFFF) else None
            file.seek(padded, os.SEEK_CUR)
    return None


def find_speech(path: Path, params: SpeechParams = SPEECH, detector: VoiceDetector | None = None,
                salvage: bool = False) -> SoundSpeech:
    """Speech over all audio streams of a file. Each stream is decoded from its first packet in a
    container of its own: a seek back to the start skips frames stamped before zero (a broadcast
    capture's clock wrapping), and cannot be done at all in some files. `salvage` (a damaged
    video redacted as far as it decodes): sound that cannot be decoded is heard as silence."""
    found: list[tuple[float, list[Segment], float]] = []  # per stream: origin, segments, duration
    lost = [0] if salvage else None
    overrun: tuple[float, float] | None = None  # the worst stream's
    gap: tuple[float, float] | None = None  # the widest stream's: on the file's clock (s), for (s)
    try:
        with open_local(path) as container:
            streams = [stream.index for stream in container.streams.audio]
            stated = _stated_end(path, container)
        if streams:  # the model is loaded for sound only
            detector = detector or shared_voice_detector()
        for index in streams:
            probabilities, timeline = _heard_whole(path, index, detector, lost)
            duration = len(probabilities) * CHUNK / RATE
            found.append((float(timeline.origin or 0), segments(probabilities, duration, params), duration))
            if timeline.overrun_from is not None and (overrun is None or timeline.overrun > overrun[1]):
                overrun = (timeline.overrun_from, timeline.overrun)
            if timeline.widest_gap is not None and (gap is None or timeline.widest_gap[1] > gap[1]):
                gap = (float(timeline.origin or 0) + timeline.widest_gap[0], timeline.widest_gap[1])
    except (av.error.FFmpegError, OSError) as error:
        raise SoundError(f"cannot read the file's sound: {reason(error)}") from None
    origin = min((start for start, _, _ in found), default=0.0)
    united = [(a + start - origin, b + start - origin) for start, spans, _ in found for a, b in spans]
    return SoundSpeech(join(united, params.join_s), max((start - origin + d for start, _, d in found), default=0.0),
                       origin, len(found), lost[0] if lost else 0, overrun,
                       None if gap is None else (gap[0] - origin, gap[1]), None if stated is None else stated - origin)


def widened(channels: int, wider: WiderSound) -> SoundError:
    """The refusal of sound that widens mid-stream where it would be written again."""
    at = "" if wider.at is None else f" at {wider.at:.1f} s"
    return SoundError(f"its sound changes from {channels} to {wider.channels} channels{at} (recordings joined end "
                      "to end): veil cannot yet write it again without mixing the later part down; convert the "
                      f"sound to one layout first (ffmpeg -ac {wider.channels})")


def _heard_whole(path: Path, index: int, detector: VoiceDetector,
                 lost: list[int] | None) -> tuple[np.ndarray, Timeline]:
    """Speech probabilities of one stream, every channel of it heard: where its sound widens
    mid-stream (mono, then stereo), heard again from the start in the wider layout, the narrower
    part spread over its channels as players spread it."""
    layout, lost_before = None, lost[0] if lost else 0
    while True:
        with open_local(path) as container:
            timeline = Timeline()
            try:
                return detector.probabilities(
                    channel16k_chunks(container, container.streams[index], timeline, lost, layout)), timeline
            except WiderSound as wider:
                layout = wider.layout
                if lost:
                    lost[0] = lost_before


def detection_record(params: SpeechParams = SPEECH) -> dict:
    """What found the speech, for the plan and its audit report."""
    return {"model": MODEL_NAME, "model_sha256": model_sha256(MODEL_NAME), "rate": RATE, "chunk": CHUNK,
            "channels": "each alone and, where several, their mix, each also without its steady sound; "
                        "the likeliest taken",
            "steady_sound_removed": {"median_within_s": round(STEADY_SPAN * STEADY_WINDOW / 2 / RATE, 3),
                                     "times": STEADY_OVER, "floor": STEADY_FLOOR},
            "timestamp_gaps": "silence",
            "quiet_sound_raised": {"to_dbfs": LEVEL_DBFS, "by_at_most_db": LIFT_DB,
                                   "loudest_within_s": round(LEVEL_SPAN * CHUNK / RATE, 3)},
            **asdict(params)}


def speech_regions(path: Path, salvage: bool = False) -> tuple[list, dict]:
    """The file's speech as plan regions (kind "speech", on the time axis), and the record of how it was found.
    A file without sound has neither. `salvage`: see `find_speech`."""
    from veil.plan import Region

    speech = find_speech(path, salvage=salvage)
    if not speech.streams:
        return [], {}
    regions = [Region(id=f"speech{n}", source="detector", kind="speech", start=round(a, 3), end=round(b, 3))
               for n, (a, b) in enumerate(speech.segments, 1)]
    record = {**detection_record(), "sound_streams": speech.streams, "sound_seconds": round(speech.seconds, 3),
              "sound_origin": round(speech.origin, 6),
              "speech_seconds": round(sum(b - a for a, b in speech.segments), 3), "segments": len(speech.segments),
              **({"undecodable_packets": speech.undecodable_packets} if speech.undecodable_packets else {}),
              **({"overrun": {"from_s": round(speech.overrun[0], 3), "up_to_s": round(speech.overrun[1], 3)}}
                 if speech.overrun else {}),
              **({"widest_gap": {"at_s": round(speech.widest_gap[0], 3), "for_s": round(speech.widest_gap[1], 3)}}
                 if speech.widest_gap else {}),
              **({"stated_seconds": round(speech.stated_end, 3)} if speech.stated_end is not None else {})}
    return regions, record
