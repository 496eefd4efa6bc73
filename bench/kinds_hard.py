"""Plates, text and people (--hide) in hard cases made from the dev photos: what is left visible.

    python bench/kinds_hard.py --kinds plates --limit 20          # ~8 min on 2 busy cores
    python bench/kinds_hard.py --kinds text --limit 12
    python bench/kinds_hard.py --kinds people --limit 20
    python bench/kinds_hard.py --kinds plates --cases plain,close50,curved --save /tmp/hard-plates

Each case is made afresh from the photos bench/kinds.py uses (never commit them), the targets'
outlines carried through exactly:

- plates and text: quarter turns (`rot90` counter-clockwise, `rot180`, `rot270`); a camera held at
  a tilt (`tilt15`, `tilt30`, `tilt45`: turned, then cropped to the largest upright rectangle of the
  photo's shape, no corners); a picture turned in an editor (`turn15`: black corners); close-ups
  (`close50`, `close100`: the largest target spans that share of a 1024 px wide 4:3 frame); a very
  small one (`small`: the photo shrunk until the largest target is 28 px wide, on a grey 1280x720
  canvas); `perspective` (close50 seen from the side: its right edge shrunk to 56% of its height,
  the width to 75%); `curved` (the largest target at 60% of the frame, bent as a label round a
  bottle: rows sag by 12% of the height in the middle, columns crowd towards the sides); `jpeg10`
  (JPEG quality 10); `dark` (gamma 1.6, 14% of the light, noise, JPEG 85: a night shot); text only:
  `vertical` (the largest word cut into as many equal slices as it has letters, stacked top to bottom
  where it stood, the word itself painted over: a sign written downwards).
- people (the first WIDER photos; faces >= 20 px): quarter turns (lying down, upside down); `fill`
  (the largest face's person, head and a body of 2.6 x 5 face boxes, cropped to fill a 720 px high
  frame); `cut` (the frame's left edge through the largest face, a quarter of its width in, and its
  bottom just below the chin: the face, cut, scored as the part left inside). In the plain and
  turned cases each face's body is scored too, as a stand-in (the data has no person boxes): the
  box veil derives below a head (people.BODY_WIDTH x BODY_HEIGHT face boxes from the face's top,
  within the photo), turned with the photo; the share of it hidden (mean over faces >= 20 px), and
  how many are hidden to >= 80%. Upright, it shows how far detected people reach past that box as
  well as the derived bodies; turned, whether a body is hidden along the body or across it.

veil's own planning (`plan_photo`, fast profile, the one kind asked) and rendering (`redact_frame`), as
bench/kinds.py. A target is protected when >= 95% of its own outline (a turned box is scored on its
own pixels, not on its bounds) is hidden; eval_images.py's rule (>= 95% of the outline shrunk to 60%
about its centre, >= 70% of the whole) beside it. Close-ups, small, perspective, curved and vertical
score the largest target only. Left visible: targets not protected, each listed with its size and the
share of it hidden. People: faces protected by person regions alone (eval_images rule, as
bench/kinds.py).

`--video`: each case's picture made into a still clip instead (H.264, CRF 18, 25 fps, `--frames`
frames) and planned by veil's video flow (`plan_video`); a target counts as hidden where it is
hidden on every frame (a paused frame is a photo). For the turned people cases: whether bodies
derived from face tracks run along the people too.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kinds import DATA, MAGENTA, hidden_mask, plates, wider_faces, words  # noqa: E402

from veil.detect import FAST  # noqa: E402
from veil.people import BODY_HEIGHT, BODY_WIDTH  # noqa: E402
from veil.plan import Kind, RenderSettings  # noqa: E402
from veil.render import redact_frame  # noqa: E402
from veil.video import plan_video  # noqa: E402

Outline = np.ndarray  # N x 2 points, x and y
Case = tuple[np.ndarray, list[Outline]]  # the picture and the outlines scored in it

BOX_CASES = ("plain", "rot90", "rot180", "rot270", "tilt15", "tilt30", "tilt45", "turn15", "close50", "close100",
             "small", "perspective", "curved", "jpeg10", "dark")
PEOPLE_CASES = ("plain", "rot90", "rot180", "rot270", "fill", "cut")
CLOSE_UP_WIDTH = 1024


def box_outline(x0: float, y0: float, x1: float, y1: float, points: int = 16) -> Outline:
    """The box's edges as points (a curved warp bends each edge, so a few corners would not do)."""
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    steps = np.linspace(0, 1, points, endpoint=False)[:, None]
    return np.concatenate([corners[i] + (corners[(i + 1) % 4] - corners[i]) * steps for i in range(4)])


