"""What happens to voices: kept, muted over speech, muted whole, or anonymised over speech.

`VoiceEdit` edits one audio stream while it is re-encoded. It receives decoded frames in
order and returns frames for the encoder (it stands where a resampler would), so a video's
audio flows through the same muxing code whether it is copied, converted or edited. Sound
outside speech passes unchanged; a speech segment is held until it is complete, replaced,
and cross-faded in and out over FADE_S *outside* the segment, so the segment itself is
treated whole. Memory grows with the longest speech segment, not with the file.

Anonymisation treats each segment at 16 kHz: its pitch and formants are first scaled together by
a factor drawn up or down (resampled, then brought back to its duration), then its LPC envelope's
formants are moved by a McAdams coefficient and a vocal-tract warp, and the envelope is moved
again along frequency by a piecewise-linear map and tilted by a smooth curve, all drawn afresh
for each segment from a secret drawn for each export and stored nowhere, so two exports of one
voice, or two segments of one export, do not sound like one speaker. The residual is kept
otherwise (words, timing). Of the candidates measured against a speaker recogniser
(bench/voice.py: the VoicePrivacy McAdams baseline, noise- and pulse-excited LPC resynthesis,
pitch shifts alone, narrower draws, flattened, drifting or long-term-normalised envelopes), this
one linked voices least: the wider each envelope draw, the less the recogniser linked, and once
the envelope was drawn anew, the voice's own pitch was what it still used. It does not make
voices unlinkable (README, bench/README.md).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import av.filter
import numpy as np

from veil.avopen import open_local
from veil.plan import VoiceMode
from veil.speech import Converter, Segment, SoundError, Timeline, WiderSound, join, widened

# Long enough that muting does not click, short enough to leave the sound around speech.
FADE_S = 0.03
# Bits a second per channel when lossless sound is encoded lossily (AAC, MP3, Opus) after editing.
LOSSLESS_INTO_LOSSY = 96_000

RATE = 16000
FRAME = 320  # 20 ms analysis frames, 10 ms apart (the VoicePrivacy baseline's)
HOP = 160
NFFT = 512
ORDER = 20  # LPC order: an envelope with ten formant pairs at 16 kHz


# --- the anonymiser -------------------------------------------------------------------------

# Frequencies at which the envelope is moved, as fractions of 8 kHz: roughly where the formants
# of any voice can lie, denser where they carry the words.
KNOTS = (0, 300 / 8000, 700 / 8000, 1200 / 8000, 2000 / 8000, 3000 / 8000, 4500 / 8000, 1.0)


@dataclass(frozen=True)
class VoiceDraw:
    """One segment's secret parameters for its envelope (its pitch factor is drawn before them)."""

    alpha: float  # McAdams coefficient: pole angles phi -> phi ** alpha
    warp: float  # then every pole angle scaled: a vocal tract of another length
    knots: tuple[float, ...]  # then the envelope moved along frequency: each of KNOTS to knot * factor
    colour: tuple[float, ...]  # and tilted by a drawn smooth curve: cosine weights, in nepers


# A segment whose new waveform still follows its pitch-shifted self this closely (correlation)
# gets a new envelope draw, up to DRAWS times: the envelope was barely changed.
STILL_ALIKE = 0.5
DRAWS = 4

# The pitch factor's range, up or down. With the envelope drawn anew, the voice's own pitch was
# what the recogniser still linked; a shift alone hides nobody, and a fixed one is undone by
# shifting back, so it is drawn per segment, and only ever on top of the envelope's draws.
PITCH = (1.2, 1.6)


def draw_pitch(rng: np.random.Generator, pitch_range: tuple[float, float] = PITCH) -> float:
    low, high = pitch_range
    return float(np.exp(rng.uniform(np.log(low), np.log(high)) * rng.choice([-1, 1])))


# The envelope's draws: wide ranges, since the recogniser links voices less the more each
# segment's voice is its own.
ALPHA = (0.4, 0.9)
WARP = (0.7, 1.4)  # drawn evenly on a log scale
KNOT_FACTOR = 1.3  # each knot moved by up to this factor either way (log scale)
TILT = 1.5  # the colour curve's cosine weights, in nepers either way
TILT_TERMS = 4


def draw(rng: np.random.Generator, pitch: float = 1.0) -> VoiceDraw:
    while True:
        alpha, warp = float(rng.uniform(*ALPHA)), float(np.exp(rng.uniform(*np.log(WARP))))
        if _moves_formants(pitch, alpha, warp):
            break
    return VoiceDraw(alpha=alpha, warp=warp,
                     knots=tuple(np.exp(rng.uniform(-np.log(KNOT_FACTOR), np.log(KNOT_FACTOR), len(KNOTS))).tolist()),
                     colour=tuple(rng.uniform(-TILT, TILT, TILT_TERMS).tolist()))


def anonymiser_record() -> dict:
    """The ranges each speech segment's secret voice is drawn from, and how it is made, for the
    audit report (the draws themselves are never kept)."""
    return {"pitch_factor": list(PITCH), "pitch_up_or_down": True, "mcadams_alpha": list(ALPHA),
            "warp": list(WARP), "knots": [round(k, 4) for k in KNOTS], "knot_factor": KNOT_FACTOR,
            "tilt_nepers": TILT, "tilt_terms": TILT_TERMS, "redraw_while_correlation_above": STILL_ALIKE,
            "draws_at_most": DRAWS, "lpc_order": ORDER, "rate": RATE, "fade_seconds": FADE_S}


