"""Voice anonymisation against a speaker-recognition attacker; speech detection for muting.

    /tmp/voice/bvenv/bin/python bench/voice.py            # see bench/README.md for the venv and the model
    PYTHONPATH=src python bench/voice.py --detection-only   # speech detection (--voice mute) alone, ~1 min

Attacker: resemblyzer's GE2E speaker encoder (exported once by tools/export_resemblyzer.py to
bench/models/resemblyzer_ge2e.onnx), fed a 40-band mel power spectrogram computed here in numpy
as librosa computes it. Data: ../shared/data/speech, 6 LibriSpeech readers x 10 utterances
(enrolment: utterances 0-4 averaged; probes: 5-9) and 16 one-utterance distractor readers.

- ignorant attacker: enrols clean speech, probes anonymised speech;
- lazy-informed attacker: enrols speech anonymised by the same method in another export.
Verification EER over every probe x enrolled reader trial plus every distractor x reader trial
(chance 50%); rank-1 identification of each probe among the 6 readers and 16 distractors
(chance 1/22), beside its identity-free null (the probes' speakers shuffled: see rank1_with_null).
Intelligibility: pocketsphinx's word error rate against its own transcript of
the original (so the original scores 0), and STOI against the original. Speed: CPU seconds per
second of 16 kHz speech, as a multiple of real time.
"""

from __future__ import annotations

import argparse
import csv
import functools
import time
from pathlib import Path

import veil  # noqa: F401 -- before onnxruntime: veil switches its telemetry off before it loads
import av
import numpy as np
import onnxruntime as ort

from veil import voice
from veil.speech import find_speech

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speech"
MODEL = ROOT / "bench" / "models" / "resemblyzer_ge2e.onnx"
RATE = 16000


# --- the attacker ---------------------------------------------------------------------------

