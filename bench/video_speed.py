"""Video throughput: veil beside deface 1.5 and a plain PyAV decode + re-encode, in one run.

Two clips, 1280x720 (liveportrait/s18.mp4, with audio) and 960x540 (a wider_pan clip),
each processed by
  - veil, default mode (detect pass + render pass, audio copied),
  - deface 1.5 (`deface --keep-audio`, from .bench-venv; see bench/setup.sh),
  - plain: PyAV decode and re-encode with veil's encoder settings and audio copy, no
    detection: the floor any tool that re-encodes has to pay.
Frames per second are frames / wall-clock seconds of the whole job, measured one after
the other on the same machine; the ratios are what to compare across machines.

    python bench/video_speed.py [--repeat N]
    python bench/video_speed.py --clip crowd=/tmp/pan30/0_Parade_marchingband_1_329.mp4   # other clips
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from veil.detect import FAST
from veil.outputs import atomic_output
from veil.plan import RenderSettings
from veil.video import plan_video, render_video
from veil.videofile import Encoding, open_input, open_output, read, video_stream

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
DEFACE = ROOT / ".bench-venv" / "bin" / "deface"
CLIPS = {
    "1280x720": VIDEOS / "liveportrait" / "s18.mp4",
    "960x540": VIDEOS / "wider_pan" / "55_Sports_Coach_Trainer_sportcoaching_55_774.mp4",
}


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def run_veil(clip: Path, output: Path) -> float:
    """Renders the clip; returns the plan's hidden boxes per frame (what rendering and tracking scale with)."""
    media = plan_video(clip, FAST)
    render_video(media, RenderSettings(), output)
    return sum(len(region.boxes) for region in media.regions) / max(1, media.frame_count)


def run_plain(clip: Path, output: Path) -> None:
    """Decode and re-encode every frame exactly as veil's render pass does, minus the redaction."""
    container = open_input(clip)
    try:
        stream = video_stream(container)
        with atomic_output(output) as written:
            out = None
            early = []
            for item in read(container, stream, tuple(container.streams.audio)):
                if isinstance(item, av.Packet):
                    if out is None:
                        early.append(item)
                    else:
                        out.mux(item)
                    continue
                if out is None:
                    out = open_output(written.path, output.suffix, container, stream, item.rotation, Encoding())
                    for packet in early:
                        out.mux(packet)
                out.encode(item)
            out.finish()
    finally:
        container.close()


def run_deface(clip: Path, output: Path) -> None:
    subprocess.run([str(DEFACE), str(clip), "-o", str(output), "--keep-audio"], check=True, capture_output=True)


def timed(run, clip: Path, output: Path, repeat: int) -> tuple[float, object]:
    """The fastest of `repeat` runs, in seconds, and what the last run returned."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.monotonic()
        result = run(clip, output)
        best = min(best, time.monotonic() - started)
        output.unlink(missing_ok=True)
    return best, result


def chosen_clips(entries: list[str], default: dict[str, Path]) -> dict[str, Path]:
    """The clips named NAME=PATH, else `default`; exits when the data or deface is missing."""
    if not VIDEOS.is_dir():
        sys.exit(f"test videos not found at {VIDEOS}")
    if not DEFACE.exists():
        sys.exit(f"deface not found at {DEFACE}: run bench/setup.sh")
    return {name: Path(path) for name, path in (e.split("=", 1) for e in entries)} if entries else default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    parser.add_argument("--clip", action="append", default=[], metavar="NAME=PATH",
                        help="time these clips instead of the two default ones; repeatable")
    args = parser.parse_args()
    clips = chosen_clips(args.clip, CLIPS)
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'clip':10s} {'frames':>6s} {'veil fps':>9s} {'deface fps':>11s} {'plain fps':>10s} "
          f"{'veil/deface':>12s} {'veil/plain':>11s} {'boxes/frame':>12s} {'veil s/frame':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, clip in clips.items():
            clip = Path(clip)
            frames = frame_count(clip)
            fps, returned = {}, {}
            for tool, run in (("veil", run_veil), ("deface", run_deface), ("plain", run_plain)):
                seconds, returned[tool] = timed(run, clip, Path(tmp) / f"{tool}{clip.suffix}", args.repeat)
                fps[tool] = frames / seconds
            print(f"{name:10s} {frames:6d} {fps['veil']:9.2f} {fps['deface']:11.2f} {fps['plain']:10.2f} "
                  f"{fps['veil'] / fps['deface']:11.2f}x {fps['veil'] / fps['plain']:10.2f}x "
                  f"{returned['veil']:12.0f} {1 / fps['veil']:13.3f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