def warped(rgb: np.ndarray, outlines: list[Outline], matrix: np.ndarray, size: tuple[int, int]) -> Case:
    out = cv2.warpPerspective(rgb, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return out, [cv2.perspectiveTransform(o[None], matrix)[0] for o in outlines]


def turned(rgb: np.ndarray, outlines: list[Outline], degrees: float) -> Case:
    """Turned about the centre onto a canvas that holds it all (black corners)."""
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, s = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(round(h * s + w * c)), int(round(h * c + w * s))
    matrix[:, 2] += (nw / 2 - w / 2, nh / 2 - h / 2)
    return warped(rgb, outlines, np.vstack([matrix, [0, 0, 1]]), (nw, nh))


def tilted(rgb: np.ndarray, outlines: list[Outline], degrees: float) -> Case:
    """A camera held at a tilt: turned, then cropped to the largest rectangle of the photo's shape
    inside the turned picture."""
    h, w = rgb.shape[:2]
    out, moved = turned(rgb, outlines, degrees)
    a = np.radians(abs(degrees))
    k = min(w, h) / (min(w, h) * np.cos(a) + max(w, h) * np.sin(a))
    nh, nw = out.shape[:2]
    shift = np.array([[1, 0, -(nw - w * k) / 2], [0, 1, -(nh - h * k) / 2], [0, 0, 1]])
    return warped(out, moved, shift, (int(w * k), int(h * k)))


def quarter_turns(rgb: np.ndarray, outlines: list[Outline], turns: int) -> Case:
    """Exact quarter turns counter-clockwise (np.rot90)."""
    h, w = rgb.shape[:2]
    moved = []
    for o in outlines:
        x, y, width, height = o[:, 0], o[:, 1], w, h
        for _ in range(turns):
            x, y, width, height = y, width - x, height, width
        moved.append(np.stack([x, y], 1))
    return np.ascontiguousarray(np.rot90(rgb, turns)), moved


def close_up(rgb: np.ndarray, outlines: list[Outline], target: Outline, share: float) -> Case:
    """A 4:3 frame CLOSE_UP_WIDTH wide round `target`, which spans `share` of its width."""
    (x0, y0), (x1, y1) = target.min(0), target.max(0)
    cw = (x1 - x0) / share
    k = CLOSE_UP_WIDTH / cw
    left, top = (x0 + x1) / 2 - cw / 2, (y0 + y1) / 2 - 0.375 * cw
    return warped(rgb, outlines, np.array([[k, 0, -left * k], [0, k, -top * k], [0, 0, 1]]),
                  (CLOSE_UP_WIDTH, round(0.75 * CLOSE_UP_WIDTH)))


def shrunk(rgb: np.ndarray, outlines: list[Outline], target: Outline, width: int,
           canvas: tuple[int, int] = (1280, 720)) -> Case:
    """The photo shrunk until `target` is `width` px wide, in the middle of a grey canvas."""
    h, w = rgb.shape[:2]
    k = width / np.ptp(target[:, 0])
    matrix = np.array([[k, 0, (canvas[0] - w * k) / 2], [0, k, (canvas[1] - h * k) / 2], [0, 0, 1]])
    out, moved = warped(rgb, outlines, matrix, canvas)
    inside = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, canvas) > 0
    grey = np.full_like(out, 110)
    grey[inside] = out[inside]
    return grey, moved


def seen_from_the_side(rgb: np.ndarray, outlines: list[Outline]) -> Case:
    h, w = rgb.shape[:2]
    source = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    seen = np.float32([[0, 0], [0.75 * w, 0.22 * h], [0.75 * w, 0.78 * h], [0, h]])
    return warped(rgb, outlines, cv2.getPerspectiveTransform(source, seen), (int(0.75 * w), h))


