"""Can RetinaFace, run on a mosaic of crops, tell CenterFace's weak small faces from hands and hair?

Most of the default profile's over-redaction comes from CenterFace candidates scoring under 0.3
that RetinaFace's views did not confirm (crowd hands, hair, clothing). Here the weak candidates a
rule looks at (after NMS among themselves) each get a square crop `context` times their size,
resized to a `cell` px square; the cells are packed into mosaics of at most `side` x `side`,
RetinaFace runs once per mosaic, and a candidate's verifier score V is the best RetinaFace box
overlapping its cell's centre box (IoU >= 0.3). Rules (`t`: CenterFace's threshold under 40 px):

    threshold t         no verifier: the default is t = 0.1
    <S Vv tT            a candidate kept by threshold T, scoring under S and not confirmed by
                        RetinaFace's views, is dropped when V < v (T < 0.1: also buys recall)
    <0.3 +wV tT         a candidate within w under its size threshold (T under 40 px) and not
                        confirmed is kept when score + w * V passes the threshold

Every pass of the default profile runs once per photo (CenterFace at its decode floor, RetinaFace's
views, the closer look at each weak RetinaFace box); each rule is then applied with veil's own
`select`, `nms`, `fuse`, `face_region`, `redact_frame` and scored with photo_recall.py's rule.
Verifier scores are memoised per candidate, so "verify s/photo" (CPU) is a rule's own cost only
with --fresh, which also times the default's passes in the same process.

    python bench/photo_verify.py --cache /tmp/verify-dev.pkl          # all 396 dev photos
    python bench/photo_verify.py --fresh --every 4 --rules hard        # CPU time per photo
    python bench/photo_verify.py --root /tmp/veil-hard/rot180 --limit 60 --rules hard
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_frontier import Candidates, redacted_mask  # noqa: E402
from photo_recall import DATA, Tally, figures, header, load_ground_truth  # noqa: E402

from veil.detect import (FAST, DetectionProfile, candidates, decode_floor, for_size, prepared,  # noqa: E402
                         nms, retina_candidates, select, shared_detector, shared_retinaface, size_threshold,
                         zoom_confirmed)
from veil.imagefile import read_photo  # noqa: E402
from veil.overlap import any_overlapping, iou_table  # noqa: E402


@dataclass(frozen=True)
class Mosaic:
    context: float
    cell: int
    side: int


@dataclass(frozen=True)
class Rule:
    below: float | None = None  # verify unconfirmed candidates scoring under this (None: no verifier)
    minimum: float = 0.5  # verifier score needed
    small: float = FAST.threshold  # CenterFace's threshold for faces < 40 px
    weight: float = 0.0  # > 0: keep a weak row when score + weight * verifier passes its size threshold
    mosaic: Mosaic = Mosaic(2.0, 64, 512)

    def label(self) -> str:
        if self.below is None:
            return "default" if self.small == FAST.threshold else f"threshold {self.small}"
        m = self.mosaic
        how = f"+{self.weight}V t{self.small}" if self.weight else f"V{self.minimum} t{self.small}"
        return f"<{self.below} {how} {m.context}x{m.cell}/{m.side}"


@dataclass
class Cost:
    mosaics: int = 0  # RetinaFace calls a rule needs
    seconds: float = 0.0  # CPU seconds of the calls made (new candidates only)


@dataclass
class Photo:
    name: str
    path: Path
    height: int
    width: int
    centerface: np.ndarray
    retina: np.ndarray
    turns: np.ndarray  # per RetinaFace row: the quarter turns of its view
    zoomed: np.ndarray  # per RetinaFace row: the closer look's confirming row, or NaNs
    verifier: dict = field(default_factory=dict)  # (mosaic, row bytes) -> score
    seconds: float = 0.0


def collect(root: Path, name: str, profile: DetectionProfile) -> Photo:
    path = root / "images" / name
    started = time.process_time()
    picture = prepared(read_photo(path).pixels, profile)
    rgb, profile = picture.rgb, picture.profile
    cf = candidates(rgb, profile, shared_detector())
    retina, turns = retina_candidates(rgb, profile, shared_retinaface())
    nothing = np.empty((0, 5), np.float32)
    zoomed = np.full((len(retina), 5), np.nan, np.float32)
    for i in range(len(retina)):  # without the "nothing kept overlaps it" test, applied per rule
        found = zoom_confirmed(rgb, retina[i : i + 1], turns[i : i + 1], nothing, profile, shared_retinaface())
        if len(found):
            zoomed[i] = found[0]
    return Photo(name, path, rgb.shape[0], rgb.shape[1], cf, retina, turns, zoomed, seconds=time.process_time() - started)


def square_crop(rgb: np.ndarray, row: np.ndarray, context: float, cell: int) -> np.ndarray:
    """The square `context` times the row's larger side around its centre (zero beyond the image),
    resized to cell x cell."""
    h, w = rgb.shape[:2]
    n = max(2, round(context * max(row[2] - row[0], row[3] - row[1])))
    left, top = round((row[0] + row[2] - n) / 2), round((row[1] + row[3] - n) / 2)
    window = np.zeros((n, n, 3), np.uint8)
    inside = rgb[max(0, top) : max(0, min(h, top + n)), max(0, left) : max(0, min(w, left + n))]
    dy, dx = max(0, -top), max(0, -left)
    window[dy : dy + inside.shape[0], dx : dx + inside.shape[1]] = inside
    return cv2.resize(window, (cell, cell), interpolation=cv2.INTER_AREA if n > cell else cv2.INTER_LINEAR)


def mosaic_scores(rgb: np.ndarray, rows: np.ndarray, m: Mosaic) -> np.ndarray:
    """RetinaFace's score for each row's crop, many crops per call."""
    per = m.side // m.cell
    scores = np.zeros(len(rows), np.float32)
    for start in range(0, len(rows), per * per):
        chunk = rows[start : start + per * per]
        lines = -(-len(chunk) // per)
        mosaic = np.zeros((lines * m.cell, min(len(chunk), per) * m.cell, 3), np.uint8)
        centres = np.zeros((len(chunk), 5), np.float32)
        for j, row in enumerate(chunk):
            y, x = j // per * m.cell, j % per * m.cell
            mosaic[y : y + m.cell, x : x + m.cell] = square_crop(rgb, row, m.context, m.cell)
            k = m.cell / (m.context * max(row[2] - row[0], row[3] - row[1]))
            bw, bh = (row[2] - row[0]) * k, (row[3] - row[1]) * k
            cx, cy = x + m.cell / 2, y + m.cell / 2
            centres[j, :4] = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        found = shared_retinaface().faces(mosaic)
        if len(found):
            overlap = iou_table(centres, found) >= FAST.agree_iou
            scores[start : start + len(chunk)] = np.where(overlap, found[None, :, 4], 0).max(axis=1)
    return scores


def weak_alone(cf: np.ndarray, retina: np.ndarray, profile: DetectionProfile, below: float) -> np.ndarray:
    """CenterFace rows scoring under `below` that no RetinaFace box confirms."""
    confirmed = any_overlapping(cf, retina[retina[:, 4] >= profile.retina_confirmed], profile.agree_iou)
    return (cf[:, 4] < below) & ~confirmed


def kept_rows(photo: Photo, rule: Rule, cost: Cost) -> np.ndarray:
    """The rows the rule keeps, before the final NMS (as veil's `kept`). Leaving out unconfirmed
    weak rows does not change what `select` keeps of the rest: no kept RetinaFace box overlaps them."""
    profile = for_size(replace(FAST, threshold=rule.small), photo.width, photo.height)
    cf, retina = photo.centerface, photo.retina
    if rule.below is not None:
        needed = size_threshold(cf, profile)
        if rule.weight:  # only rows within `weight` under their threshold can change
            weak = (cf[:, 4] > np.maximum(decode_floor(FAST), needed - rule.weight)) & (cf[:, 4] <= needed)
        else:
            weak = cf[:, 4] > needed
        weak &= weak_alone(cf, retina, profile, rule.below)
        reps = nms(cf[weak], FAST.nms_iou)
        scores = verify(photo, reps, rule.mosaic, cost)
        if rule.weight:
            ok = reps[:, 4] + rule.weight * scores > size_threshold(reps, profile)
        else:
            ok = scores >= rule.minimum
        chosen = np.concatenate([select(cf[~weak], retina, photo.turns, profile, photo.width, photo.height), reps[ok]])
    else:
        chosen = select(cf, retina, photo.turns, profile, photo.width, photo.height)
    open_ = ~np.isnan(photo.zoomed[:, 0]) & ~any_overlapping(retina, chosen, FAST.agree_iou)
    return np.concatenate([chosen, photo.zoomed[open_]])


def verify(photo: Photo, rows: np.ndarray, m: Mosaic, cost: Cost) -> np.ndarray:
    missing = [r for r in rows if (m, r.tobytes()) not in photo.verifier]
    if missing:
        rgb = prepared(read_photo(photo.path).pixels, FAST).rgb
        started = time.process_time()
        scores = mosaic_scores(rgb, np.array(missing), m)
        cost.seconds += time.process_time() - started
        photo.verifier.update({(m, r.tobytes()): s for r, s in zip(missing, scores)})
    cost.mosaics += -(-len(rows) // (m.side // m.cell) ** 2)
    return np.array([photo.verifier[(m, r.tobytes())] for r in rows], np.float32)


def evaluate(photos: list[Photo], truth: dict, rule: Rule, fresh: bool) -> tuple[Tally, Cost]:
    tally, cost = Tally(), Cost()
    for photo in photos:
        if fresh:  # time this rule's own mosaics
            photo.verifier.clear()
        rows = kept_rows(photo, rule, cost)
        tally.add(redacted_mask_rows(photo, rows), truth[photo.name])
    return tally, cost


def redacted_mask_rows(photo: Photo, rows: np.ndarray) -> np.ndarray:
    return redacted_mask(Candidates(photo.height, photo.width, rows, {}), np.ones(len(rows), bool), FAST.nms_iou)


RULES = {
    "default": [Rule()],
    "threshold": [Rule(small=t) for t in (0.08, 0.12, 0.14, 0.16)],
    "weight": [Rule(below=0.3, weight=w, small=t) for w in (0.1, 0.2, 0.3) for t in (0.1, 0.12, 0.14)],
    "drop": [Rule(below=b, minimum=v) for b in (0.2, 0.3) for v in (0.05, 0.1)],
    "lower": [Rule(below=0.3, minimum=v, small=t) for t in (0.08, 0.06) for v in (0.05, 0.5)],
    "hard": [Rule(), Rule(below=0.2, minimum=0.05), Rule(below=0.3, weight=0.2, small=0.14)],
    "mosaic": [Rule(below=0.2, minimum=0.05, mosaic=m) for m in (Mosaic(1.6, 48, 480), Mosaic(2.5, 96, 576))],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DATA, help="a WIDER-format set (default: the dev photos)")
    parser.add_argument("--limit", type=int, default=None, help="first N photos only")
    parser.add_argument("--every", type=int, default=1, help="every Nth photo only")
    parser.add_argument("--cache", type=Path, help="a pickle of the collected passes: read if present, else written")
    parser.add_argument("--fresh", action="store_true",
                        help="run every pass and each rule's mosaics anew (their CPU times in one process)")
    parser.add_argument("--rules", nargs="+", default=["default", "threshold", "weight", "drop", "lower"],
                        choices=list(RULES))
    args = parser.parse_args()
    truth = load_ground_truth(args.root)
    names = list(truth)[: args.limit][:: args.every]
    if args.cache and args.cache.exists() and not args.fresh:
        # Matched by path: the hard sets hold photos of the same names.
        wanted = {args.root / "images" / name for name in names}
        photos = [p for p in pickle.loads(args.cache.read_bytes()) if p.path in wanted]
    else:
        photos = []
        for done, name in enumerate(names):
            photos.append(collect(args.root, name, FAST))
            if done % 50 == 49:
                print(f"  collected {done + 1} / {len(names)}", file=sys.stderr, flush=True)
        if args.cache and not args.fresh:
            args.cache.write_bytes(pickle.dumps(photos))
    detect = sum(p.seconds for p in photos) / len(photos)
    print(f"{args.root.name}: {len(photos)} photos; default's passes {detect:.3f} CPU s per photo")
    print(f"{'rule':34s} {header()}  >=80px  mosaics/photo  verify s/photo")
    for group in args.rules:
        for rule in RULES[group]:
            tally, cost = evaluate(photos, truth, rule, args.fresh)
            big = f"{tally.protected[4]}/{tally.total[4]}"
            print(f"{rule.label():34s} {figures(tally)}  {big:>7s}  {cost.mosaics / len(photos):6.2f}"
                  f"  {cost.seconds / len(photos):.3f}", flush=True)


if __name__ == "__main__":
    main()
