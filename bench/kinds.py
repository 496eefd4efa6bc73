"""Plates, text and people (--hide): recall, area hidden away from the target, time per kind.

    python bench/kinds.py                         # plates, text, people (40 WIDER images)
    python bench/kinds.py --kinds plates --limit 10
    python bench/kinds.py --kinds far-plates      # the same plates made small and far
    python bench/kinds.py --kinds people --limit 100 --body-ratios
    python bench/kinds.py --kinds far-plates --profiles fast,accurate --kind-only

veil's own planning (`plan_photo`) and rendering (`redact_frame`, solid magenta) on each photo; what
is measured is the rendered mask. Plates (../shared/data/plates/openalpr, 53 photos) and words
(text/icdar2003, 141 words in 38 photos) are protected when >= 95% of the ground-truth box is
hidden (also shown: eval_images.py's rule, >= 95% of the inner 60% and >= 70% of the whole).
People (wider_face_dev): the share of faces >= 20 px that a person region alone protects by
eval_images.py's rule. Far plates: each OpenALPR photo shrunk until its plate is 30-60 px wide
and pasted into a WIDER photo scaled to 1280x720 (made afresh in a temporary folder, seeded).
Area away: the share of each image hidden farther than half the target's height from every target
(plates / words / faces), averaged over images. Time: planning seconds per image for faces alone,
the kind alone and both (load on the machine counts: compare within a run). `--profiles` plans
each photo with each profile in turn (the accurate one adds the text detector's 2x pass);
`--kind-only` times the kind alone.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from veil.detect import FAST, PROFILES, DetectionProfile, detect_faces
from veil.people import detect_people
from veil.photo import plan_photo
from veil.plan import Box, Kind, RenderSettings
from veil.regions import head_box
from veil.render import redact_frame

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MAGENTA = (255, 0, 255)

GroundTruth = dict[Path, list[tuple[int, int, int, int]]]  # photo -> boxes x0, y0, x1, y1


def plates() -> GroundTruth:
    truth: GroundTruth = {}
    for row in csv.DictReader(open(DATA / "plates/openalpr/plates.csv")):
        x, y, w, h = (int(row[k]) for k in "xywh")
        truth.setdefault(DATA / "plates/openalpr/images" / row["file"], []).append((x, y, x + w, y + h))
    return truth


def far_plates(folder: Path) -> GroundTruth:
    """Every OpenALPR photo shrunk so that its plate is 30-60 px wide, pasted at a random place
    into a 1280x720 WIDER photo: the small, far plates the data set has few of."""
    chance = random.Random(7)
    backgrounds = sorted((DATA / "wider_face_dev/images").glob("*/*.jpg"))[200::3]
    truth: GroundTruth = {}
    for i, (path, boxes) in enumerate(plates().items()):
        photo = Image.open(path).convert("RGB")
        plate_width = boxes[0][2] - boxes[0][0]
        factor = min(chance.uniform(30, 60) / plate_width, 1200 / photo.width, 680 / photo.height)
        small = photo.resize((max(1, round(photo.width * factor)), max(1, round(photo.height * factor))), Image.LANCZOS)
        canvas = Image.open(backgrounds[i % len(backgrounds)]).convert("RGB").resize((1280, 720), Image.LANCZOS)
        left, top = chance.randint(0, 1280 - small.width), chance.randint(0, 720 - small.height)
        canvas.paste(small, (left, top))
        canvas.save(folder / f"far_{i:02d}.jpg", quality=92)
        truth[folder / f"far_{i:02d}.jpg"] = [(left + round(x0 * factor), top + round(y0 * factor),
                                               left + round(x1 * factor), top + round(y1 * factor))
                                              for x0, y0, x1, y1 in boxes]
    return truth


def words() -> GroundTruth:
    truth: GroundTruth = {}
    for row in csv.DictReader(open(DATA / "text/icdar2003/words.csv")):
        xs, ys = [int(row[f"x{i}"]) for i in range(4)], [int(row[f"y{i}"]) for i in range(4)]
        truth.setdefault(DATA / "text/icdar2003/images" / row["file"], []).append((min(xs), min(ys), max(xs), max(ys)))
    return truth


def wider_faces(limit: int) -> GroundTruth:
    lines = (DATA / "wider_face_dev/wider_face_val_bbx_gt.txt").read_text().split("\n")
    truth: GroundTruth = {}
    i = 0
    while i < len(lines) and lines[i].strip():
        name, count = lines[i].strip(), int(lines[i + 1])
        boxes = []
        for row in lines[i + 2:i + 2 + count]:
            x, y, w, h, *flags = (int(v) for v in row.split()[:10])
            if w > 0 and h > 0 and flags[3] == 0:  # not flagged invalid
                boxes.append((x, y, x + w, y + h))
        truth[DATA / "wider_face_dev/images" / name] = boxes
        i += 2 + max(count, 1)
    return dict(sorted(truth.items())[:limit or None])


def hidden_mask(path: Path, hide: tuple[Kind, ...], only: Kind | None = None,
                profile: DetectionProfile = FAST) -> tuple[np.ndarray, float]:
    """What veil hides in the photo (rendered), and the seconds planning took."""
    started = time.perf_counter()
    media = plan_photo(path, profile, hide=hide)
    seconds = time.perf_counter() - started
    canvas = np.zeros((media.height, media.width, 3), np.uint8)
    boxes = [(r, b) for r in media.regions for b in r.boxes.values() if only is None or r.kind == only]
    redact_frame(canvas, boxes, RenderSettings("fill", MAGENTA))
    return (canvas == MAGENTA).all(-1), seconds


def protected(mask: np.ndarray, box: tuple[int, int, int, int]) -> tuple[bool, bool]:
    """(>= 95% of the whole box hidden, eval_images.py's rule)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    inner = mask[y0 + int(0.2 * h):max(y1 - int(0.2 * h), y0 + int(0.2 * h) + 1),
                 x0 + int(0.2 * w):max(x1 - int(0.2 * w), x0 + int(0.2 * w) + 1)]
    whole = mask[y0:y1, x0:x1].mean()
    return bool(whole >= 0.95), bool(inner.mean() >= 0.95 and whole >= 0.70)