def bent(rgb: np.ndarray, outlines: list[Outline], sag: float = 0.12) -> Case:
    """Rows sag by up to `sag` x the height in the middle and columns crowd towards the sides, as
    on a label round a bottle."""
    h, w = rgb.shape[:2]
    half, lift = w / 2, sag * h
    ys, xs = np.mgrid[0:h + int(lift) + 1, 0:w].astype(np.float32)
    u = (xs - half) / half
    source_x = half + half * np.arcsin(np.clip(u, -1, 1)) / (np.pi / 2)
    source_y = ys - lift * (1 - u ** 2)
    out = cv2.remap(rgb, source_x, source_y, cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    moved = []
    for o in outlines:
        x = half + half * np.sin(np.clip((o[:, 0] - half) / half, -1, 1) * np.pi / 2)
        moved.append(np.stack([x, o[:, 1] + lift * (1 - ((x - half) / half) ** 2)], 1))
    return out, moved


def as_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def at_night(rgb: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 2.5, rgb.shape)
    return as_jpeg(np.clip(255 * (rgb / 255.0) ** 1.6 * 0.14 + noise, 0, 255).astype(np.uint8), 85)


def written_downwards(rgb: np.ndarray, target: Outline, letters: int) -> Case:
    """The word in `target` cut into `letters` equal slices stacked top to bottom where it stood (the
    word painted over with its border's median colour; the picture extended downwards if need be)."""
    (x0, y0), (x1, y1) = np.floor(target.min(0)).astype(int), np.ceil(target.max(0)).astype(int)
    word = rgb[y0:y1, x0:x1].copy()
    out = rgb.copy()
    out[y0:y1, x0:x1] = np.median(np.concatenate([word[0], word[-1], word[:, 0], word[:, -1]]), 0)
    step = word.shape[1] / letters
    slices = [word[:, round(i * step):round((i + 1) * step)] for i in range(letters)]
    width = max(s.shape[1] for s in slices)
    column = np.concatenate([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)), mode="edge") for s in slices])
    below = y0 + column.shape[0] - out.shape[0]
    if below > 0:
        out = np.concatenate([out, np.repeat(out[-1:], below, 0)])
    out[y0:y0 + column.shape[0], x0:x0 + width] = column
    return out, [box_outline(x0, y0, x0 + width, y0 + column.shape[0])]


def largest(outlines: list[Outline]) -> int:
    return max(range(len(outlines)), key=lambda i: np.ptp(outlines[i][:, 0]) * np.ptp(outlines[i][:, 1]))


