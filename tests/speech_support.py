"""Test media with real speech where the test knows it is: three LibriSpeech readings
(../shared/data/speech), each between stretches of a steady tone, as a small video or a WAV.

The tone is sound that is not speech: after muting it must be unchanged, so a segment left
audible (kept, or deleted by a reviewer) can be told from a muted one by its samples.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librispeech_test-other"
READINGS = [SPEECH / "367" / "367-130732-0000.flac", SPEECH / "1998" / "1998-15444-0008.flac",
            SPEECH / "2414" / "2414-128291-0003.flac"]
RATE = 16000
TONE_S = 1.5
FPS = 10
CHUNK = 1600  # samples per audio frame written: one picture's time


def available() -> bool:
    return all(path.is_file() for path in READINGS)


def _reading(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]).astype(np.float32) / 32768


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def speech_sound() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Tone, reading, tone, reading, tone, reading, tone (16 kHz mono), and where each reading lies (s)."""
    parts, spans, at = [_tone(TONE_S)], [], TONE_S
    for path in READINGS:
        reading = _reading(path)
        spans.append((at, at + len(reading) / RATE))
        parts += [reading, _tone(TONE_S)]
        at += len(reading) / RATE + TONE_S
    return np.concatenate(parts), spans


def write_wav(path: Path, samples: np.ndarray, title: str | None = None, bits: int = 16) -> None:
    """16-bit PCM, or 24-bit (`bits`: a recorder's, whose quietest sound lies far below 16 bits')."""
    with av.open(str(path), "w", format="wav") as out:
        if title:
            out.metadata["title"] = title
        stream = out.add_stream(f"pcm_s{bits}le", rate=RATE, layout="mono")
        whole = 2 ** 31 - 1 if bits == 24 else 32767  # 24-bit samples are given as the top of 32-bit ones
        frame = av.AudioFrame.from_ndarray((samples.astype(np.float64) * whole).astype(np.int32 if bits == 24 else np.int16)[None],
                                           format="s32" if bits == 24 else "s16", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def write_video(path: Path, samples: np.ndarray) -> None:
    """A small grey video (no faces: detection is quick) with the sound as 16 kHz mono FLAC in Matroska,
    lossless, so the test can compare output samples to the input's. Sound and pictures are interleaved
    as a camera writes them."""
    pcm = (samples * 32767).astype(np.int16)
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("flac", rate=RATE, layout="mono")
        written = 0
        for i in range(round(len(samples) / RATE * FPS)):
            picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24")
            picture.pts = i
            for packet in video.encode(picture):
                out.mux(packet)
            while written < min(len(pcm), (i + 1) * RATE // FPS):  # the encoder takes frames of at most CHUNK
                frame = av.AudioFrame.from_ndarray(pcm[None, written:written + CHUNK], format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = RATE, written, Fraction(1, RATE)
                written += frame.samples
                for packet in audio.encode(frame):
                    out.mux(packet)
        for packet in [*video.encode(None), *audio.encode(None)]:
            out.mux(packet)


def read_sound(path: Path) -> np.ndarray:
    """The first audio stream as mono float samples at its own rate (16 kHz here)."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks)


def loudness(samples: np.ndarray, start: float, end: float) -> float:
    """RMS of the samples between two times (s)."""
    part = samples[round(start * RATE):round(end * RATE)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))


def detected_media(folder: Path) -> list[tuple[float, float]]:
    """Write the video and the WAV into `folder` and detect them once with --voice mute (plan.json
    there, outputs to out/); the readings' spans in seconds."""
    import pytest

    from veil.detect import FAST
    from veil.pipeline import Analysis
    from veil.plan import RenderSettings
    from veil.review.cli import open_session

    if not available():
        pytest.skip("LibriSpeech readings not found in ../shared/data/speech")
    samples, spans = speech_sound()
    write_video(folder / "clip.mkv", samples)
    write_wav(folder / "talk.wav", samples)
    open_session([folder / "clip.mkv", folder / "talk.wav"], None, folder / "plan.json", folder / "out", None,
                 RenderSettings(voice="mute"), Analysis(FAST))
    return spans
