"""Per-frame face leaks in redacted video, veil beside deface 1.5.

For every clip with ground truth (`<clip>_gt.csv`: a box per visible face per frame) in
../shared/data/videos/wider_pan and ../shared/data/videos/youtube_faces, the clip is
redacted with black fill and the *output file* is decoded and checked, so codec losses
count. A face instance (one face in one frame) is protected when >= 95% of the inner 60%
of its box (20% margin each side) and >= 70% of the whole box are redacted; a pixel counts
as redacted when all its channels are <= 24. Faces ">= 20 px" are those whose GT box is at
least 20 px high. Over-redaction: the share of frame pixels redacted (dark in the output, not in
the input) outside every GT face's head (its box grown by veil's head margins), over frames with
a GT face.

    python bench/video_leaks.py                 # veil (default mode) and deface
    python bench/video_leaks.py --tools veil --side 640 --stride 1   # try another sampling
    python bench/video_leaks.py --tools veil --retina-every 0   # CenterFace only
    python bench/video_leaks.py --more /tmp/pan30   # also clips made by ../shared/tools/make_pan_videos.py
    python bench/video_leaks.py --sets "" --more /tmp/pan30   # only those
    python bench/video_leaks.py --tools veil --cache /tmp/vl-cache --details /tmp/vl-run1   # keep detections

`--cache DIR` keeps each clip's detection pass (pass 1's per-frame detections, cuts and times) under DIR,
keyed by the clip and the sampling, so a change to tracking or to the hidden region's shape is measured
again without running the detectors. `--details DIR` writes, per clip, its plan and every leaked face
instance (frame, GT box, share of its inner part and of its whole box redacted) as JSON.

On a night clip that rule fails: much of a face is as dark as the fill before anything is hidden,
and a face left visible counts as protected. `--onto DIR` (veil only) renders each plan, made on the
night clip, onto the clip of the same name in DIR, the same frames before they were darkened
(`bench/video_variants.py` makes both: `--more VARIANTS/dark2 --onto VARIANTS/base`), and scores that.

More clips (never committed): `python ../shared/tools/make_pan_videos.py
../shared/data/wider_face_dev/ /tmp/pan30 30 2026` makes 30 pan/zoom clips from the dev photos
with exact per-frame boxes, the same way as wider_pan.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np

import veil.video
from veil.detect import PROFILES, VIDEO_DETECTION, Detection, FramesJudged, VideoDetection
from veil.plan import MediaPlan, Plan, RenderSettings
from veil.regions import head_box
from veil.motion import CameraPath
from veil.video import plan_video, render_video, rotation_of
from veil.videofile import open_input, read, video_stream

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
DEFACE = ROOT / ".bench-venv" / "bin" / "deface"
SETS = ("wider_pan", "youtube_faces")
DARK = 24


@dataclass
class Tally:
    faces: int = 0
    leaked: int = 0
    faces20: int = 0
    leaked20: int = 0
    frames: int = 0  # frames with at least one GT face
    frames_leaked: int = 0
    seconds: float = 0.0
    pixels: int = 0  # frame pixels, over frames with a GT face
    over: int = 0  # of them redacted away from every face's head
    leaks: list[dict] = field(default_factory=list)  # every leaked instance, for --details

    def add(self, other: Tally) -> None:
        for name in ("faces", "leaked", "faces20", "leaked20", "frames", "frames_leaked", "seconds", "pixels",
                     "over"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self, name: str) -> str:
        pct = lambda a, b: f"{100 * a / b:6.2f}%" if b else "    - "
        return (f"{name:58s} {pct(self.leaked, self.faces)} of {self.faces:5d}  {pct(self.leaked20, self.faces20)} of "
                f"{self.faces20:5d}  {pct(self.frames_leaked, self.frames)} of {self.frames:4d}  {pct(self.over, self.pixels)}  {self.seconds:6.1f} s")


def load_gt(path: Path) -> dict[int, list[tuple[float, float, float, float]]]:
    boxes: dict[int, list[tuple[float, float, float, float]]] = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            box = (float(row["x_left"]), float(row["y_top"]), float(row["width"]), float(row["height"]))
            boxes.setdefault(int(row["frame_index"]), []).append(box)
    return boxes


def redacted_shares(dark: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """The share redacted of the inner 60% of a box and of the whole box, on a boolean "redacted" image."""
    x, y, w, h = box
    height, width = dark.shape

    def share(x0: float, y0: float, x1: float, y1: float) -> float:
        c0, r0 = max(0, int(round(x0))), max(0, int(round(y0)))
        c1, r1 = min(width, int(round(x1))), min(height, int(round(y1)))
        return float(dark[r0:r1, c0:c1].mean()) if c1 > c0 and r1 > r0 else 1.0

    return share(x + 0.2 * w, y + 0.2 * h, x + 0.8 * w, y + 0.8 * h), share(x, y, x + w, y + h)


def protected(inner: float, whole: float) -> bool:
    """The issue's rule."""
    return inner >= 0.95 and whole >= 0.70