def away(mask: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> float:
    """Share of the image hidden farther than half a target's height from every target."""
    near = np.zeros_like(mask)
    for x0, y0, x1, y1 in boxes:
        m = (y1 - y0) // 2
        near[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m] = True
    return float((mask & ~near).mean())


def score_boxes(name: str, kind: Kind, truth: GroundTruth, profiles: list[DetectionProfile], kind_only: bool) -> None:
    """Each profile's figures; the profiles take turns on each photo, so load hits them alike."""
    strict, rule, areas = ({p.name: [] for p in profiles} for _ in range(3))
    times = {f"{p.name} {k}": [] for p in profiles for k in (["faces"] if not kind_only else []) + [name]
             + ([f"faces,{name}"] if not kind_only else [])}
    for path, boxes in truth.items():
        for profile in profiles:
            mask, seconds = hidden_mask(path, (kind,), profile=profile)
            times[f"{profile.name} {name}"].append(seconds)
            if not kind_only:
                times[f"{profile.name} faces"].append(hidden_mask(path, ("face",), profile=profile)[1])
                times[f"{profile.name} faces,{name}"].append(hidden_mask(path, ("face", kind), profile=profile)[1])
            for box in boxes:
                a, b = protected(mask, box)
                strict[profile.name].append(a)
                rule[profile.name].append(b)
            areas[profile.name].append(away(mask, boxes))
    for profile in profiles:
        s, r = strict[profile.name], rule[profile.name]
        timing = ", ".join(f"{k} {np.mean(v):.2f} s" for k, v in times.items() if k.startswith(profile.name + " "))
        print(f"{name} [{profile.name}]: {sum(s)}/{len(s)} = {np.mean(s):.1%} protected (>= 95% of box), "
              f"{sum(r)}/{len(r)} = {np.mean(r):.1%} (eval_images rule); area away {np.mean(areas[profile.name]):.2%}; "
              f"{len(truth)} photos; plan time per photo: {timing}", flush=True)


def score_people(truth: GroundTruth) -> None:
    ok = total = 0
    areas, seconds = [], []
    for path, boxes in truth.items():
        mask, took = hidden_mask(path, ("person",), only="person")
        seconds.append(took)
        for box in boxes:
            if box[3] - box[1] >= 20:
                ok += protected(mask, box)[1]
                total += 1
        areas.append(float(mask.mean()))
    print(f"people: {ok}/{total} = {ok / max(total, 1):.2%} of faces >= 20 px inside a person region "
          f"(eval_images rule); area hidden {np.mean(areas):.1%} of each photo; {len(truth)} photos; "
          f"plan time per photo (people) {np.mean(seconds):.2f} s")


def body_ratios(truth: GroundTruth) -> None:
    """The median detected person around a detected face, in head-box widths and heights, over
    pairs where the person holds that one head only (a box around a group says nothing of a body)."""
    widths, heights = [], []
    for path in truth:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        heads = [Box(*head_box(face)) for face in detect_faces(rgb, FAST)]
        for person in detect_people(rgb):
            held = [h for h in heads if h.x0 >= person.x0 and h.x1 <= person.x1 and h.y0 >= person.y0 - h.height
                    and h.y1 <= person.y1]
            if len(held) == 1:
                widths.append(person.width / held[0].width)
                heights.append((person.y1 - held[0].y0) / held[0].height)
    print(f"body from face: {len(widths)} pairs; width x{np.median(widths):.2f} "
          f"(p75 {np.percentile(widths, 75):.2f}), height below the head top x{np.median(heights):.2f} "
          f"(p75 {np.percentile(heights, 75):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="plates,text,people")
    parser.add_argument("--limit", type=int, default=0, help="photos per data set (people: default 40)")
    parser.add_argument("--body-ratios", action="store_true", help="measure the body derived from a face")
    parser.add_argument("--profiles", default="fast", help="comma list of detection profiles: fast, accurate")
    parser.add_argument("--kind-only", action="store_true", help="time the kind alone, not faces and both")
    args = parser.parse_args()
    profiles = [PROFILES[p] for p in args.profiles.split(",")]
    kinds = args.kinds.split(",")
    cut = (lambda t: dict(list(t.items())[:args.limit or None]))
    if "plates" in kinds:
        score_boxes("plates", "plate", cut(plates()), profiles, args.kind_only)
    if "far-plates" in kinds:
        with tempfile.TemporaryDirectory() as folder:
            score_boxes("far-plates", "plate", cut(far_plates(Path(folder))), profiles, args.kind_only)
    if "text" in kinds:
        score_boxes("text", "text", cut(words()), profiles, args.kind_only)
    if "people" in kinds or args.body_ratios:
        faces = wider_faces(args.limit or 40)
        if args.body_ratios:
            body_ratios(faces)
        if "people" in kinds:
            score_people(faces)


if __name__ == "__main__":
    main()