def _mel_filters(n_fft: int = 400, n_mels: int = 40) -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): Slaney's mel scale and area normalisation."""
    def to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, float)
        return np.where(f < 1000, f / (200 / 3), 15 + np.log(np.maximum(f, 1e-9) / 1000) / (np.log(6.4) / 27))

    def to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m < 15, m * 200 / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))

    freqs = np.linspace(0, RATE / 2, 1 + n_fft // 2)
    mel_f = to_hz(np.linspace(to_mel(0), to_mel(RATE / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


MEL = _mel_filters()


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power, 25 ms Hann windows every 10 ms, centred (reflect padding), as resemblyzer's."""
    padded = np.pad(wav, 200, mode="reflect")
    count = 1 + len(wav) // 160
    frames = padded[np.arange(count)[:, None] * 160 + np.arange(400)[None, :]]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    power = np.abs(np.fft.rfft(frames * window, 400)) ** 2
    return (power @ MEL.T).astype(np.float32)


class Attacker:
    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """resemblyzer's embed_utterance: 1.6 s partials at 1.3 per second, volume raised to -30 dBFS."""
        rms = np.sqrt(np.mean(wav ** 2))
        gain = 10 ** ((-30 - 20 * np.log10(max(rms, 1e-9))) / 20)
        wav = wav * max(gain, 1.0)
        step = int(round(RATE / 1.3 / 160))
        n_frames = int(np.ceil((len(wav) + 1) / 160))
        starts = list(range(0, max(1, n_frames - 160 + step + 1), step))
        if len(starts) > 1 and (len(wav) - starts[-1] * 160) / (160 * 160) < 0.75:
            starts = starts[:-1]
        wav = np.pad(wav, (0, max(0, (starts[-1] + 160) * 160 - len(wav))))
        mel = mel_spectrogram(wav)
        partials = np.stack([mel[s:s + 160] for s in starts])
        raw = self.session.run(None, {"mels": partials})[0].mean(axis=0)
        return raw / np.linalg.norm(raw)


# --- candidates -----------------------------------------------------------------------------

def mcadams(x: np.ndarray, rng: np.random.Generator, warps: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The VoicePrivacy baseline: the voice's own residual through formants moved by alpha in [0.5, 0.9]
    (and, with `warps`, every pole angle then scaled by a factor drawn log-uniformly between them)."""
    frames = voice._frames(x.astype(np.float64))
    a, _ = voice._lpc(frames)
    alpha = float(rng.uniform(0.5, 0.9))
    moved = voice._mcadams(voice._poles(a), alpha, float(np.exp(rng.uniform(*np.log(warps)))))
    window = np.sqrt(np.hanning(voice.FRAME + 1)[:-1])
    spectrum = np.fft.rfft(frames * window, voice.NFFT) * np.fft.rfft(a, voice.NFFT) / np.fft.rfft(moved, voice.NFFT)
    return voice._overlap_add(np.fft.irfft(spectrum, voice.NFFT)[:, :voice.FRAME] * window, len(x))


def whisper(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise-excited LPC: moved formants, no pitch at all."""
    frames = voice._frames(x.astype(np.float64))
    a, _ = voice._lpc(frames)
    moved = voice._mcadams(voice._poles(a), float(rng.uniform(0.7, 0.9)))
    window = np.sqrt(np.hanning(voice.FRAME + 1)[:-1])
    source = voice._frames(rng.standard_normal(len(x)))
    shaped = np.fft.rfft(source * window, voice.NFFT) / np.fft.rfft(moved, voice.NFFT)
    target = (np.abs(np.fft.rfft(frames * window, voice.NFFT)) ** 2).sum(axis=1)
    shaped *= np.sqrt(target / np.maximum((np.abs(shaped) ** 2).sum(axis=1), 1e-20))[:, None]
    return voice._overlap_add(np.fft.irfft(shaped, voice.NFFT)[:, :voice.FRAME] * window, len(x))


# Envelope edits: each frame's LPC log-envelope is changed and the frame refiltered by the ratio
# (zero phase), so the voice's own residual (pitch, timing) is kept. Frequencies below run over
# [0, 1] = [0, 8 kHz].

GRID = np.linspace(0, 1, voice.NFFT // 2 + 1)
KNOTS = np.array([0, 300, 700, 1200, 2000, 3000, 4500, 8000]) / 8000  # roughly where F1..F5 can lie


def _refilter(x: np.ndarray, edit, a_of=None) -> np.ndarray:
    """x refiltered so that each frame's LPC log-envelope becomes edit(log_env) (frames x bins)."""
    frames = voice._frames(x.astype(np.float64))
    a, _ = voice._lpc(frames)
    log_env = -np.log(np.abs(np.fft.rfft(a, voice.NFFT)))
    start = log_env if a_of is None else -np.log(np.abs(np.fft.rfft(a_of(a), voice.NFFT)))
    window = np.sqrt(np.hanning(voice.FRAME + 1)[:-1])
    gain = np.exp(edit(start) - log_env)
    spectrum = np.fft.rfft(frames * window, voice.NFFT) * gain
    return voice._overlap_add(np.fft.irfft(spectrum, voice.NFFT)[:, :voice.FRAME] * window, len(x))


def _warp_map(rng: np.random.Generator, spread: float, frames: int = 1, drift: float = 0.0) -> np.ndarray:
    """A monotonic piecewise-linear frequency map per frame (frames x bins): each knot moved by its own
    log-uniform factor in [1/spread, spread]; with drift, the factors wander (new ones every 0.5 s)."""
    def factors(count: int) -> np.ndarray:
        return np.exp(rng.uniform(-np.log(spread), np.log(spread), (count, len(KNOTS))))

    if drift and frames > 1:
        anchors = max(2, frames // 50 + 2)
        base = factors(1) * np.exp(rng.uniform(-np.log(drift), np.log(drift), (anchors, len(KNOTS))))
        f = np.stack([np.interp(np.arange(frames), np.linspace(0, frames - 1, anchors), base[:, k])
                      for k in range(len(KNOTS))], axis=1)
    else:
        f = np.repeat(factors(1), frames, axis=0)
    out = np.minimum(KNOTS[None, :] * f, 1.0)
    out[:, -1] = 1.0
    out = np.maximum.accumulate(out, axis=1) + np.arange(len(KNOTS)) * 1e-6  # strictly increasing
    return np.stack([np.interp(GRID, KNOTS, row) for row in out])


def _apply_map(log_env: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """log_env moved along frequency: the value at f goes to map(f)."""
    rows = maps if len(maps) == len(log_env) else np.repeat(maps, len(log_env), axis=0)
    return np.stack([np.interp(GRID, m, e) for m, e in zip(rows, log_env)])


def _colour(rng: np.random.Generator, depth: float, terms: int = 4) -> np.ndarray:
    """A drawn smooth log-gain over frequency (a 'target' envelope shape): cosines, zero mean."""
    c = rng.uniform(-depth, depth, terms)
    return sum(c[k] * np.cos(np.pi * (k + 1) * GRID) for k in range(terms))


def _flatten(log_env: np.ndarray, keep: float) -> np.ndarray:
    """Formant peaks and valleys scaled by `keep` around each frame's mean (broader formants)."""
    mean = log_env.mean(axis=1, keepdims=True)
    return mean + keep * (log_env - mean)


def _mcadams_warp(rng: np.random.Generator):
    alpha = float(rng.uniform(0.5, 0.9))
    warp = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    return lambda a: voice._mcadams(voice._poles(a), alpha, warp)


def piecewise_warp(x: np.ndarray, rng: np.random.Generator, spread: float = 1.3) -> np.ndarray:
    maps = _warp_map(rng, spread)
    return _refilter(x, lambda e: _apply_map(e, maps))


def mcadams_piecewise(x: np.ndarray, rng: np.random.Generator, spread: float = 1.25) -> np.ndarray:
    moved = _mcadams_warp(rng)
    maps = _warp_map(rng, spread)
    return _refilter(x, lambda e: _apply_map(e, maps), moved)


def mcadams_colour(x: np.ndarray, rng: np.random.Generator, depth: float = 1.0) -> np.ndarray:
    moved = _mcadams_warp(rng)
    colour = _colour(rng, depth)
    return _refilter(x, lambda e: e + colour, moved)


def mcadams_flatten(x: np.ndarray, rng: np.random.Generator, keep: float = 0.6, depth: float = 1.0) -> np.ndarray:
    moved = _mcadams_warp(rng)
    keep = float(rng.uniform(keep - 0.1, keep + 0.1))
    colour = _colour(rng, depth)
    return _refilter(x, lambda e: _flatten(e, keep) + colour, moved)


def mcadams_piecewise_colour(x: np.ndarray, rng: np.random.Generator, spread: float = 1.25,
                             depth: float = 1.0, drift: float = 0.0) -> np.ndarray:
    moved = _mcadams_warp(rng)
    n = len(voice._frames(x))
    maps = _warp_map(rng, spread, n, drift)
    colour = _colour(rng, depth)
    return _refilter(x, lambda e: _apply_map(e, maps) + colour, moved)


def _stretch(x: np.ndarray, length: int) -> np.ndarray:
    """x brought to `length` samples without changing its pitch (WSOLA: 40 ms grains every 20 ms, each
    the one within +-10 ms of its nominal place that best continues the last)."""
    grain, hop, tolerance = 640, 320, 160
    window = np.hanning(grain + 1)[:-1]  # periodic Hann: grains half a grain apart sum to one
    x = np.pad(x, (round(hop * len(x) / length), 0))  # a grain before the start: the first is faded in
    length += hop
    count = length // hop + 2
    padded = np.pad(x, (tolerance, grain + tolerance + int(count * hop * len(x) / length)))
    out = np.zeros(count * hop + grain)
    previous = tolerance
    for k in range(count):
        nominal = tolerance + int(k * hop * len(x) / length)
        if k:
            natural = padded[previous + hop:previous + hop + grain]
            region = padded[nominal - tolerance:nominal + tolerance + grain]
            energy = np.cumsum(np.concatenate([[0.0], region ** 2]))
            fit = np.correlate(region, natural, "valid") / np.sqrt(energy[grain:] - energy[:-grain] + 1e-9)
            nominal += int(np.argmax(fit)) - tolerance
        out[k * hop:k * hop + grain] += padded[nominal:nominal + grain] * window
        previous = nominal
    return out[hop:length]


def _pitch(x: np.ndarray, rng: np.random.Generator, low: float = 1.1, high: float = 1.4) -> np.ndarray:
    """x with its pitch and envelope scaled by a factor drawn in [low, high] or its inverse, same length."""
    factor = float(np.exp(rng.uniform(np.log(low), np.log(high)) * rng.choice([-1, 1])))
    rate = int(round(RATE / factor / 100) * 100)
    return _stretch(voice.resample(x, RATE, rate), len(x))


def _mcadams_wide(rng: np.random.Generator):
    alpha = float(rng.uniform(0.4, 0.9))
    warp = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    return lambda a: voice._mcadams(voice._poles(a), alpha, warp)


def _gate(y: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """y silenced where it is quieter than floor_db under its loud frames (the room's noise floor, a
    cue to the recording), faded over 10 dB."""
    level = 10 * np.log10(np.mean(voice._frames(y) ** 2, axis=1) + 1e-12)
    gain = np.clip((level - np.percentile(level, 95) - floor_db) / 10, 0, 1)
    return y * np.interp(np.arange(len(y)), np.arange(len(gain)) * voice.HOP - voice.HOP, gain)


def strong(x: np.ndarray, rng: np.random.Generator, spread: float = 1.3, depth: float = 1.5,
           ripple: float = 0.0) -> np.ndarray:
    moved = _mcadams_wide(rng)
    maps = _warp_map(rng, spread)
    colour = _colour(rng, depth) + (_colour(rng, ripple, 16) if ripple else 0)
    return _refilter(x, lambda e: _apply_map(e, maps) + colour, moved)


def _redrawn(x: np.ndarray, shifted: np.ndarray, new_envelope, frame_level: float = 0.0,
             smooth: int = 1) -> np.ndarray:
    """As veil's anonymise refilters (one draw, no redraws, no hold on pauses): `shifted` (x, or x at another pitch) with
    each frame's LPC envelope replaced by new_envelope(frames, lpc) (log, frames x bins), zero phase,
    at x's loudness. `frame_level` 1: each frame's gain brought back to 0 dB (the refiltered frame as
    loud as the shifted one), 0.5: halfway in dB, 0: not at all; the correction averaged over
    `smooth` frames (10 ms apart)."""
    frames = voice._frames(shifted.astype(np.float64))
    a, _ = voice._lpc(frames)
    window = np.sqrt(np.hanning(voice.FRAME + 1)[:-1])
    windowed = np.fft.rfft(frames * window, voice.NFFT)
    gain = np.exp(new_envelope(frames, a) + np.log(np.abs(np.fft.rfft(a, voice.NFFT))))
    if frame_level:
        power = np.abs(windowed) ** 2
        log_ratio = 0.5 * (np.log(power.sum(axis=1) + 1e-20) - np.log((power * gain ** 2).sum(axis=1) + 1e-20))
        log_ratio = np.convolve(log_ratio, np.ones(smooth) / smooth, mode="same")
        gain = gain * np.exp(frame_level * log_ratio)[:, None]
    y = voice._overlap_add(np.fft.irfft(windowed * gain, voice.NFFT)[:, :voice.FRAME] * window, len(x))
    return (y * np.sqrt(np.mean(x ** 2) / max(float(np.mean(y ** 2)), 1e-20))).astype(x.dtype)


def anonymise_ltas(x: np.ndarray, rng: np.random.Generator, keep_tilt: bool = True) -> np.ndarray:
    """veil's anonymise without its pitch shift, with the segment's long-term envelope (the loudness-weighted
    mean of its frames' new envelopes) taken out before the drawn tilt goes on: only the frame-to-frame moves
    (the words) stay of the voice's own average spectrum. `keep_tilt`: its straight-line slope stays."""
    if len(x) < voice.FRAME:
        return np.zeros_like(x)

    def envelope(frames: np.ndarray, a: np.ndarray) -> np.ndarray:
        drawn = voice.draw(rng)
        colour = sum(c * np.cos(np.pi * (k + 1) * GRID) for k, c in enumerate(drawn.colour))
        moved = voice._envelope(drawn, voice._poles(a)) - colour
        weight = np.mean(frames ** 2, axis=1)
        mean = (weight[:, None] * moved).sum(axis=0) / max(weight.sum(), 1e-20)
        shape = mean - (np.polyval(np.polyfit(GRID, mean, 1), GRID) if keep_tilt else mean.mean())
        return moved - shape + colour

    return _redrawn(x, x, envelope)


def pitch_only_anonymise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """veil's anonymise with a pure pitch shift: the shifted signal's excitation under the envelope
    drawn from the original's poles (formants not scaled by the resampling). One draw, no redraws."""
    if len(x) < voice.FRAME:
        return np.zeros_like(x)
    shifted = voice.shift_pitch(x, voice.draw_pitch(rng))
    poles = voice._poles(voice._lpc(voice._frames(x.astype(np.float64)))[0])
    return _redrawn(x, shifted, lambda frames, a: voice._envelope(voice.draw(rng), poles))


def median_f0(x: np.ndarray) -> float | None:
    """The median pitch (Hz) of x's voiced 40 ms frames by normalised autocorrelation (60-400 Hz), or None."""
    size, hop = 640, 160
    if len(x) < size:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), size)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames ** 2).sum(axis=1)
    loud = frames[energy > 0.25 * np.percentile(energy, 90)]
    if len(loud) == 0:
        return None
    spectrum = np.fft.rfft(loud, 2 * size)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[:, :size]
    lags = np.arange(RATE // 400, RATE // 60)
    norm = ac[:, lags] / np.maximum(ac[:, :1], 1e-12) * size / (size - lags)
    best = norm.argmax(axis=1)
    voiced = norm[np.arange(len(norm)), best] > 0.5
    return float(np.median(RATE / lags[best[voiced]])) if voiced.sum() >= 5 else None


def f0_to_drawn(x: np.ndarray, rng: np.random.Generator, low: float = 110.0, high: float = 230.0) -> np.ndarray:
    """x's pitch (and formants) scaled so its median pitch lands on a value drawn in [low, high] Hz,
    whatever the speaker's own: the output's pitch says nothing of the input's (factor within 1/1.8-1.8)."""
    f0 = median_f0(x)
    target = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    factor = voice.draw_pitch(rng) if f0 is None else float(np.clip(target / f0, 1 / 1.8, 1.8))
    return voice.shift_pitch(x, factor)


def wider_draws(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """veil's anonymise (pitch shift, then one envelope draw, no redraws) with wider envelope draws:
    McAdams alpha 0.3-0.9, warp 0.6-1.6, knots moved up to 1.4x, tilt weights up to 2 nepers."""
    if len(x) < voice.FRAME:
        return np.zeros_like(x)
    pitch = voice.draw_pitch(rng)

    def envelope(frames: np.ndarray, a: np.ndarray) -> np.ndarray:
        while True:
            alpha, warp = float(rng.uniform(0.3, 0.9)), float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
            if voice._moves_formants(pitch, alpha, warp):
                break
        drawn = voice.VoiceDraw(alpha=alpha, warp=warp,
                                knots=tuple(np.exp(rng.uniform(-np.log(1.4), np.log(1.4), len(voice.KNOTS))).tolist()),
                                colour=tuple(rng.uniform(-2.0, 2.0, 4).tolist()))
        return voice._envelope(drawn, voice._poles(a))

    return _redrawn(x, voice.shift_pitch(x, pitch), envelope)


def frame_level(x: np.ndarray, rng: np.random.Generator, keep: float = 1.0, smooth: int = 1) -> np.ndarray:
    """veil's anonymise (pitch shift, then one envelope draw, no redraws) with each frame's loudness
    change taken back by `keep` (in dB; 1: all of it), averaged over `smooth` frames."""
    if len(x) < voice.FRAME:
        return np.zeros_like(x)
    pitch = voice.draw_pitch(rng)
    return _redrawn(x, voice.shift_pitch(x, pitch), lambda frames, a: voice._envelope(voice.draw(rng, pitch),
                    voice._poles(a)), keep, smooth)


def with_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """A control, not a candidate: x with white noise snr_db under its power (no identity hidden), to
    show how far pocketsphinx's transcript moves for a change that leaves every word clear."""
    return x + rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))


# --- WORLD (pyworld) resynthesis ---------------------------------------------------------------
# Analysis at 16 kHz (DIO or Harvest + StoneMask pitch, CheapTrick envelope, D4C aperiodicity, 5 ms
# frames), then resynthesis with a drawn pitch contour and a drawn envelope. Envelope moves use the
# same convention as the LPC candidates: the value at frequency f goes to map(f).

WORLD_PERIOD = 5.0


def _world_analysis(x: np.ndarray, harvest: bool = False):
    import pyworld as pw
    x = np.ascontiguousarray(x, np.float64)
    track = pw.harvest if harvest else pw.dio
    f0, t = track(x, RATE, f0_floor=60.0, f0_ceil=500.0, frame_period=WORLD_PERIOD)
    f0 = pw.stonemask(x, f0, t, RATE)
    return f0, pw.cheaptrick(x, f0, t, RATE), pw.d4c(x, f0, t, RATE)


def _world_synthesis(f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, length: int) -> np.ndarray:
    import pyworld as pw
    y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap), RATE,
                      WORLD_PERIOD)
    return np.pad(y, (0, max(0, length - len(y))))[:length]


def _flatten_f0(f0: np.ndarray, keep: float, ratio: float) -> np.ndarray:
    """Voiced frames' log-pitch pulled towards its mean (excursions x keep), then scaled by ratio."""
    voiced = f0 > 0
    if not voiced.any():
        return f0
    log = np.log(np.where(voiced, f0, 1.0))
    mean = log[voiced].mean()
    return np.where(voiced, np.clip(np.exp(mean + keep * (log - mean)) * ratio, 50.0, 600.0), 0.0)


def _at(table: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each row of table (frames x bins over [0, 1] = [0, Nyquist]) read at the positions `source` (bins,
    in [0, 1]), linear interpolation; beyond 1 the last bin."""
    bins = table.shape[1]
    pos = np.clip(source, 0, 1) * (bins - 1)
    lo = np.minimum(pos.astype(int), bins - 2)
    frac = pos - lo
    return table[:, lo] * (1 - frac) + table[:, lo + 1] * frac


def _allpass_source(alpha: float, bins: int) -> np.ndarray:
    """Where each bin's new value is read from under the bilinear (all-pass) warp of alpha: w -> w +
    2 atan(alpha sin w / (1 - alpha cos w)), as fractions of Nyquist. alpha > 0 reads from higher
    frequencies (formants move down), alpha < 0 the reverse."""
    w = np.linspace(0, np.pi, bins)
    return (w + 2 * np.arctan(alpha * np.sin(w) / (1 - alpha * np.cos(w)))) / np.pi


def _knot_source(rng: np.random.Generator, spread: float, bins: int) -> np.ndarray:
    """veil's piecewise knot map (each knot moved by a factor in [1/spread, spread]), as read positions."""
    moved = np.minimum(KNOTS * np.exp(rng.uniform(-np.log(spread), np.log(spread), len(KNOTS))), 1.0)
    moved[-1] = 1.0
    moved = np.maximum.accumulate(moved) + np.arange(len(KNOTS)) * 1e-6
    return np.interp(np.linspace(0, 1, bins), moved, KNOTS)


def _draw_alpha(rng: np.random.Generator, low: float = 0.08, high: float = 0.2) -> float:
    return float(rng.uniform(low, high) * rng.choice([-1, 1]))


def world(x: np.ndarray, rng: np.random.Generator, pitch: bool = True, keep: tuple[float, float] = (0.3, 0.7),
          warp: str | None = "allpass", scale: bool = False, depth: float = 0.0, warp_ap: bool = True,
          harvest: bool = False, then_envelope: bool = False) -> np.ndarray:
    """WORLD resynthesis with drawn changes. `pitch`: the pitch contour's excursions kept by a factor drawn
    in `keep` (0: monotone) and the whole scaled by a ratio drawn as veil's (1.2-1.6 or its inverse);
    `scale`: the envelope also scaled along frequency by that ratio (what resampling does); `warp`:
    "allpass" (alpha in +-[0.08, 0.2]) or "knots" (veil's piecewise map, 1.3) or None; `depth`: a
    drawn smooth tilt (4 cosines, up to depth nepers each); `warp_ap`: the aperiodicity moved as the
    envelope; `then_envelope`: the result then through veil's envelope draws (its anonymise without
    its pitch shift)."""
    if len(x) < voice.FRAME:
        return np.zeros_like(x)
    f0, sp, ap = _world_analysis(x, harvest)
    bins = sp.shape[1]
    grid = np.linspace(0, 1, bins)
    source = grid
    if pitch:
        ratio = voice.draw_pitch(rng)
        f0 = _flatten_f0(f0, float(rng.uniform(*keep)), ratio)
        if scale:
            source = grid / ratio
    if warp == "allpass":
        source = _at(source[None, :], _allpass_source(_draw_alpha(rng), bins))[0]
    elif warp == "knots":
        source = _at(source[None, :], _knot_source(rng, 1.3, bins))[0]
    log_sp = _at(np.log(np.maximum(sp, 1e-30)), source)
    if depth:
        c = rng.uniform(-depth, depth, 4)
        log_sp = log_sp + 2 * sum(c[k] * np.cos(np.pi * (k + 1) * grid) for k in range(4))  # power: 2 x nepers
    if warp_ap and source is not grid:
        ap = np.clip(_at(ap, source), 0.0, 1.0)
    y = _world_synthesis(f0, np.exp(log_sp), ap, len(x))
    if then_envelope:
        y = voice.anonymise(y, rng, pitch_range=None)
    return y


CANDIDATES = {"original": None, "control: white noise at 30 dB SNR": lambda x, r: with_noise(x, r, 30),
              "control: white noise at 20 dB SNR": lambda x, r: with_noise(x, r, 20),
              "mcadams (VPC baseline)": mcadams, "whisper (noise LPC)": whisper,
              "mcadams + warp 0.8-1.25 (veil's previous anonymise)": lambda x, r: mcadams(x, r, (0.8, 1.25)),
              "veil anonymise": voice.anonymise,
              "mcadams+warp, zero phase": lambda x, r: _refilter(x, lambda e: e, _mcadams_warp(r)),
              "piecewise warp 1.3": piecewise_warp,
              "piecewise warp 1.5": lambda x, r: piecewise_warp(x, r, 1.5),
              "mcadams+warp+piecewise 1.25": mcadams_piecewise,
              "mcadams+warp+colour 1.0": mcadams_colour,
              "mcadams+warp+colour 2.0": lambda x, r: mcadams_colour(x, r, 2.0),
              "mcadams+warp+flatten 0.6+colour 1.0": mcadams_flatten,
              "mcadams+warp+piecewise 1.25+colour 1.0": mcadams_piecewise_colour,
              "mcadams+warp+piecewise 1.25+colour 1.0, drift 1.15": lambda x, r: mcadams_piecewise_colour(
                  x, r, drift=1.15),
              "pitch 1.1-1.4 (WSOLA) + the previous method": lambda x, r: voice.anonymise(
                  _pitch(x, r), r, pitch_range=None),
              "pitch 1.1-1.4 only": lambda x, r: _pitch(x, r),
              "veil anonymise without its pitch shift (the previous method)": lambda x, r: voice.anonymise(
                  x, r, pitch_range=None),
              "pitch 1.2-1.6 (WSOLA) + the previous method": lambda x, r: voice.anonymise(
                  _pitch(x, r, 1.2, 1.6), r, pitch_range=None),
              "pitch 1.3-1.8 (WSOLA) + the previous method": lambda x, r: voice.anonymise(
                  _pitch(x, r, 1.3, 1.8), r, pitch_range=None),
              "pitch 1.2-1.6 only": lambda x, r: _pitch(x, r, 1.2, 1.6),
              "pitch to a drawn 110-230 Hz (atempo) + the previous method": lambda x, r: voice.anonymise(
                  f0_to_drawn(x, r), r, pitch_range=None),
              "veil anonymise, pitch shifted without its formants": pitch_only_anonymise,
              "veil anonymise with wider envelope draws": wider_draws,
              "veil anonymise, one draw (control for the frame-loudness rows)": lambda x, r: frame_level(x, r, 0.0),
              "veil anonymise, one draw, each frame's loudness kept": frame_level,
              "veil anonymise, one draw, frame loudness half kept": lambda x, r: frame_level(x, r, 0.5),
              "veil anonymise, one draw, frame loudness kept over 50 ms": lambda x, r: frame_level(x, r, 1.0, 5),
              "veil anonymise, one draw, frame loudness kept over 150 ms": lambda x, r: frame_level(x, r, 1.0, 15),
              "the previous method, long-term envelope out (tilt kept)": anonymise_ltas,
              "the previous method, long-term envelope out": lambda x, r: anonymise_ltas(x, r, keep_tilt=False),
              "mcadams wide (alpha 0.4-0.9, warp 0.7-1.4)+colour 1.0": lambda x, r: _refilter(
                  x, lambda e, c=_colour(r, 1.0): e + c, _mcadams_wide(r)),
              "veil anonymise + gate -40 dB": lambda x, r: _gate(voice.anonymise(x, r)),
              "mcadams wide+piecewise 1.3+colour 1.5": strong,
              "mcadams wide+piecewise 1.3+colour 1.5 + gate -40 dB": lambda x, r: _gate(strong(x, r)),
              "mcadams wide+piecewise 1.3+colour 1.5+ripple 0.3 (16 cosines)": lambda x, r: strong(x, r, ripple=0.3),
              "mcadams alpha 0.3-0.9, warp 0.65-1.5 + piecewise 1.3 + colour 1.5": lambda x, r: _refilter(
                  x, lambda e, m=_warp_map(r, 1.3), c=_colour(r, 1.5): _apply_map(e, m) + c,
                  lambda a, al=float(r.uniform(0.3, 0.9)), w=float(np.exp(r.uniform(np.log(0.65), np.log(1.5)))):
                  voice._mcadams(voice._poles(a), al, w)),
              "world resynthesis, nothing changed (control)": lambda x, r: world(x, r, pitch=False, warp=None),
              "world pitch (keep 0.3-0.7, x1.2-1.6) only": lambda x, r: world(x, r, warp=None),
              "world pitch (keep 0-0.3, x1.2-1.6) only": lambda x, r: world(x, r, keep=(0.0, 0.3), warp=None),
              "world all-pass warp 0.08-0.2 only": lambda x, r: world(x, r, pitch=False),
              "world all-pass warp 0.08-0.2 + tilt 1.5": lambda x, r: world(x, r, pitch=False, depth=1.5),
              "world pitch (keep 0.3-0.7) + all-pass warp": world,
              "world pitch (keep 0.3-0.7) + all-pass warp + tilt 1.5": lambda x, r: world(x, r, depth=1.5),
              "world pitch (keep 0-0.3) + all-pass warp + tilt 1.5": lambda x, r: world(
                  x, r, keep=(0.0, 0.3), depth=1.5),
              "world pitch (keep 0.3-0.7) + formants scaled + all-pass warp + tilt 1.5": lambda x, r: world(
                  x, r, scale=True, depth=1.5),
              "world pitch (keep 0.3-0.7) + knots 1.3 + tilt 1.5": lambda x, r: world(x, r, warp="knots", depth=1.5),
              "world pitch (keep 0.3-0.7) + all-pass warp, ap kept + tilt 1.5": lambda x, r: world(
                  x, r, depth=1.5, warp_ap=False),
              "world pitch (keep 0.3-0.7), formants scaled, then veil's envelope draws": lambda x, r: world(
                  x, r, warp=None, scale=True, then_envelope=True),
              "world pitch (keep 0.3-0.7) + all-pass warp, then veil's envelope draws": lambda x, r: world(
                  x, r, then_envelope=True),
              "world pitch (keep 0-0.3), formants scaled, then veil's envelope draws": lambda x, r: world(
                  x, r, keep=(0.0, 0.3), warp=None, scale=True, then_envelope=True),
              "world pitch (keep 0.3-0.7, harvest) + all-pass warp + tilt 1.5": lambda x, r: world(
                  x, r, depth=1.5, harvest=True),
              }


# --- data and measures ----------------------------------------------------------------------

def load(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        frames = [f for fr in c.decode(audio=0) for f in resampler.resample(fr)] + resampler.resample(None)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)


def eer(target: np.ndarray, nontarget: np.ndarray) -> float:
    scores = np.concatenate([target, nontarget])
    best = 1.0
    for threshold in np.sort(scores):
        miss = np.mean(target < threshold)
        false = np.mean(nontarget >= threshold)
        best = min(best, max(miss, false))
    return float(best)


def attack(enrol: dict[str, np.ndarray], probes: list[tuple[str, np.ndarray]],
           distractors: dict[str, np.ndarray]) -> tuple[float, np.ndarray, np.ndarray]:
    """EER (%) of the probes against the enrolled readers and distractors; each probe's speaker and the
    identity the attacker names for it (rank-1)."""
    readers = sorted(enrol)
    gallery = {**enrol, **distractors}
    names = list(gallery)
    matrix = np.stack([gallery[n] for n in names])
    speakers = np.array([speaker for speaker, _ in probes])
    named = np.array([names[int(np.argmax(matrix @ embedding))] for _, embedding in probes])
    target, nontarget = [], []
    for speaker, embedding in probes:
        for reader in readers:
            (target if reader == speaker else nontarget).append(float(enrol[reader] @ embedding))
    for embedding in distractors.values():
        nontarget += [float(enrol[r] @ embedding) for r in readers]
    return 100 * eer(np.array(target), np.array(nontarget)), speakers, named


def rank1_with_null(attacks: list[tuple[float, np.ndarray, np.ndarray]]) -> tuple[float, float, float, float]:
    """Mean EER (%), rank-1 (%), and rank-1's identity-free null (%): its mean and 95th percentile.

    1/22 is chance only when a probe that carries no identity lands on every identity alike. Readers
    are enrolled as means of five readings and distractors by one, so such probes may land on readers
    more often. Shuffling which speaker said each probe (within each export) gives the rank-1 that
    probes landing exactly where these did would score if they carried no identity at all."""
    shuffles = np.random.default_rng(0)
    hits = np.mean([np.mean(named == speakers) for _, speakers, named in attacks])
    null = [np.mean([np.mean(named == shuffles.permutation(speakers)) for _, speakers, named in attacks])
            for _ in range(2000)]
    return (float(np.mean([e for e, _, _ in attacks])), 100 * float(hits), 100 * float(np.mean(null)),
            100 * float(np.percentile(null, 95)))


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    ref, hyp = reference.split(), hypothesis.split()
    d = np.arange(len(hyp) + 1)
    for i, word in enumerate(ref, 1):
        previous, d[0] = d.copy(), i
        for j, other in enumerate(hyp, 1):
            d[j] = min(previous[j] + 1, d[j - 1] + 1, previous[j - 1] + (word != other))
    return int(d[-1]), len(ref)


def transcribe(decoder, wav: np.ndarray) -> str:
    pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def same_level(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y at x's loudness: the encoder's input is a power spectrum, so a louder output alone can mislead
    it, and any attacker can undo a level change."""
    return y * np.sqrt(np.mean(x ** 2) / max(float(np.mean(y ** 2)), 1e-20))


def _export_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wer-utterances", type=int, default=30, help="probes transcribed per candidate (speed)")
    parser.add_argument("--only", action="append", help="measure only this candidate (and the original); repeatable")
    parser.add_argument("--exports", type=int, default=2, help="exports drawn per candidate; over 2, figures are means")
    parser.add_argument("--no-words", action="store_true", help="skip word error rate and STOI (fast)")
    parser.add_argument("--detection-only", action="store_true",
                        help="measure speech detection (--voice mute) alone: no attacker, model or recogniser needed")
    parser.add_argument("--first-export", type=int, default=1,
                        help="number of the first export's secret: another run of draws, to see their spread")
    args = parser.parse_args()
    rows = list(csv.DictReader(open(DATA / "utterances.csv")))
    readers: dict[str, list[Path]] = {}
    others: dict[str, Path] = {}
    for row in rows:
        if row["librispeech_subset"] == "test-other":
            readers.setdefault(row["speaker"], []).append(DATA / row["file"])
        else:
            others[row["speaker"]] = DATA / row["file"]
    audio = {p: load(p) for ps in readers.values() for p in ps} | {p: load(p) for p in others.values()}
    if args.detection_only:
        vad(readers, audio)
        return
    attacker = Attacker()
    from pocketsphinx import Decoder
    import pystoi

    decoder = Decoder(loglevel="ERROR")
    probes = [(s, p) for s, ps in readers.items() for p in sorted(ps)[5:]]
    wer_probes = probes[:: max(1, len(probes) // args.wer_utterances)][:args.wer_utterances]
    if args.no_words:
        wer_probes = []
    reference = {p: transcribe(decoder, audio[p]) for _, p in wer_probes}
    clean = {p: attacker.embed(w) for p, w in audio.items()}
    print(f"{len(readers)} readers x 10, {len(others)} distractors; rank-1 chance {100 / (len(readers) + len(others)):.1f}%, "
          "EER chance 50%")
    print("rank-1 null: the same probes with their speakers shuffled within each export (mean; 95th percentile of 2,000 shuffles)")
    print("| candidate | EER ignorant | rank-1 ignorant | rank-1 null ignorant | EER lazy-informed | rank-1 lazy-informed "
          "| rank-1 null lazy-informed | WER vs original | STOI | x real time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, method in CANDIDATES.items():
        if args.only and name not in ("original", *args.only):
            continue
        exports = []
        cpu = 0.0
        for seed in range(args.first_export, args.first_export + args.exports):  # exports, each with its own secret
            rng = _export_rng(seed * 7919)
            started = time.process_time()
            done = {p: (wav if method is None else same_level(method(wav, rng), wav)) for p, wav in audio.items()}
            cpu += time.process_time() - started
            exports.append(done)
        speech_s = args.exports * sum(len(w) for w in audio.values()) / RATE
        emb = [{p: attacker.embed(w) for p, w in e.items()} for e in exports]

        def enrolment(table: dict) -> dict[str, np.ndarray]:
            out = {}
            for s, ps in readers.items():
                mean = np.mean([table[p] for p in sorted(ps)[:5]], axis=0)
                out[s] = mean / np.linalg.norm(mean)
            return out

        # Probes of export i against clean references, and against references of export i + 1: with
        # more than two exports, the figures are means over several draws of the secret (less luck).
        pairs = [(i, (i + 1) % len(emb)) for i in range(len(emb) if len(emb) > 2 else 1)]
        ignorant = rank1_with_null([attack(enrolment(clean), [(s, emb[i][p]) for s, p in probes],
                                           {s: clean[p] for s, p in others.items()}) for i, _ in pairs])
        informed = rank1_with_null([attack(enrolment(emb[j]), [(s, emb[i][p]) for s, p in probes],
                                           {s: emb[j][p] for s, p in others.items()}) for i, j in pairs])
        errors = words = 0
        stoi = []
        for _, p in wer_probes:
            e, n = wer(reference[p], transcribe(decoder, exports[0][p]))
            errors, words = errors + e, words + n
            stoi.append(pystoi.stoi(audio[p], exports[0][p], RATE))
        stoi = stoi or [float("nan")]
        speed = "-" if method is None else f"{speech_s / max(cpu, 1e-9):.0f}"
        print(f"| {name} | {ignorant[0]:.1f}% | {ignorant[1]:.1f}% | {ignorant[2]:.1f}% ({ignorant[3]:.1f}%) | "
              f"{informed[0]:.1f}% | {informed[1]:.1f}% | {informed[2]:.1f}% ({informed[3]:.1f}%) | "
              f"{100 * errors / max(words, 1):.1f}% | {np.mean(stoi):.3f} | {speed} |", flush=True)
    if not args.only:
        vad(readers, audio)


def _found(sound: np.ndarray, folder: str) -> list[tuple[float, float]]:
    """veil's speech segments in `sound` (16 kHz; 1-D, or channels x samples), written as a 16-bit WAV
    as a user's file would be."""
    path = Path(folder) / "x.wav"
    channels = np.atleast_2d(sound)
    layout = "mono" if len(channels) == 1 else "stereo"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout=layout)
        interleaved = (np.clip(channels, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return find_speech(path).segments


def _levels(wav: np.ndarray) -> np.ndarray:
    """dB of each 20 ms."""
    return 10 * np.log10((wav[:len(wav) // 320 * 320].reshape(-1, 320) ** 2).mean(axis=1) + 1e-20)


def _music(n: int, rng: np.random.Generator) -> np.ndarray:
    """A music-like bed: arpeggiated chords, bass, kick and hi-hat at 120 bpm, a melody with vibrato."""
    def tone(f: float, count: int, harmonics: int = 8, vibrato: float = 0.0) -> np.ndarray:
        t = np.arange(count) / RATE
        phase = 2 * np.pi * f * t + vibrato * np.sin(2 * np.pi * 5.5 * t)
        return sum(np.sin(k * phase) / k for k in range(1, harmonics + 1) if k * f < RATE / 2)

    out = np.zeros(n)
    chords = [[220, 277, 330], [196, 247, 294], [175, 220, 262], [196, 247, 294]]
    beat = RATE // 4
    for i, s in enumerate(range(0, n, beat)):
        m = min(2 * beat, n - s)
        decay = np.exp(-np.arange(m) / (0.15 * RATE))
        chord = chords[(i // 8) % 4]
        out[s:s + m] += 0.3 * tone(chord[i % 3] * (2 if i % 6 == 5 else 1), m) * decay
        if i % 4 == 0:
            out[s:s + m] += 0.3 * tone(chord[0] / 2, m, 4) * decay
        if i % 2 == 0:
            k = min(int(0.15 * RATE), n - s)
            out[s:s + k] += 0.8 * np.sin(2 * np.pi * 55 * np.arange(k) / RATE) * np.exp(-np.arange(k) / (0.04 * RATE))
        h = min(int(0.03 * RATE), n - s)
        out[s:s + h] += 0.15 * np.diff(rng.standard_normal(h + 1)) * np.exp(-np.arange(h) / (0.01 * RATE))
    notes = [440, 494, 523, 587, 523, 494]
    for j, s in enumerate(range(0, n, RATE // 2)):
        m = min(RATE // 2, n - s)
        ramp = np.minimum(1, np.minimum(np.arange(m), m - np.arange(m)) / 400)
        out[s:s + m] += 0.25 * tone(notes[(j + rng.integers(0, 2)) % 6], m, 5, 1.6) * ramp
    return out


def _band(n: int, rng: np.random.Generator) -> np.ndarray:
    """Closer to a band than `_music`: at a drawn tempo (90-130 bpm) and key, a four-chord progression
    as a string pad (slow attack, vibrato) and piano-like eighths (many harmonics, decaying), a plucked
    bass on each beat, a kick swept from 150 to 50 Hz on 1 and 3, a snare (noise and a 190 Hz tone)
    on 2 and 4, hi-hat eighths, and a lead with vibrato in legato notes of a quarter to two beats."""
    def tone(f: float, count: int, harmonics: int, vibrato: float, rolloff: float) -> np.ndarray:
        t = np.arange(count) / RATE
        phase = 2 * np.pi * f * t + vibrato * np.sin(2 * np.pi * 5.5 * t)
        return sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k ** rolloff
                   for k in range(1, harmonics + 1) if k * f < RATE / 2)

    def decaying(count: int, seconds: float) -> np.ndarray:
        return np.exp(-np.arange(count) / (seconds * RATE))

    bpm = rng.uniform(90, 130)
    beat = int(RATE * 60 / bpm)
    key = 110 * 2 ** (rng.integers(0, 12) / 12)
    out = np.zeros(n)
    for bar, s in enumerate(range(0, n, 4 * beat)):
        chord = [key * 2 ** (x / 12) for x in [[0, 4, 7], [9, 12, 16], [5, 9, 12], [7, 11, 14]][bar % 4]]
        m = min(4 * beat, n - s)
        attack = np.minimum(1, np.arange(m) / (0.3 * RATE)) * np.minimum(1, (m - np.arange(m)) / 800)
        for f in chord:
            out[s:s + m] += 0.08 * tone(2 * f, m, 10, 0.006 * f / 5.5, 1.5) * attack
        for e in range(8):
            at = s + e * beat // 2
            if at >= n:
                break
            m = min(2 * beat, n - at)
            note = chord[rng.integers(0, 3)] * 2 ** rng.integers(1, 3)
            out[at:at + m] += 0.12 * tone(note, m, 12, 0, 1.2) * decaying(m, 0.25)
            k = min(int(0.05 * RATE), n - at)
            out[at:at + k] += 0.1 * np.diff(rng.standard_normal(k + 1)) * decaying(k, 0.012)
            if e % 2:
                continue
            m = min(beat, n - at)
            out[at:at + m] += 0.25 * tone(chord[0] / 2, m, 6, 0, 1.0) * decaying(m, 0.2)
            k = min(int(0.2 * RATE), n - at)
            t = np.arange(k) / RATE
            if e % 4 == 0:
                sweep = np.cumsum(50 + 100 * np.exp(-t / 0.03)) / RATE
                out[at:at + k] += 0.7 * np.sin(2 * np.pi * sweep) * decaying(k, 0.06)
            else:
                noise = np.diff(rng.standard_normal(k + 1))
                out[at:at + k] += (0.35 * noise + 0.2 * np.sin(2 * np.pi * 190 * t)) * decaying(k, 0.05)
    at = 0
    while at < n:
        m = min(int(rng.choice([0.5, 1, 1, 1.5, 2]) * beat), n - at)
        f = key * 4 * 2 ** ([0, 2, 4, 5, 7, 9, 11, 12, 14, 16][rng.integers(0, 10)] / 12)
        if rng.random() < 0.85:
            edges = np.minimum(1, np.minimum(np.arange(m), m - np.arange(m)) / 300)
            out[at:at + m] += 0.15 * tone(f, m, 8, 0.006 * f / 5.5, 1.0) * edges
        at += m
    return out


def _room(rt60: float, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`wav` as heard across a room: a drawn impulse response decaying by 60 dB in `rt60` seconds,
    peaking at -22 dBFS, with white noise 5 dB under the reverberant voice."""
    n = int(rt60 * RATE)
    response = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / RATE / rt60)
    response[0] = 1.0
    size = 1 << int(np.ceil(np.log2(len(wav) + n)))
    far = np.fft.irfft(np.fft.rfft(wav, size) * np.fft.rfft(response, size), size)[:len(wav)]
    far *= 0.08 / np.abs(far).max()
    return far + rng.standard_normal(len(wav)) * np.sqrt(np.mean(far ** 2)) * 10 ** (-5 / 20)


def _radio(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`wav` through a radio or intercom: 500-2500 Hz only."""
    spectrum = np.fft.rfft(wav)
    frequency = np.fft.rfftfreq(len(wav), 1 / RATE)
    spectrum[(frequency < 500) | (frequency > 2500)] = 0
    return np.fft.irfft(spectrum, len(wav))


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    return np.fft.irfft(spectrum / np.sqrt(np.maximum(np.arange(len(spectrum)), 1)), n)


def vad(readers: dict[str, list[Path]], audio: dict[Path, np.ndarray]) -> None:
    """Speech detection on the 60 readings, each between 1.5 s of quiet room-like noise, then of digital
    silence; then every other reading under a music-like bed, a band (mono, and spread wide in stereo)
    and pink noise at several levels, and each bed alone (music taken for speech).

    Voiced time: from the first to the last 20 ms over a tenth of the reading's peak level. Soft edges:
    from the first to the last 20 ms 10 dB over the reading's own floor (its 5th percentile), where a
    soft first syllable, a breath or a word's tail lies; an edge is missed when any of it is left out."""
    import tempfile

    gap = 1.5
    paths = [p for ps in readers.values() for p in sorted(ps)]
    with tempfile.TemporaryDirectory() as folder:
        for gaps in ("-50 dBFS noise", "digital silence"):
            rng = np.random.default_rng(0)
            sums = dict(covered=0.0, voiced=0.0, soft_covered=0.0, soft=0.0, gap_muted=0.0, onsets=0, ends=0)
            for p in paths:
                wav = audio[p]
                quiet = (lambda n: 0.003 * rng.standard_normal(n)) if gaps != "digital silence" else np.zeros
                found = _found(np.concatenate([quiet(int(gap * RATE)), wav, quiet(int(gap * RATE))]), folder)
                overlap = lambda lo, hi: sum(max(0.0, min(y, hi) - max(x, lo)) for x, y in found)  # noqa: E731
                level = _levels(wav)
                loud = np.flatnonzero(level > level.max() - 20)
                soft = np.flatnonzero(level > np.percentile(level, 5) + 10)
                a, b = gap + loud[0] * 0.02, gap + (loud[-1] + 1) * 0.02
                c, d = gap + soft[0] * 0.02, gap + (soft[-1] + 1) * 0.02
                end = gap + len(wav) / RATE
                sums["covered"] += overlap(a, b)
                sums["voiced"] += b - a
                sums["soft_covered"] += overlap(c, d)
                sums["soft"] += d - c
                sums["gap_muted"] += overlap(0, gap) + overlap(end, end + gap)
                sums["onsets"] += not any(x <= c < y for x, y in found)
                sums["ends"] += not any(x < d <= y for x, y in found)
            print(f"\nspeech detection, gaps of {gaps}: {100 * sums['covered'] / sums['voiced']:.2f}% of voiced time "
                  f"muted, {100 * sums['soft_covered'] / sums['soft']:.2f}% with the soft edges; first soft sound "
                  f"left audible in {sums['onsets']} of {len(paths)} readings, last in {sums['ends']}; "
                  f"{100 * sums['gap_muted'] / (2 * gap * len(paths)):.1f}% of the gaps muted (padding)")
        # A voice across a room (reverberation of RT60 0.5 / 0.8 s, white noise 5 dB under it, at
        # -22 dBFS peak) and over a radio or intercom (500-2500 Hz only).
        for name, heard in (("room, RT60 0.5 s", functools.partial(_room, 0.5)),
                            ("room, RT60 0.8 s", functools.partial(_room, 0.8)), ("radio band", _radio)):
            rng = np.random.default_rng(2)
            covered = voiced = 0.0
            for p in paths:
                wav = audio[p]
                level = _levels(wav)
                loud = np.flatnonzero(level > level.max() - 20)
                found = _found(np.concatenate([np.zeros(int(gap * RATE)), heard(wav, rng), np.zeros(int(gap * RATE))]),
                               folder)
                a, b = gap + loud[0] * 0.02, gap + (loud[-1] + 1) * 0.02
                covered += sum(max(0.0, min(y, b) - max(x, a)) for x, y in found)
                voiced += b - a
            print(f"speech in a {name}: {100 * covered / voiced:.2f}% of voiced time muted", flush=True)

        def wide(n: int, rng: np.random.Generator) -> np.ndarray:
            return np.stack([_band(n, rng), _band(n, rng)])  # each side its own render: as wide as it gets

        beds = (("music-like bed", _music), ("band", _band), ("band spread wide (stereo)", wide), ("pink noise", _pink))
        for name, bed in beds:
            rng = np.random.default_rng(1)
            for ratio in (10, 0, -5, -10, -15):
                covered = voiced = bed_muted = 0.0
                for p in paths[::2]:
                    wav = audio[p]
                    level = _levels(wav)
                    loud = np.flatnonzero(level > level.max() - 20)
                    speech = wav[loud[0] * 320:(loud[-1] + 1) * 320]
                    sound = np.concatenate([np.zeros(int(gap * RATE)), wav, np.zeros(int(gap * RATE))])
                    under = bed(len(sound), rng)
                    under *= np.sqrt(np.mean(speech ** 2) / np.mean(under ** 2)) * 10 ** (-ratio / 20)
                    found = _found(sound + under, folder)
                    overlap = lambda lo, hi: sum(max(0.0, min(y, hi) - max(x, lo)) for x, y in found)  # noqa: E731
                    a, b = gap + loud[0] * 0.02, gap + (loud[-1] + 1) * 0.02
                    end = gap + len(wav) / RATE
                    covered += overlap(a, b)
                    voiced += b - a
                    bed_muted += overlap(0, gap) + overlap(end, end + gap)
                print(f"speech {ratio:+d} dB over a {name}: {100 * covered / voiced:.2f}% of voiced time muted, "
                      f"{100 * bed_muted / (2 * gap * len(paths[::2])):.1f}% of the bed alone muted", flush=True)
            # The bed with no speech at all: any of it muted is music taken for speech.
            alone = [bed(20 * RATE, np.random.default_rng(100 + seed)) for seed in range(3)]
            muted = sum(b - a for x in alone for a, b in _found(0.1 * x / np.sqrt(np.mean(x ** 2)), folder))
            print(f"{name} alone (3 x 20 s, -20 dBFS): {100 * muted / 60:.1f}% muted", flush=True)


if __name__ == "__main__":
    main()