def away_from_heads(shape: tuple[int, int], faces: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Pixels outside every face's head: its GT box grown as veil grows a detected face box."""
    away = np.ones(shape, bool)
    for x, y, w, h in faces:
        x0, y0, x1, y1 = head_box(Detection(x, y, x + w, y + h, 1.0))
        away[max(0, int(y0)):max(0, int(np.ceil(y1))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = False
    return away


def score(clip: Path, output: Path, gt: dict[int, list[tuple[float, float, float, float]]]) -> Tally:
    tally = Tally()
    with av.open(str(output)) as container, av.open(str(clip)) as original:
        for index, (frame, source) in enumerate(zip(container.decode(video=0), original.decode(video=0))):
            faces = gt.get(index, [])
            if not faces:
                continue
            # deface's writer scales the frame to a multiple of 16 px: scaled back to the input's size.
            dark = (frame.to_ndarray(format="rgb24", width=source.width, height=source.height) <= DARK).all(axis=2)
            redacted = dark & ~(source.to_ndarray(format="rgb24") <= DARK).all(axis=2)
            tally.pixels += dark.size
            tally.over += int((redacted & away_from_heads(dark.shape, faces)).sum())
            shares = [redacted_shares(dark, box) for box in faces]
            leaks = [not protected(*share) for share in shares]
            tally.leaks += [{"frame": index, "box": box, "inner": round(inner, 4), "whole": round(whole, 4)}
                            for leak, box, (inner, whole) in zip(leaks, faces, shares) if leak]
            tally.faces += len(faces)
            tally.leaked += sum(leaks)
            tally.faces20 += sum(box[3] >= 20 for box in faces)
            tally.leaked20 += sum(leak and box[3] >= 20 for leak, box in zip(leaks, faces))
            tally.frames += 1
            tally.frames_leaked += any(leaks)
    return tally


def run_veil(clip: Path, output: Path, sampling: VideoDetection, profile: str, onto: Path | None = None) -> MediaPlan:
    """veil's plan for `clip`, rendered with black fill onto the clip itself, or (`onto`) onto the
    clip of the same name in that folder: the same frames before they were darkened."""
    media = plan_video(clip, PROFILES[profile], sampling=sampling)
    drawn_on = replace(media, path=str(onto / clip.name), sha256=None) if onto else media
    render_video(drawn_on, RenderSettings(mode="fill"), output)
    return media


def cache_detection_pass(folder: Path, confirm_hits: int) -> None:
    """Keep pass 1's result per clip and sampling under `folder` (--cache): veil.video's scan is
    wrapped, so the plan is still built and rendered by veil's own code from what it found.
    `confirm_hits`: the profile's own, keyed whatever the run's (the tracker's setting, not the scan's)."""
    scan = veil.video._scan

    def cached(container, stream, sampling: VideoDetection, *rest):
        # The clip's path, size and time, and everything else the scan was given: a clip made
        # again, or another sampling, range or set of kinds, is scanned again.
        clip = Path(container.name).resolve()
        key = replace(sampling, confirm_hits=confirm_hits)
        facts = f"{clip} {clip.stat().st_size} {clip.stat().st_mtime_ns} {key} {rest[3:]}"
        path = folder / f"{clip.stem[:60]}.{hashlib.sha256(facts.encode()).hexdigest()[:20]}.pkl"
        if path.exists():
            result, judged = pickle.loads(path.read_bytes())
            # A scan cached by an earlier veil lacks the fields added since: their defaults.
            result = veil.video._Scan(**{**vars(result), "judged": FramesJudged(**judged)})
            # Measured again each time: cheap beside the detectors, and never left from older code.
            result.camera = camera_path(clip, result)
            return result
        result = scan(container, stream, sampling, *rest)
        folder.mkdir(parents=True, exist_ok=True)
        # The counts without their lock, which does not pickle.
        path.write_bytes(pickle.dumps((replace(result, judged=None), result.judged.record())))
        return result

    veil.video._scan = cached


def camera_path(clip: Path, scan: veil.video._Scan) -> CameraPath:
    """The camera's motion through a clip, measured as pass 1 measures it."""
    container = open_input(clip)
    try:
        camera = CameraPath(scan.width, scan.height)
        for index, frame in enumerate(read(container, video_stream(container))):
            camera.add_frame(frame, rotation_of(frame), index in scan.cuts)
        return camera
    finally:
        container.close()


def write_details(folder: Path, set_name: str, clip: Path, media: MediaPlan | None, tally: Tally) -> None:
    out = folder / set_name
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{clip.stem}.leaks.json").write_text(json.dumps(tally.leaks))
    if media is not None:
        (out / f"{clip.stem}.plan.json").write_text(json.dumps(Plan(media=[media]).to_json()))


def run_deface(clip: Path, output: Path) -> None:
    subprocess.run([str(DEFACE), str(clip), "-o", str(output), "--replacewith", "solid", "--keep-audio"],
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="fast", choices=sorted(PROFILES))
    parser.add_argument("--side", type=int, help="override the detection image's longest side")
    parser.add_argument("--max-side", type=int, help="override the longest side a large frame is seen at")
    parser.add_argument("--stride", type=int, help="override the detection stride")
    parser.add_argument("--threshold", type=float, help="override the detection threshold")
    parser.add_argument("--retina-every", type=int, help="override: RetinaFace views on every n-th sampled frame (0: never)")
    parser.add_argument("--overview-threshold", type=float, help="override: CenterFace's overview pass on every "
                        "sampled frame, keeping boxes from this score (0: off)")
    parser.add_argument("--streak-threshold", type=float, help="override: a frame smeared by motion searched "
                        "squeezed along the smear too, keeping boxes from this score (0: off)")
    parser.add_argument("--colourless-gain", type=float, help="override: CenterFace's scores raised this many "
                        "times on frames without colour (0: off)")
    parser.add_argument("--confirm-score", type=float, help="override: tracks of only detections below this "
                        "need the profile's confirm_hits of them")
    parser.add_argument("--confirm-hits", type=int, help="override: how many detections a track of only weak "
                        "ones needs (--cache reuses the detection pass)")
    parser.add_argument("--zoom-floor", type=float, help="override: the closer look at weak RetinaFace boxes "
                        "from this score (0: off)")
    parser.add_argument("--zoom-height", type=int, help="override: the closer look at weak RetinaFace boxes "
                        "at least this many pixels high")
    parser.add_argument("--onto", type=Path, help="veil only: render each plan onto the clip of the same name in "
                        "this folder (the same frames, not darkened) and score that: on a night clip the rule "
                        "cannot tell a face already dark from a hidden one")
    parser.add_argument("--still-camera", action="store_true", help="override: track in the frame's "
                        "coordinates, not the camera's")
    parser.add_argument("--tools", default="veil,deface", help="comma-separated: veil, deface")
    parser.add_argument("--clips", default="", help="only clips whose name contains this")
    parser.add_argument("--limit", type=int, default=0, help="clips per set (0: all)")
    parser.add_argument("--cache", type=Path, help="keep and reuse each clip's detection pass in this folder")
    parser.add_argument("--details", type=Path, help="write each clip's plan and leaked instances to this folder")
    parser.add_argument("--sets", default=",".join(SETS),
                        help="comma-separated sets of ../shared/data/videos to run (empty: only --more)")
    parser.add_argument("--more", type=Path, action="append", default=[],
                        help="another folder of clips with <clip>_gt.csv (make_pan_videos.py); repeatable")
    args = parser.parse_args()
    if any(args.sets.split(",")) and not VIDEOS.is_dir():  # clips of --more alone need no shared data
        sys.exit(f"test videos not found at {VIDEOS}")
    base = VIDEO_DETECTION[args.profile]
    sampling = replace(base, side=args.side or base.side, max_side=args.max_side or base.max_side, stride=args.stride or base.stride,
                       frame=replace(base.frame, threshold=args.threshold or base.frame.threshold),
                       retina_every=base.retina_every if args.retina_every is None else args.retina_every)
    if args.overview_threshold is not None:
        sampling = replace(sampling, overview_threshold=args.overview_threshold or None)
    if args.streak_threshold is not None:
        sampling = replace(sampling, frame=replace(sampling.frame, streak_threshold=args.streak_threshold or None))
    if args.colourless_gain is not None:
        sampling = replace(sampling, colourless_gain=args.colourless_gain or None)
    if args.confirm_score is not None:
        sampling = replace(sampling, confirm_score=args.confirm_score)
    if args.confirm_hits is not None:
        sampling = replace(sampling, confirm_hits=args.confirm_hits)
    if args.zoom_floor is not None:
        sampling = replace(sampling, frame=replace(sampling.frame, zoom_floor=args.zoom_floor or None))
    if args.zoom_height is not None:
        sampling = replace(sampling, frame=replace(sampling.frame, zoom_height=args.zoom_height))
    if args.still_camera:
        veil.video.FOLLOW_CAMERA = False
    if args.cache:
        cache_detection_pass(args.cache, base.confirm_hits)
    tools = {}
    if "veil" in args.tools:
        tools[f"veil {args.profile} {sampling}"] = lambda c, o: run_veil(c, o, sampling, args.profile, args.onto)
    if args.onto and args.tools != "veil":
        sys.exit("--onto draws veil's plans: use it with --tools veil")
    missing = [clip.name for folder in args.more for clip in folder.glob("*.mp4")
               if args.onto and not (args.onto / clip.name).exists()]
    if missing or (args.onto and args.sets):
        sys.exit(f"--onto needs a clip of the same name in {args.onto} for every clip (and --sets \"\"): "
                 f"{', '.join(missing[:3]) or 'the shared sets have none'}")
    if "deface" in args.tools:
        if not DEFACE.exists():
            sys.exit(f"deface not found at {DEFACE}: run bench/setup.sh")
        tools["deface 1.5 (solid)"] = run_deface
    print(f"{'clip':58s} {'leaked (all)':>17s}  {'leaked (>=20px)':>17s}  {'frames leaked':>16s}  {'over':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for tool, run in tools.items():
            print(f"--- {tool}")
            grand = Tally()
            for folder in [VIDEOS / name for name in args.sets.split(",") if name] + args.more:
                name = folder.name
                total = Tally()
                clips = [c for c in sorted(folder.glob("*.mp4")) if args.clips in c.name][: args.limit or None]
                if not clips:
                    continue
                for clip in clips:
                    output = Path(tmp) / f"{clip.stem}.out.mp4"
                    started = time.monotonic()
                    media = run(clip, output)
                    original = args.onto / clip.name if args.onto else clip
                    tally = score(original, output, load_gt(clip.with_name(f"{clip.stem}_gt.csv")))
                    tally.seconds = time.monotonic() - started
                    if args.details:
                        write_details(args.details / tool.split()[0], name, clip, media, tally)
                    print(tally.line(f"  {clip.stem[:56]}"), flush=True)
                    total.add(tally)
                print(total.line(f"{name} total"), flush=True)
                grand.add(total)
            print(grand.line("all sets"), flush=True)


if __name__ == "__main__":
    main()