def box_case(case: str, rgb: np.ndarray, outlines: list[Outline], letters: int) -> Case:
    """A plate or text case; `letters`: the largest target's (vertical only)."""
    t = largest(outlines)
    largest_only: dict[str, Callable[[], Case]] = {
        "close50": lambda: close_up(rgb, outlines, outlines[t], 0.5),
        "close100": lambda: close_up(rgb, outlines, outlines[t], 1.0),
        "small": lambda: shrunk(rgb, outlines, outlines[t], 28),
        "perspective": lambda: seen_from_the_side(*close_up(rgb, outlines, outlines[t], 0.5)),
        "curved": lambda: bent(*close_up(rgb, outlines, outlines[t], 0.6)),
    }
    if case in largest_only:
        out, moved = largest_only[case]()
        return out, [moved[t]]
    if case == "vertical":
        return written_downwards(rgb, outlines[t], max(3, letters))
    if case.startswith("rot"):
        return quarter_turns(rgb, outlines, int(case[3:]) // 90)
    if case.startswith("tilt"):
        return tilted(rgb, outlines, float(case[4:]))
    if case.startswith("turn"):
        return turned(rgb, outlines, float(case[4:]))
    return {"plain": lambda: (rgb, outlines), "jpeg10": lambda: (as_jpeg(rgb, 10), outlines),
            "dark": lambda: (at_night(rgb), outlines)}[case]()


def person_case(case: str, rgb: np.ndarray, faces: list[Outline]) -> Case:
    t = largest(faces)
    (x0, y0), (x1, y1) = faces[t].min(0), faces[t].max(0)
    fw, fh = x1 - x0, y1 - y0
    h, w = rgb.shape[:2]
    if case == "fill":
        left, top = max(0, (x0 + x1) / 2 - 1.3 * fw), max(0, y0 - 0.3 * fh)
        right, bottom = min(w, (x0 + x1) / 2 + 1.3 * fw), min(h, y0 + 5 * fh)
        k = 720 / (bottom - top)
        out, moved = warped(rgb, faces, np.array([[k, 0, -left * k], [0, k, -top * k], [0, 0, 1]]),
                            (int((right - left) * k), 720))
        return out, [moved[t]]
    if case == "cut":
        left, bottom = max(0, x0 + 0.25 * fw), min(h, y1 + 0.6 * fh)
        out, moved = warped(rgb, faces, np.array([[1, 0, -left], [0, 1, 0], [0, 0, 1]], float),
                            (int(w - left), int(bottom)))
        whole = [o for i, o in enumerate(moved) if i != t and o[:, 0].min() >= 0 and o[:, 1].max() <= bottom]
        return out, whole + [np.stack([moved[t][:, 0].clip(0), moved[t][:, 1]], 1)]
    return box_case(case, rgb, faces, 0)


def outline_mask(shape: tuple[int, int], outline: Outline, shrink: float = 1.0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    centre = outline.mean(0)
    cv2.fillPoly(mask, [np.round(centre + shrink * (outline - centre)).astype(np.int32)], 1)
    return mask > 0


def hidden_share(mask: np.ndarray, outline: Outline, shrink: float = 1.0) -> float:
    inside = outline_mask(mask.shape, outline, shrink)
    return float(mask[inside].mean()) if inside.any() else 1.0


def face_height(outline: Outline, case: str) -> float:
    """The face's height as it stood before a quarter turn laid it on its side."""
    return float(np.ptp(outline[:, 0 if case in ("rot90", "rot270") else 1]))


@dataclass
class Tally:
    protected: int = 0
    by_rule: int = 0
    targets: int = 0
    left: list[str] = field(default_factory=list)
    bodies: list[float] = field(default_factory=list)  # each body's share hidden (people)


def body_outline(face: Outline, width: int, height: int) -> Outline:
    """The body below an upright face's box, as veil derives one (people.body_below), in the photo."""
    (x0, y0), (x1, y1) = face.min(0), face.max(0)
    cx, bw = (x0 + x1) / 2, BODY_WIDTH * (x1 - x0)
    return box_outline(max(0.0, cx - bw / 2), y0, min(float(width), cx + bw / 2),
                       min(float(height), y0 + BODY_HEIGHT * (y1 - y0)))


def still_clip(rgb: np.ndarray, path: Path, frames: int) -> np.ndarray:
    """The picture (cut to even sides) as a still H.264 clip; the picture as written."""
    import av

    even = rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = even.shape[1], even.shape[0], "yuv420p"
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")))
        container.mux(stream.encode())
    return even


def hidden_every_frame(path: Path, hide: tuple[Kind, ...], only: Kind) -> np.ndarray:
    """What veil's video plan hides on every frame of the clip (its regions of kind `only`)."""
    media = plan_video(path, FAST, hide=hide)
    always = np.ones((media.height, media.width), bool)
    for frame in range(media.frame_count):
        canvas = np.zeros((media.height, media.width, 3), np.uint8)
        redact_frame(canvas, [(r, r.boxes[frame]) for r in media.regions if r.kind == only and frame in r.boxes],
                     RenderSettings("fill", MAGENTA))
        always &= (canvas == MAGENTA).all(-1)
    return always


def score(kind: str, cases: list[str], limit: int, save: Path | None, frames: int = 0) -> dict[str, Tally]:
    hide = {"plates": "plate", "text": "text", "people": "person"}[kind]
    if kind == "people":
        truth = wider_faces(limit or 40)
    else:
        truth = dict(sorted((plates() if kind == "plates" else words()).items())[:limit or None])
    letters = {}
    for row in csv.DictReader(open(DATA / "text/icdar2003/words.csv")):
        letters.setdefault(DATA / "text/icdar2003/images" / row["file"], []).append(len(row["text"]))
    tallies = {case: Tally() for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        for path, boxes in truth.items():
            rgb = np.asarray(Image.open(path).convert("RGB"))
            outlines = [box_outline(*box) for box in boxes]
            if not outlines or (kind == "people" and max(np.ptp(o[:, 1]) for o in outlines) < 20):
                continue
            for case in cases:
                bodies: list[Outline] = []
                if kind == "people" and (case == "plain" or case.startswith("rot")):
                    height, width = rgb.shape[:2]
                    picture, moved = box_case(case, rgb, outlines + [body_outline(o, width, height) for o in outlines],
                                              0)
                    scored, bodies = moved[:len(outlines)], moved[len(outlines):]
                elif kind == "people":
                    picture, scored = person_case(case, rgb, outlines)
                else:
                    counts = letters.get(path, [0] * len(outlines))
                    picture, scored = box_case(case, rgb, outlines, counts[largest(outlines)])
                if frames:
                    file = Path(folder) / f"{path.stem}_{case}.mp4"
                    picture = still_clip(picture, file, frames)
                    mask = hidden_every_frame(file, (hide,), hide)
                else:
                    file = Path(folder) / f"{path.stem}_{case}.png"
                    Image.fromarray(picture).save(file, compress_level=1)
                    mask, _ = hidden_mask(file, (hide,), only=hide)
                file.unlink()
                tally = tallies[case]
                for i, outline in enumerate(scored):
                    if kind == "people" and face_height(outline, case) < 20:  # as bench/kinds.py
                        continue
                    whole, inner = hidden_share(mask, outline), hidden_share(mask, outline, 0.6)
                    tally.targets += 1
                    tally.protected += whole >= 0.95
                    tally.by_rule += inner >= 0.95 and whole >= 0.70
                    if whole < 0.95:
                        size = np.ptp(outline, 0)
                        tally.left.append(f"{path.name}#{i} {size[0]:.0f}x{size[1]:.0f} px, {whole:.0%} hidden")
                    if bodies:
                        tally.bodies.append(hidden_share(mask, bodies[i]))
                if save:
                    shown = picture.copy()
                    shown[mask] = (0.4 * shown[mask] + 0.6 * np.array([255, 0, 255])).astype(np.uint8)
                    cv2.polylines(shown, [np.round(o).astype(np.int32) for o in scored], True, (0, 255, 0), 2)
                    Image.fromarray(shown).save(save / f"{path.stem}_{case}.png")
            print(f"  {path.name}", file=sys.stderr, flush=True)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="plates,text,people")
    parser.add_argument("--cases", default="", help="comma list (default: every case of the kind)")
    parser.add_argument("--limit", type=int, default=0, help="photos per kind (people: default 40)")
    parser.add_argument("--video", action="store_true", help="each case as a still clip, planned as video")
    parser.add_argument("--frames", type=int, default=25, help="frames of each --video clip")
    parser.add_argument("--save", type=Path, help="write each case with what was hidden (magenta) and the targets")
    args = parser.parse_args()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds.split(","):
        every = PEOPLE_CASES if kind == "people" else BOX_CASES + (("vertical",) if kind == "text" else ())
        cases = args.cases.split(",") if args.cases else list(every)
        started = time.perf_counter()
        tallies = score(kind, [c for c in cases if c in every], args.limit, args.save,
                        args.frames if args.video else 0)
        print(f"{kind} ({time.perf_counter() - started:.0f} s)")
        for case, t in tallies.items():
            print(f"  {case:12s} protected {t.protected:4d}/{t.targets:<4d} eval_images rule "
                  f"{t.by_rule:4d}/{t.targets:<4d} left visible {t.targets - t.protected}"
                  + (f"  bodies: {np.mean(t.bodies):.1%} hidden, {sum(b >= 0.8 for b in t.bodies)}/{len(t.bodies)}"
                     " >= 80%" if t.bodies else ""), flush=True)
            for left in t.left:
                print(f"      {left}")


if __name__ == "__main__":
    main()
