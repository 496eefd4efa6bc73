"""The encoder preset: veil's speed and its output quality outside the redacted regions, beside deface.

For each clip, veil plans once (timed) and renders once per x264 preset (timed); deface 1.5 runs
its CLI with its own encoder defaults (`--replacewith solid`, so its redactions are black like
veil's fill). Quality is measured where neither tool redacted anything: a pixel counts when it is
not black (every channel <= 24) in either output, nor within 4 px of such a pixel (codec ringing at
a fill's edge); PSNR of each output against the decoded input over those pixels, frame by frame,
then averaged. The preset is a trade between speed and file size: at the same CRF, quality stays
near the same, so the question is how fast veil can go while staying at least as faithful as deface.

    python bench/video_quality.py

Time is printed as wall seconds and as CPU seconds (user + system, every thread and child process):
on a machine shared with other work the CPU seconds are the steadier comparison.
    python bench/video_quality.py --presets medium,veryfast --clip crowd=/tmp/pan30/0_Parade_marchingband_1_329.mp4
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from veil.detect import FAST
from veil.plan import Encoding, RenderSettings
from veil.video import plan_video, render_video
from video_speed import DEFACE, VIDEOS, chosen_clips  # bench/ is on the path when a bench script runs

CLIPS = {
    "1280x720": VIDEOS / "liveportrait" / "s18.mp4",
    "960x540": VIDEOS / "wider_pan" / "17_Ceremony_Ceremony_17_234.mp4",
}
PRESETS = ("medium", "fast", "faster", "veryfast", "superfast")
BLACK = 24
EDGE = 4


def frames(path: Path, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Every frame as RGB, scaled to `size` (height, width): deface's writer scales 540 rows to 544."""
    with av.open(str(path)) as container:
        if size is None:
            return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return [frame.to_ndarray(format="rgb24", width=size[1], height=size[0])
                for frame in container.decode(video=0)]


def redacted(image: np.ndarray) -> np.ndarray:
    black = (image <= BLACK).all(axis=2).astype(np.uint8)
    return cv2.dilate(black, np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8)) > 0


def psnr(source: np.ndarray, output: np.ndarray, keep: np.ndarray) -> float:
    error = (source[keep].astype(np.float64) - output[keep]) ** 2
    return 10 * np.log10(255 ** 2 / max(error.mean(), 1e-10))


def quality(source: list[np.ndarray], outputs: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """Mean PSNR per output over the pixels that no output redacted."""
    scores = {name: [] for name in outputs}
    for i, original in enumerate(source):
        hidden = np.zeros(original.shape[:2], bool)
        for images in outputs.values():
            hidden |= redacted(images[i])
        keep = ~hidden
        for name, images in outputs.items():
            scores[name].append(psnr(original, images[i], keep))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def children_cpu_seconds() -> float:
    """User + system seconds of finished child processes (deface, and the ffmpeg it runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kbits_per_second(path: Path) -> float:
    with av.open(str(path)) as container:
        return path.stat().st_size * 8 / 1000 / (container.duration / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--clip", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    clips = chosen_clips(args.clip, CLIPS)
    presets = args.presets.split(",")
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    print("| clip | tool | seconds (plan + render) | fps | vs deface | CPU s/frame | vs deface (CPU) "
          "| PSNR outside redactions (dB) | kbit/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, clip in clips.items():
            clip = Path(clip)
            source = frames(clip)
            started, cpu = time.monotonic(), time.process_time()
            plan = plan_video(clip, FAST)
            planning, planning_cpu = time.monotonic() - started, time.process_time() - cpu
            seconds, cpu_seconds, paths = {}, {}, {}
            for preset in presets:
                paths[preset] = Path(tmp) / f"veil-{preset}.mp4"
                started, cpu = time.monotonic(), time.process_time()
                render_video(plan, RenderSettings(), paths[preset], encoding=Encoding(preset=preset))
                seconds[preset] = planning + time.monotonic() - started
                cpu_seconds[preset] = planning_cpu + time.process_time() - cpu
            paths["deface"] = Path(tmp) / "deface.mp4"
            started, cpu = time.monotonic(), children_cpu_seconds()
            subprocess.run([str(DEFACE), str(clip), "-o", str(paths["deface"]), "--keep-audio",
                            "--replacewith", "solid"], check=True, capture_output=True)
            seconds["deface"] = time.monotonic() - started
            cpu_seconds["deface"] = children_cpu_seconds() - cpu
            scores = quality(source, {tool: frames(path, source[0].shape[:2]) for tool, path in paths.items()})
            for tool in [*presets, "deface"]:
                label = f"veil {tool}" if tool != "deface" else "deface 1.5"
                print(f"| {name} | {label} | {seconds[tool]:.1f} | {len(source) / seconds[tool]:.2f} "
                      f"| {seconds['deface'] / seconds[tool]:.2f}x | {cpu_seconds[tool] / len(source):.3f} "
                      f"| {cpu_seconds['deface'] / cpu_seconds[tool]:.2f}x | {scores[tool]:.2f} "
                      f"| {kbits_per_second(paths[tool]):.0f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