def _moves_formants(pitch: float, alpha: float, warp: float) -> bool:
    """Whether the pitch shift, McAdams and the warp together move a formant at 500 Hz and one at
    1.5 kHz by 15% or more. Below about 2.5 kHz a coefficient under 1 raises a formant and a warp
    (or a pitch factor) under 1 lowers it: drawn together they can cancel, and such a draw left
    the segment's waveform close to the original."""
    return all(abs(np.log((phi * pitch) ** alpha * warp / phi)) >= np.log(1.15)
               for phi in (np.pi * 500 / 8000, np.pi * 1500 / 8000))


def shift_pitch(x: np.ndarray, factor: float) -> np.ndarray:
    """16 kHz speech with its pitch and formants scaled by about `factor`, same length: resampled
    (which also changes its duration), then brought back to its duration by FFmpeg's `atempo`
    (overlap-add of grains matched by similarity, which keeps pitch). Sound inside moves earlier
    by up to a few tens of milliseconds."""
    rate = int(round(RATE / factor / 100)) * 100  # a round rate: resampling's FFT stays short
    # A quarter second of silence after the segment: atempo holds back the last grains of what it
    # is given (tens of milliseconds, or all of a very short segment), and those are speech.
    faster = np.pad(resample(x.astype(np.float32), RATE, rate), (0, RATE // 4))
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="flt", sample_rate=RATE, layout="mono", time_base=Fraction(1, RATE))
    tempo = graph.add("atempo", f"{rate / RATE:.6f}")
    sink = graph.add("abuffersink")
    source.link_to(tempo)
    tempo.link_to(sink)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(faster[None, :], format="flt", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = RATE, 0, Fraction(1, RATE)
    graph.push(frame)
    graph.push(None)
    pieces = []
    while True:
        try:
            pieces.append(graph.pull().to_ndarray()[0])
        except (av.BlockingIOError, av.EOFError):
            break
    out = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return np.pad(out, (0, max(0, len(x) - len(out))))[:len(x)].astype(x.dtype)


def _frames(x: np.ndarray) -> np.ndarray:
    """Overlapping frames covering x (zero-padded): shape (n, FRAME)."""
    count = max(1, int(np.ceil(len(x) / HOP)) + 1)
    padded = np.pad(x, (HOP, count * HOP + FRAME - len(x) - HOP))
    index = np.arange(count)[:, None] * HOP + np.arange(FRAME)[None, :]
    return padded[index]


def _overlap_add(frames: np.ndarray, length: int) -> np.ndarray:
    # FRAME = 2 * HOP: each hop of the output is the second half of one frame plus the first half of the next.
    out = np.zeros((len(frames) + 1) * HOP)
    out[:-HOP] += frames[:, :HOP].ravel()
    out[HOP:] += frames[:, HOP:].ravel()
    return out[HOP:HOP + length]


def _lpc(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LPC polynomials (n, ORDER + 1) and prediction error powers (n,) by Levinson-Durbin, all frames at once."""
    spectrum = np.fft.rfft(frames * np.hanning(FRAME + 2)[1:-1], NFFT)
    r = np.fft.irfft(np.abs(spectrum) ** 2, NFFT)[:, :ORDER + 1]
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12  # white-noise floor: silence stays solvable
    a = np.zeros((len(frames), ORDER + 1))
    a[:, 0] = 1
    error = r[:, 0].copy()
    for i in range(1, ORDER + 1):
        k = -(a[:, :i] * r[:, i:0:-1]).sum(axis=1) / error
        a[:, 1:i + 1] = a[:, 1:i + 1] + k[:, None] * a[:, i - 1::-1][:, :i]
        error *= 1 - k ** 2
    return a, np.maximum(error, 1e-12)


def _poles(a: np.ndarray) -> np.ndarray:
    """The roots (n, ORDER) of each frame's LPC polynomial: what the draws move."""
    companion = np.zeros((len(a), ORDER, ORDER))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, ORDER), np.arange(ORDER - 1)] = 1
    return np.linalg.eigvals(companion)


def _mcadams(poles: np.ndarray, alpha: float, warp: float = 1.0) -> np.ndarray:
    """The polynomials whose roots are `poles` with every complex pole's angle phi raised to phi ** alpha,
    then scaled by `warp` (formants moved), kept inside (0, pi)."""
    angle = np.angle(poles)
    turned = np.clip(np.abs(angle) ** alpha * warp, 0.02, np.pi - 0.02)
    moved = np.abs(poles) * np.exp(1j * np.sign(angle) * turned)
    poles = np.where(np.abs(poles.imag) > 1e-9, moved, poles)
    out = np.zeros((len(poles), ORDER + 1), complex)
    out[:, 0] = 1
    for k in range(ORDER):  # the polynomial with these roots, all frames at once
        out[:, 1:k + 2] -= poles[:, k:k + 1] * out[:, :k + 1]
    return out.real


def _frequency_map(factors: tuple[float, ...]) -> np.ndarray:
    """The piecewise-linear, increasing map of [0, 1] moving each knot by its factor (the ends stay)."""
    moved = np.minimum(np.array(KNOTS) * np.array(factors), 1.0)
    moved[-1] = 1.0
    moved = np.maximum.accumulate(moved) + np.arange(len(KNOTS)) * 1e-6  # increasing: np.interp needs it
    return np.interp(np.linspace(0, 1, NFFT // 2 + 1), KNOTS, moved)


def _envelope(voice: VoiceDraw, poles: np.ndarray) -> np.ndarray:
    """Each frame's new log-envelope (frames x bins): the LPC envelope's formants moved, then the whole
    envelope moved along frequency and tilted."""
    log_env = -np.log(np.abs(np.fft.rfft(_mcadams(poles, voice.alpha, voice.warp), NFFT)))
    grid = np.linspace(0, 1, NFFT // 2 + 1)
    mapping = _frequency_map(voice.knots)
    # The value at f goes to map(f): np.interp(grid, mapping, row) for every row, with the segment
    # and offset into it found once for all frames (the same arithmetic as np.interp's).
    left = np.minimum(np.searchsorted(mapping, grid, side="right") - 1, len(mapping) - 2)
    below, above = log_env[:, left], log_env[:, left + 1]
    moved = (above - below) / (mapping[left + 1] - mapping[left]) * (grid - mapping[left]) + below
    return moved + sum(c * np.cos(np.pi * (k + 1) * grid) for k, c in enumerate(voice.colour))


def anonymise(x: np.ndarray, rng: np.random.Generator,
              pitch_range: tuple[float, float] | None = PITCH) -> np.ndarray:
    """16 kHz mono speech with another pitch and a new spectral envelope (formants moved, moved
    again along frequency, tilted), drawn afresh for each call; the voice's own LPC residual is
    kept otherwise, so words and timing stay. Same length. `pitch_range` None: the pitch stays
    (the bench's measure of what the shift adds)."""
    if len(x) < FRAME:
        return np.zeros_like(x)
    pitch, shifted = 1.0, x.astype(np.float64)
    if pitch_range:
        pitch = draw_pitch(rng, pitch_range)
        shifted = shift_pitch(x, pitch).astype(np.float64)
    frames = _frames(shifted)
    a, _ = _lpc(frames)
    poles = _poles(a)  # the draws below move these: found once, however many draws it takes
    window = np.sqrt(np.hanning(FRAME + 1)[:-1])  # sqrt-Hann in and out: frames 50% apart sum to one
    windowed = np.fft.rfft(frames * window, NFFT)
    old_envelope = np.log(np.abs(np.fft.rfft(a, NFFT)))
    power = np.sum(np.abs(windowed) ** 2, axis=1)
    loud = _loud_frames(power)
    for _ in range(DRAWS):
        # The frame refiltered by new / old envelope magnitude (zero phase: the phase made no difference
        # to the recogniser, and the ratio of two all-pole filters cannot express the moves along frequency).
        gain = _pauses_held(windowed, power, loud, np.exp(_envelope(draw(rng, pitch), poles) + old_envelope))
        y = _overlap_add(np.fft.irfft(windowed * gain, NFFT)[:, :FRAME] * window, len(x))
        # The moves of a draw can still cancel out over a voice's own formants: checked on the result.
        with np.errstate(invalid="ignore", divide="ignore"):  # silence has no correlation: kept as drawn
            alike = abs(np.corrcoef(shifted, y)[0, 1])
        if not alike >= STILL_ALIKE:
            break
    # The segment keeps its loudness (moved poles can raise the filter's gain many times over).
    # One gain for the whole segment: matching each frame's loudness made voices easier to link.
    level = np.sqrt(np.mean(x.astype(np.float64) ** 2) / max(float(np.mean(y ** 2)), 1e-20))
    return (y * level).astype(x.dtype)


# Frames this far below the segment's loud ones (power ratio) are pauses: their LPC envelope
# describes the room's noise or the pitch shift's faint ringing, not a voice.
QUIET = 1e-4


def channel_levels(x: np.ndarray, mono: np.ndarray) -> np.ndarray:
    """Each channel's loudness against the mix's (channels x 1), at most the number of channels
    (one channel alone in the mix): the anonymised mix is written to each channel at its own
    level, so a 5.1 film's dialogue stays in the centre and the LFE keeps its level, instead of
    every channel carrying the voice at the mix's."""
    own = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
    mixed = np.sqrt(np.mean(mono.astype(np.float64) ** 2))
    return np.clip(own / max(mixed, 1e-12), 0.0, len(x))[:, None].astype(np.float32)


def _loud_frames(power: np.ndarray) -> np.ndarray:
    """Which frames (by power) are not pauses; frames of digital silence are neither."""
    sounding = power > 0
    if not sounding.any():
        return sounding
    return power >= QUIET * np.percentile(power[sounding], 95)


def _pauses_held(windowed: np.ndarray, power: np.ndarray, loud: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """`gain` (frames x bins), with each pause's gain in power held to at most the median of the
    loud frames'. A pause's envelope can be so sharp that the drawn one raises it by tens of
    decibels more than it raises speech: a silence would come out as a tone or a hiss. Frames of
    digital silence stay silent whatever their gain."""
    if not loud.any():
        return gain
    with np.errstate(divide="ignore", invalid="ignore"):
        raised = np.log(np.sum(np.abs(windowed * gain) ** 2, axis=1)) - np.log(power)
    typical = np.median(raised[loud])
    held = (power > 0) & ~loud & (raised > typical)
    return gain * np.where(held, np.exp((typical - np.where(held, raised, typical)) / 2), 1.0)[:, None]


def _smooth(n: int) -> int:
    """The smallest number >= n with no prime factor above 5: an FFT of that length is fast."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def resample(x: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """x at `new_rate` by Fourier interpolation (band-limited: no new frequencies), round(len * ratio) samples.

    The signal is zero-padded to a length whose FFT is fast and that maps to a whole number of
    output samples: an arbitrary length can have a large prime factor, and its FFT is then slow.
    """
    if rate == new_rate:
        return x
    step = rate // math.gcd(rate, new_rate)  # input samples per whole number of output samples
    padded = step * _smooth(-(-len(x) // step))
    length = padded * new_rate // rate
    spectrum = np.fft.rfft(x, padded)
    bins = length // 2 + 1
    spectrum = spectrum[:bins] if bins <= len(spectrum) else np.pad(spectrum, (0, bins - len(spectrum)))
    out = np.fft.irfft(spectrum, length) * (length / padded)
    return out[:round(len(x) * new_rate / rate)].astype(x.dtype)


# --- editing a stream -----------------------------------------------------------------------

# Containers that say exactly where a sound stream ends (an MP4's edit list and sample table).
EXACT_END_FORMATS = ("mov", "mp4", "m4a", "3gp")


def exact_sound_end(container: av.container.InputContainer, stream: av.stream.Stream) -> int | None:
    """Where a sound stream ends, in its time base, where its container says so exactly."""
    if stream.type != "audio" or not stream.duration or not stream.time_base:
        return None
    if not any(name in EXACT_END_FORMATS for name in container.format.name.split(",")):
        return None
    return (stream.start_time or 0) + stream.duration


class LastFrameCut:
    """A sound stream's decoded frames, in order, its last one cut where the container says the
    sound ends: the decoder gives the last frame whole, with the encoder's padding after the sound,
    which an encoder would keep as sound (up to a frame longer each pass). Only the last frame is
    cut, so no sound before it is dropped whatever a container says."""

    def __init__(self, container: av.container.InputContainer, stream: av.audio.stream.AudioStream):
        end = exact_sound_end(container, stream)
        self.end = float(end * stream.time_base) if end is not None else None
        self.held: av.AudioFrame | None = None

    def push(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        """The frame before this one, now known not to be the last."""
        before, self.held = self.held, frame
        return [before] if before is not None else []

    def flush(self) -> list[av.AudioFrame]:
        """The last frame, cut at the sound's end."""
        last, self.held = self.held, None
        if last is None:
            return []
        if self.end is None or last.time is None or not 0 < (keep := round((self.end - last.time) * last.sample_rate)) < last.samples:
            return [last]
        # Cut through FFmpeg's own FIFO: PyAV's to_ndarray crashes on planar frames of 8 channels (7.1).
        pts, time_base = last.pts, last.time_base
        last.pts = None  # a FIFO checks the timestamps of what it is given against what it holds
        fifo = av.AudioFifo()
        fifo.write(last)
        cut = fifo.read(keep)
        cut.pts, cut.time_base = pts, time_base
        return [cut]

    def drain(self, resampler: av.AudioResampler | VoiceEdit) -> list[av.AudioFrame]:
        """The last frame, cut, through `resampler`, and whatever `resampler` still holds: the
        stream's last frames for its encoder."""
        return [*(ready for last in self.flush() for ready in resampler.resample(last)), *resampler.resample(None)]


class Span(NamedTuple):
    """Samples [a, b) of a stream that an edit touches: speech [s, e) and its fades either side."""
    a: int
    s: int
    e: int
    b: int


class VoiceEdit:
    """Edits one stream over the speech segments; `resample` takes frames in order and returns frames
    for the encoder (None flushes), like the av.AudioResampler it stands in for."""

    def __init__(self, mode: VoiceMode, speech: list[Segment], rate: int, layout: str,
                 encoder: av.AudioResampler, secret: bytes | None = None, from_zero: bool = False,
                 sound_origin: float | None = None):
        """`speech` in seconds from the sound's first sample, which was at `sound_origin` on the
        file's clock (None: at this stream's first; a plan made before it was recorded).
        `from_zero`: the edited sound starts at time 0, as a sound file's does (and as an
        encoder's priming must, for a container's edit list to skip it), not where the input's
        first frame said (an MP3's decoder delay)."""
        self.mode = mode
        self.rate = rate
        self.layout = layout
        self.fade = round(FADE_S * rate)
        self.speech = speech
        self.sound_origin = sound_origin
        self.spans: list[Span] = []  # placed at the first frame, when this stream's start is known
        self.rng = np.random.default_rng(int.from_bytes(secret or secrets.token_bytes(16), "big"))
        # Interleaved samples, not a plane a channel: PyAV crashes turning an 8-plane frame into an
        # array or back.
        self.to_float = Converter(format="flt", rate=rate, layout=layout)
        self.channels = av.AudioLayout(layout).nb_channels
        self.encoder = encoder
        self.held = np.zeros((self.channels, 0), np.float32)
        self.arrived: list[np.ndarray] = []  # decoded after `held`, joined to it only when needed
        self.arrived_samples = 0
        self.held_at = 0  # sample position of held[:, 0]
        self.timeline = Timeline()
        self.from_zero = from_zero
        self.origin: int | None = None  # the pts of the stream's first sample in the output, in samples

    def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        if frame is not None:
            # Speech was found on the same timeline: a gap in the timestamps is silence here too.
            if gap := self.timeline.gap_before(frame) * self.rate // frame.sample_rate:
                self.arrived.append(np.zeros((self.channels, gap), np.float32))
                self.arrived_samples += gap
        try:
            converted_frames = self.to_float.resample(frame)
        except WiderSound as wider:
            raise widened(self.channels, wider) from None
        # Joined lazily: joining at every frame would copy a long segment over and over.
        for converted in converted_frames:
            self.arrived.append(converted.to_ndarray().reshape(-1, self.channels).T)
            self.arrived_samples += converted.samples
        if self.origin is None and (self.timeline.origin is not None or frame is None):
            # Where this stream starts is known at its first timestamp (frames before one are
            # held): the speech's place in it is found then, as detection found it.
            start = float(self.timeline.origin or 0)
            late = start - self.sound_origin if self.sound_origin is not None else 0.0
            # From zero, a track that starts after the sound's first sample keeps that delay.
            self.origin = round((late if self.from_zero else start) * self.rate)
            self._place(late)
        ready = self._edit(final=frame is None) if self.origin is not None else None
        out = [f for f in self.encoder.resample(ready)] if ready is not None else []
        return out + (self.encoder.resample(None) if frame is None else [])

    def _place(self, late: float) -> None:
        """The speech as spans of this stream's samples (it starts `late` seconds after the sound's
        first sample), fades included, joined where fades would overlap. A fade the sound's
        start or end cuts short stays outside the speech."""
        for start, end in self.speech:
            s, e = round((start - late) * self.rate), round((end - late) * self.rate)
            if e <= 0:
                continue  # before this stream begins
            s = max(s, 0)  # speech already under way when this stream begins: treated from its first sample
            if self.spans and s - self.fade <= self.spans[-1].b:
                last = self.spans[-1]
                self.spans[-1] = Span(last.a, last.s, max(e, last.e), max(e + self.fade, last.b))
            else:
                self.spans.append(Span(max(0, s - self.fade), s, e, e + self.fade))

    def _edit(self, final: bool) -> av.AudioFrame | None:
        """Edit what is held as far as it can be decided; return it as one frame (None: nothing yet)."""
        end = self.held_at + self.held.shape[1] + self.arrived_samples
        if not final and self.mode != "mute-all" and any(span.a <= self.held_at and span.a < end < span.b
                                                                 for span in self.spans):
            return None  # all that is held lies in a segment not yet complete
        self.held = np.concatenate([self.held, *self.arrived], axis=1)
        self.arrived, self.arrived_samples = [], 0
        if self.mode == "mute-all":
            self.held[:] = 0
            return self._emit(end)
        done = self.held_at
        for span in self.spans:
            if span.b <= done or span.a >= end:
                continue
            if span.b > end and not final:
                return self._emit(max(done, span.a))  # the segment is not complete yet: hold from its start
            a, b = max(span.a, done), min(span.b, end)
            self._treat(a - self.held_at, b - self.held_at, span)
            done = b
        return self._emit(end)

    def _treat(self, i: int, j: int, span: Span) -> None:
        """Mute or anonymise held[:, i:j], which lies in `span`: fully over its speech, faded
        in and out over the rest."""
        x = self.held[:, i:j]
        # Whole sample positions (int64): float32 cannot tell them apart past 2**24 (six minutes).
        at = np.arange(self.held_at + i, self.held_at + j, dtype=np.int64)
        rise = (at - span.a + 1) / (span.s - span.a + 1)
        fall = (span.b - at) / (span.b - span.e + 1)
        weight = np.clip(np.minimum(rise, fall), 0, 1).astype(np.float32)
        if self.mode == "anonymise":
            mono = x.mean(axis=0)
            y = resample(anonymise(resample(mono, self.rate, RATE), self.rng), RATE, self.rate)
            y = np.pad(y, (0, max(0, len(mono) - len(y))))[:len(mono)]
            y = y[None, :] * channel_levels(x, mono)
        else:
            y = np.zeros((1, j - i), np.float32)
        self.held[:, i:j] = x * (1 - weight) + y * weight

    def _emit(self, upto: int) -> av.AudioFrame | None:
        count = upto - self.held_at
        if count <= 0:
            return None
        block = np.ascontiguousarray(self.held[:, :count].T).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(block, format="flt", layout=self.layout)
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = (self.origin or 0) + self.held_at
        self.held = self.held[:, count:]
        self.held_at = upto
        return frame


@dataclass(frozen=True)
class VoicePlan:
    """What to do with one file's voices: the mode, and the speech segments it applies to."""

    mode: VoiceMode = "keep"
    speech: tuple[Segment, ...] = ()
    sound_origin: float | None = None  # where the segments' zero is on the file's clock (VoiceEdit)

    @property
    def edits(self) -> bool:
        return self.mode != "keep"

    @property
    def changes_sound(self) -> bool:
        """Whether the sound changes: all of it muted, or speech to treat. A video's sound with
        nothing to change is copied as it is: encoded again it would lose quality for nothing,
        and come out later by the encoder's delay where the container cannot mark it (AVI)."""
        return self.mode == "mute-all" or (self.edits and bool(self.speech))


def before_detection(mode: VoiceMode) -> VoicePlan:
    """The plan a check made before detection tries: which sound holds speech is not known yet,
    and sound with speech is the sound encoded again."""
    return VoicePlan(mode, ((0.0, 0.0),) if mode != "keep" else ())


def voice_plan(regions: list, mode: VoiceMode, sound_origin: float | None = None) -> VoicePlan:
    """The speech regions of a plan (those not kept audible by a reviewer) as segments, in time order:
    VoiceEdit walks them in order, and a segment a reviewer added comes last in the plan.
    `sound_origin`: the plan's record of where the sound's first sample is (`speech_regions`)."""
    return VoicePlan(mode, tuple(sorted((r.start, r.end) for r in regions
                                        if r.kind == "speech" and not r.keep_visible and r.start is not None)),
                     sound_origin)


def media_voice_plan(media, mode: VoiceMode) -> VoicePlan:
    """`voice_plan` for a file of a plan. A plan whose speech was found by a veil that did not
    record the sound's clock (before 2026-12-01) is refused for treating speech: that veil closed
    up gaps in the sound's timestamps and skipped sound stamped before zero, so its times can lie
    elsewhere than the sound they name."""
    record = media.speech_record()
    if mode in ("mute", "anonymise") and record and "sound_origin" not in record:
        raise SoundError("its plan's speech times were found by an older veil, on a clock that can differ from "
                         "the sound's: detect again (run veil on the file without the plan)")
    return voice_plan(media.regions, mode, record.get("sound_origin"))


# --- the edited stream's encoder ------------------------------------------------------------

# Sound codecs FFmpeg's muxer lists for a container but refuses when it writes the header (MOV
# takes Opus and FLAC only in its MP4 form).
CLAIMED_NOT_HELD = {("mov", "opus"), ("mov", "libopus"), ("mov", "flac")}  # codec and encoder names


# Sound codecs FFmpeg's muxer writes but does not list: its codec query answers with its own
# defaults only (for MPEG-TS, MP2: AAC and AC-3 there were encoded again, as AAC).
HELD_NOT_LISTED = {"ogg": {"opus", "vorbis", "flac", "speex"},
                   "mpegts": {"aac", "ac3", "eac3", "mp3", "opus"}}


def container_codecs(out: av.container.OutputContainer) -> set[str]:
    """The codecs an output container really holds: what its muxer lists, less CLAIMED_NOT_HELD,
    and HELD_NOT_LISTED."""
    listed = {codec for codec in out.supported_codecs if (out.format.name, codec) not in CLAIMED_NOT_HELD}
    return listed | HELD_NOT_LISTED.get(out.format.name, set())


SPEECH_ONLY_CODECS = {"amr_nb", "amr_wb"}

OPUS_CONTAINERS = {"webm", "ogg", "opus"}
# FFmpeg's Opus encoder opens for 5.0 and 6.1 too, but writes their channels to other speakers
# (the centre to a surround, as measured by tone); these it writes each where it belongs.
OPUS_FAITHFUL_LAYOUTS = {"mono", "stereo", "3.0", "quad", "5.1", "7.1"}

# FLV states a sound's rate in two bits: 5.5, 11, 22 or 44.1 kHz. FFmpeg wrote PCM at 8 and 16 kHz
# as a rate players read as 5.5 kHz, the sound played slow and low, exit 0, and refuses MP3 at
# those rates. AAC states its own rate, but FLV cannot mark its encoder's priming (1,024 samples),
# which below 22 kHz puts the sound more than 46 ms behind the picture.
FLV_RATES = {5512, 11025, 22050, 44100}
FLV_AAC_LOWEST_RATE = 22050


def rate_stated(out: av.container.OutputContainer, codec: str, rate: int) -> bool:
    """Whether the container can state the sound's rate for this codec (FLV: FLV_RATES, or AAC's own)."""
    return out.format.name != "flv" or rate in FLV_RATES or (codec == "aac" and rate >= FLV_AAC_LOWEST_RATE)


# Opus names five surround channels at the back only: 5.1(side), the layout of most films' AC-3,
# is written as 5.1 where no encoder the container takes holds it (WebM, .opus), the same six
# channels with the surrounds called back (FFmpeg's resampler moves each there, unmixed).
SURROUNDS_MOVED_BACK = {"5.1(side)": "5.1"}


def encoder_and_layout(codec: str, out: av.container.OutputContainer, rate: int, layout: str) -> tuple[str, str]:
    """The encoder for sound of `codec` in `out` (`audio_encoder`), and the layout it is written in:
    the input's, or its surrounds moved back (SURROUNDS_MOVED_BACK) where only that is held."""
    for each in (layout, SURROUNDS_MOVED_BACK.get(layout)):
        if each is not None and (name := audio_encoder(codec, out, rate, each)) is not None:
            return name, each
    # Said as the container's refusal (a ValueError, as PyAV's own), before the work.
    if out.format.name in OPUS_CONTAINERS:
        raise ValueError(f"no sound codec it takes holds {layout} with each channel in its place; FFmpeg's Opus "
                         "encoder puts 5.0's and 6.1's centre on another speaker")
    if not rate_stated(out, "aac", rate):
        raise ValueError(f"FLV states no sound rate of {rate} Hz: 5512, 11025, 22050 or 44100, and 22050 or more in "
                         "AAC, only")
    # Channels no encoder the container takes can hold (twelve in WebM) are refused when the
    # header is written: never mixed down unasked.
    return "aac", layout


def audio_encoder(codec: str, out: av.container.OutputContainer, rate: int, layout: str) -> str | None:
    """The input's codec where FFmpeg has a stable encoder the container takes; else Opus (WebM, Ogg),
    the container's own (FLAC for .flac, PCM for .wav, MP3 for .mp3), or AAC: the first of them that
    takes the sound's channels (Matroska's own, AC-3, holds at most 5.1); None if none does."""
    supported = container_codecs(out)
    # WAV can carry other codecs in name only: players expect PCM in it.
    own = [] if out.format.name == "wav" and not codec.startswith("pcm_") else [codec]
    # A phone call's codec (3GP's own, AMR) keeps speech at 12 kb/s and nothing else well.
    container_own = [] if out.default_audio_codec in SPEECH_ONLY_CODECS else [out.default_audio_codec]
    candidates = [*own, *(["libopus"] if out.format.name in OPUS_CONTAINERS else []), *container_own, "aac"]
    for name in candidates:
        try:
            encoder = av.codec.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        if not encoder.experimental and supported & {name, encoder.name, encoder.canonical_name} \
                and (encoder.name != "libopus" or layout in OPUS_FAITHFUL_LAYOUTS) \
                and rate_stated(out, encoder.canonical_name, nearest_rate(encoder, rate)) \
                and encoder_takes(encoder.name, rate, layout):
            return encoder.name
    return None


def nearest_rate(codec: av.codec.Codec, rate: int) -> int:
    """`rate`, or the encoder's nearest where it takes only some."""
    rates = codec.audio_rates
    return rate if not rates or rate in rates else min(rates, key=lambda r: abs(r - rate))


def encoder_takes(name: str, rate: int, layout: str) -> bool:
    """Whether the encoder opens for this channel layout, at `rate` or its nearest (Opus takes 5.1
    but not 2.1; AC-3 no more than 5.1)."""
    codec = av.codec.Codec(name, "w")
    context = av.CodecContext.create(name, "w")
    context.sample_rate, context.format, context.layout = nearest_rate(codec, rate), codec.audio_formats[0].name, layout
    try:
        context.open()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def add_edited_stream(out: av.container.OutputContainer, audio: av.audio.stream.AudioStream, voice: VoicePlan,
                      from_zero: bool = False) -> tuple[av.audio.stream.AudioStream, VoiceEdit]:
    """An output stream for `audio` re-encoded after its voices are edited, and the edit that feeds it
    (`from_zero`: see VoiceEdit)."""
    stream = add_encoded_stream(out, audio)
    if stream.codec_context.name == "aac" and voice.mode == "anonymise":
        # Anonymised speech is one waveform in every channel (at the channel's level): with little
        # to code in the side channel, the mid/side search, unable to spend its bit rate, codes
        # each frame again and again.
        # Without it, speech and the sound around it are coded a little less faithfully at the
        # same bit rate (bench/README.md).
        stream.options = {**stream.options, "aac_ms": "0"}
    cc = audio.codec_context
    encoder = av.AudioResampler(format=stream.format.name, layout=stream.layout, rate=stream.rate)
    return stream, VoiceEdit(voice.mode, list(voice.speech), cc.sample_rate, cc.layout.name, encoder,
                             from_zero=from_zero, sound_origin=voice.sound_origin)


def add_encoded_stream(out: av.container.OutputContainer, audio: av.audio.stream.AudioStream) -> av.audio.stream.AudioStream:
    """An output stream `audio` is encoded again into (its voices edited, or a container that
    cannot hold it as it is): the input's codec where the container takes it, else the
    container's own (`audio_encoder`), at the input's rate, channels, depth and quality where
    the encoder has them."""
    cc = audio.codec_context
    # canonical: FFmpeg names some decoders apart from their codec (mp3float for MP3)
    name, layout = encoder_and_layout(cc.codec.canonical_name, out, cc.sample_rate, output_layout(cc.layout))
    codec = av.codec.Codec(name, "w")
    rate = nearest_rate(codec, cc.sample_rate)
    stream = add_sound_stream(out, name, rate, layout)
    fmt = codec.audio_formats[0].name
    # Sample formats differ per codec (FLAC: s16 or s32): keep the input's depth where the encoder has it.
    names = {f.name for f in codec.audio_formats}
    if cc.format.name in names:
        fmt = cc.format.name
    elif cc.format.name.rstrip("p") in names or cc.format.name + "p" in names:
        fmt = next(n for n in (cc.format.name.rstrip("p"), cc.format.name + "p") if n in names)
    stream.format = fmt
    if codec.lossy:
        # The input's quality, not the encoder's default; from lossless sound (WAV, FLAC), a rate
        # that keeps speech and music faithful (the input's, 768 kb/s for 16-bit 48 kHz stereo PCM,
        # is more than encoders take).
        wanted = cc.bit_rate if cc.bit_rate and cc.codec.lossy else LOSSLESS_INTO_LOSSY * stream.layout.nb_channels
        if (taken := bit_rate_taken(name, rate, stream.layout.name, fmt, wanted)) is not None:
            stream.bit_rate = taken
    if name == "aac":
        # FFmpeg's default AAC search (twoloop) took most of the time of an anonymised export.
        stream.options = {"aac_coder": "fast"}
    return stream


# Bit rates (b/s) MPEG audio layers and AC-3 are coded at: an encoder of a fixed table (MP2) refuses others.
STANDARD_BIT_RATES = tuple(k * 1000 for k in (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384))


def bit_rate_taken(name: str, rate: int, layout: str, fmt: str, wanted: int) -> int | None:
    """The bit rate to ask of the encoder: `wanted` where it opens with it (as it says it took it;
    some write the nearest rate of their own table), else the nearest standard rate above it
    (below if none above opens); None: the encoder's own."""
    above = [r for r in STANDARD_BIT_RATES if r > wanted]
    below = [r for r in reversed(STANDARD_BIT_RATES) if r < wanted]
    for bit_rate in (wanted, *above, *below):
        context = av.CodecContext.create(name, "w")
        context.sample_rate, context.format, context.layout, context.bit_rate = rate, fmt, layout, bit_rate
        try:
            context.open()
        except (av.error.FFmpegError, ValueError):
            continue
        return context.bit_rate
    return None


def add_sound_stream(out: av.container.OutputContainer, codec: str, rate: int, layout: str) -> av.audio.stream.AudioStream:
    """A sound stream to encode into: bitexact, or FFmpeg's AAC encoder writes its name and version
    ("Lavc...") into the sound."""
    stream = out.add_stream(codec, rate=rate)
    stream.layout = layout
    stream.codec_context.flags |= av.codec.context.Flags.bitexact
    return stream


def sound_written_as(encoded: dict[int, tuple[av.audio.stream.AudioStream, Any]],
                     source: av.container.InputContainer) -> list[dict[str, Any]]:
    """How each sound stream veil encoded again (index in `source`: its output stream and the
    resampler or VoiceEdit feeding it) was written, for the plan and report: its codec, the bit
    rate asked of the encoder (None: the codec is lossless, or the encoder chose; sound that is
    easy to code, silence above all, takes less), rate, channels (and the input's, where its
    surrounds were moved back: `encoder_and_layout`), and whether its voices were edited (else
    the container could not hold it as it was)."""
    written = []
    for index, (stream, feed) in sorted(encoded.items()):
        given = source.streams[index].codec_context.layout.name
        moved = {"layout_moved_from": given} if SURROUNDS_MOVED_BACK.get(given) == stream.layout.name else {}
        written.append({"stream": index, "codec": stream.codec_context.codec.canonical_name,
                        "bit_rate_asked": stream.bit_rate or None, "sample_rate": stream.rate,
                        "layout": stream.layout.name, **moved, "voices_edited": isinstance(feed, VoiceEdit)})
    return written


def channels_read_back(source: av.container.InputContainer, written: Path) -> list[dict[str, Any]]:
    """The sound streams whose channels the written file names otherwise than veil wrote them: FLAC
    in Ogg names three channels left, right, centre (a 2.1's LFE reads back as a centre), Matroska
    names PCM's by their count alone. The same channels, in order, which a player may put on other
    speakers: each as {"stream": its index in `source`, "given": its layout, "reads_back_as": ...}.
    Output sound streams are in the input's order (`videofile._add_audio`, `audio._open_output`)."""
    with open_local(written) as output:
        read = [stream.codec_context.layout for stream in output.streams.audio]
    # A bare count reads as the layout players assume for it (COUNT_LAYOUTS): "1 channels" is
    # mono, and "2 channels" stereo, on the same speakers.
    return [{"stream": given.index, "given": given.codec_context.layout.name, "reads_back_as": back.name}
            for given, back in zip(source.streams.audio, read)
            if back.name not in (given.codec_context.layout.name, output_layout(given.codec_context.layout),
                                 SURROUNDS_MOVED_BACK.get(given.codec_context.layout.name))
            and not (back.name == f"{back.nb_channels} channels"
                     and COUNT_LAYOUTS.get(back.nb_channels) == given.codec_context.layout.name)]


# The layout FFmpeg's own command line assumes for a bare channel count (av_channel_layout_default).
COUNT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def output_layout(layout: av.AudioLayout) -> str:
    """The input's channel layout, named as encoders take it: a WAV file often gives only a
    channel count ("6 channels"), which AAC, MP3, Opus and MP4 refuse; it is then named as
    FFmpeg's command line names it (the channels' order is WAV's default one)."""
    if layout.name == f"{layout.nb_channels} channels" and layout.nb_channels in COUNT_LAYOUTS:
        return COUNT_LAYOUTS[layout.nb_channels]
    return layout.name


VOICE_TEXT: dict[str, str] = {
    "keep": "kept: voices in the sound are NOT protected",
    "mute": "speech muted (with 30 ms fades outside each segment); other sound kept",
    "mute-all": "all sound muted",
    "anonymise": (f"speech with its pitch and formants scaled by a factor of {PITCH[0]}-{PITCH[1]} up or down, then "
                  "its spectral envelope moved and tilted (McAdams coefficient, vocal-tract warp, frequency map, "
                  "tilt), at random for every segment of this export, not kept; words, intonation, accent and "
                  "background remain"),
}


def silent(media) -> bool:
    """Whether a video was searched for speech and found to have no sound (`pipeline._add_speech`);
    a plan made before veil looked for speech has no record either way."""
    return media.kind == "video" and bool(media.detection.get("no_sound"))


def spoken_seconds(regions: list, sound_seconds: float | None) -> float:
    """The time speech regions span, each second counted once (segments added by hand may overlap)
    and none past the sound's end."""
    spans = join([(max(r.start, 0.0), r.end if sound_seconds is None else min(r.end, sound_seconds))
                  for r in regions], 0.0)
    return sum(max(b - a, 0.0) for a, b in spans)


def voice_entry(media, mode: VoiceMode, written: bool = True) -> dict:
    """The report's account of a file's speech: how much, where, what was done to it, and which segments
    a reviewer left audible and why (the same choice `voice_plan` makes at render). Where no output
    was `written` (a failed file, a dry run), nothing was treated: the segments are those planned."""
    record = media.detection.get("speech")
    speech = sorted((r for r in media.regions if r.kind == "speech" and r.start is not None), key=lambda r: r.start)
    # mute-all silences the whole sound: a segment kept audible is muted all the same.
    kept = [r for r in speech if r.keep_visible and mode != "mute-all"]
    acted_on = [r for r in speech if r not in kept]
    speech_treated = spoken_seconds(acted_on, (record or {}).get("sound_seconds"))
    if silent(media) or media.kind in ("image", "animation"):
        treatment, treated_seconds = "none: it has no sound", 0.0
    elif not written:
        treatment, treated_seconds = "none: no output was written", 0.0
    elif mode == "keep":
        treatment, treated_seconds = "not protected", 0.0
    elif mode == "mute-all":  # the whole sound
        treatment, treated_seconds = "muted (all sound)", (record or {}).get("sound_seconds", speech_treated)
    elif not acted_on:
        treatment, treated_seconds = ("none: every segment kept audible" if speech else "none: no speech found"), 0.0
    else:
        treatment, treated_seconds = {"mute": "muted", "anonymise": "anonymised"}[mode], speech_treated
    # The plan's segments are seconds from the sound's first sample; an auditor checks them in a
    # player, which counts from the file's start, where a video's sound may start seconds later.
    origin = (record or {}).get("sound_origin", 0.0) - media.file_start() if media.kind == "video" else 0.0

    def on_clock(seconds: float) -> float:
        return round(seconds + origin, 3)

    return {"mode": mode, "speech_seconds": record["speech_seconds"] if record else None,
            # Speech found on any stream is treated on every one (a dub carries the same voice).
            # Absent from a plan made before it was recorded.
            "sound_streams": (record or {}).get("sound_streams"),
            # Where the speech the mode acts on lies (kept as it was, where the voices are); mute-all
            # treats the whole sound, these segments and all between them.
            "segments": [[on_clock(r.start), on_clock(r.end)] for r in acted_on],
            "treated_seconds": round(treated_seconds, 3),
            "added_by_reviewer": [r.id for r in speech if r.source == "reviewer"],
            "kept_audible": [{"id": r.id, "start": on_clock(r.start), "end": on_clock(r.end), "reason": r.reason}
                             for r in kept],
            "times": "seconds from the file's start, as a player shows them"
                     + (f" (its sound starts at {origin:g} s)" if origin else ""),
            "treatment": treatment, **({"anonymiser": anonymiser_record()} if mode == "anonymise" else {})}
