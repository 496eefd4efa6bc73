"""Output fidelity on every clip in ../shared/data/videos (and the metadata samples), and
peak memory for a long input against a short one.

Per clip: frame count, per-frame timestamps (from where each file's clock starts: an output's
starts at zero), container duration (within one frame), audio
packets bit-identical, display rotation, colour tags (range, primaries, transfer, matrix),
pixel format, and whether identifying metadata (GPS, dates, make/model, camera encoder)
is left. Memory: peak RSS of a separate process running veil on a clip made by joining
the YouTube Faces clips (re-encoded once) to about 20 s, and the same joined N times.

    python bench/video_correctness.py [--quick] [--memory-only] [--long-repeats 8]

--quick analyses only the first second of each clip (the rest is covered, not detected):
the fidelity checks do not depend on what was detected.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

from veil.plan import RenderSettings
from veil.video import plan_video, render_video

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
IDENTIFYING = ("location", "creation", "make", "model", "software", "com.apple", "com.android", "iphone")


def facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        frames = [(f.time, f.rotation, f.width, f.height, f.format.name,
                   (f.color_range, f.color_primaries, f.color_trc, f.colorspace)) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(*c.streams.audio) if p.size] if c.streams.audio else []
        tags = [dict(c.metadata)] + [dict(s.metadata) for s in c.streams]
        duration = (c.duration or 0) / av.time_base
        clock = max(0.0, (c.start_time or 0) / av.time_base)  # where the file's clock starts (an output's: 0)
    return {"times": [f[0] - clock for f in frames], "first": frames[0][1:], "audio": audio, "tags": tags,
            "duration": duration, "clock": clock}


def identifying(tags: list[dict]) -> list[str]:
    found = []
    for group in tags:
        for key, value in group.items():
            text = f"{key}={value}".lower()
            if any(word in text for word in IDENTIFYING) or (key.lower() == "encoder" and not value.startswith("Lavf")):
                found.append(f"{key}={value}")
    return found


def check(clip: Path, tmp: Path, quick: bool) -> str:
    target = tmp / f"out{clip.suffix}"
    started = time.monotonic()
    render_video(plan_video(clip, end=1.0 if quick else None), RenderSettings(), target)
    seconds = time.monotonic() - started
    a, b = facts(clip), facts(target)
    step = (a["duration"] / len(a["times"])) if a["times"] else 0
    rows = {
        "frames": f"{len(b['times'])}/{len(a['times'])}",
        # Each frame's time from where its file's clock starts (veil's output starts it at zero).
        "pts": "same" if len(a["times"]) == len(b["times"]) and all(
            abs(x - y) < 1e-3 for x, y in zip(a["times"], b["times"])) else "DIFF",
        "clock": f"{a['clock']:.3f}>{b['clock']:.3f}",
        "dur": f"{b['duration'] - a['duration']:+.3f}s" + ("" if abs(b["duration"] - a["duration"]) <= step else "!"),
        "audio": ("-" if not a["audio"] else f"{len(b['audio'])}/{len(a['audio'])} " + ("same" if a["audio"] == b["audio"] else "DIFF")),
        "rot": f"{b['first'][0]}" + ("" if a["first"][0] == b["first"][0] else f"!={a['first'][0]}"),
        "size+fmt": "same" if a["first"][1:4] == b["first"][1:4] else f"DIFF {b['first'][1:4]}",
        "colour": "same" if a["first"][4] == b["first"][4] else f"DIFF {b['first'][4]}",
        "id-tags in/out": f"{len(identifying(a['tags']))}/{len(identifying(b['tags']))}",
    }
    target.unlink()
    return f"{str(clip.relative_to(DATA))[:58]:58s} " + " ".join(f"{v:>14s}" for v in rows.values()) + f" {seconds:6.1f}s"


def join(sources: list[Path], target: Path, repeats: int) -> int:
    """One clip from several (scaled to the first one's size), repeated: a long real input."""
    n = 0
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.options = {"preset": "veryfast", "crf": "23"}
        for _ in range(repeats):
            for path in sources:
                with av.open(str(path)) as c:
                    for frame in c.decode(video=0):
                        if n == 0:
                            stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
                        new = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                        new.pts, new.time_base = n, Fraction(1, 30)
                        out.mux(stream.encode(new))
                        n += 1
        out.mux(stream.encode(None))
    return n


def peak_memory(clip: Path, output: Path) -> tuple[float, float]:
    """Peak RSS (MiB) and seconds of a fresh process redacting `clip`."""
    code = ("import resource, sys, json; from pathlib import Path; from veil.video import plan_video, render_video; "
            "from veil.plan import RenderSettings; "
            "render_video(plan_video(Path(sys.argv[1])), RenderSettings(), Path(sys.argv[2])); "
            "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code, str(clip), str(output)], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1]) / 1024, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="analyse only the first second of each clip")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--long-repeats", type=int, default=8, help="the long input is the short one this many times")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"test data not found at {DATA}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.memory_only:
            clips = sorted(p for p in (DATA / "videos").rglob("*") if p.suffix in (".mp4", ".mkv", ".mov", ".webm", ".avi"))
            clips += sorted((DATA / "metadata").rglob("*.mov")) + sorted((DATA / "metadata").rglob("*.mp4"))
            heads = ("frames", "pts", "clock in>out", "dur", "audio", "rot", "size+fmt", "colour", "id-tags in/out")
            print(f"{'clip':58s} " + " ".join(f"{h:>14s}" for h in heads))
            for clip in clips:
                try:
                    print(check(clip, tmp, args.quick), flush=True)
                except Exception as error:  # a failure is a result to report, not a crash
                    print(f"{str(clip.relative_to(DATA)):58s} FAILED: {error}", flush=True)
        youtube = sorted((DATA / "videos" / "youtube_faces").glob("*.mp4"))
        short, long = tmp / "short.mp4", tmp / "long.mp4"
        n_short, n_long = join(youtube, short, 1), join(youtube, long, args.long_repeats)
        for label, clip, n in (("short", short, n_short), ("long", long, n_long)):
            mib, seconds = peak_memory(clip, tmp / f"{label}.out.mp4")
            print(f"peak memory {label:5s}: {n:6d} frames ({n / 30:6.1f} s of video): {mib:7.1f} MiB "
                  f"({seconds:.0f} s, {n / seconds:.1f} frames/s)", flush=True)
    print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
