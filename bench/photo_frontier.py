"""Recall against over-redaction on WIDER FACE dev: score thresholds, and a second detector.

The default profile misses the issue's over-redaction target (<= 1% of image area) at its
recall target (>= 97.5% of faces >= 20 px protected). This script asks whether anything
cheap moves that trade-off, rather than sliding along it:

- `threshold T`: the score needed by faces under 40 px (the fast profile uses 0.1);
- `verify NET < V`: the fast profile, but a candidate scoring under 0.3 is dropped when
  MTCNN's refine (RNet, 24 px) or output (ONet, 48 px) network, an independently trained
  detector, gives its square crop a face probability under V. Needs the networks exported
  by tools/export_mtcnn.py into bench/out/ (rows are skipped without them).

CenterFace runs once per image (the profile's passes, scores down to 0.06); each rule then
keeps candidates, fuses them with NMS and hides veil's head regions, scored as in
photo_recall.py (protected faces, over-redaction). Candidates are fused once at 0.06 before
the rules apply, so figures differ from photo_recall.py's by up to 0.1 point: compare rows
of one run with each other.

    python bench/photo_frontier.py               # ~8 min on 2 cores, all 396 images
    python bench/photo_frontier.py --limit 100
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import veil  # noqa: F401 -- before onnxruntime: veil switches its telemetry off before it loads
import cv2
import numpy as np
import onnxruntime as ort

from photo_recall import DATA, GroundTruthFace, Tally, figures, header, load_ground_truth
from veil.detect import FAST, DetectionProfile, candidates, for_size, fuse, nms, prepared, shared_detector, size_threshold
from veil.imagefile import read_photo
from veil.plan import RenderSettings
from veil.regions import face_region
from veil.render import redact_frame

MODELS = Path(__file__).resolve().parent / "out"
FLOOR = 0.06
WEAK = 0.3  # the verifier judges candidates scoring under this
VERIFIERS = {"rnet": ("mtcnn_rnet.onnx", 24), "onet": ("mtcnn_onet.onnx", 48)}


@dataclass
class Candidates:
    height: int
    width: int
    rows: np.ndarray  # (x0, y0, x1, y1, score), fused at FLOOR
    face_probability: dict[str, np.ndarray]  # per verifier, one per row


Rule = Callable[[Candidates], np.ndarray]  # which rows to keep


def square_crops(rgb: np.ndarray, rows: np.ndarray, side: int) -> np.ndarray:
    """Each candidate's square (its longer side) around its centre, zero-padded at the image
    edge, resized to side x side, as MTCNN's networks take it."""
    height, width = rgb.shape[:2]
    crops = np.zeros((len(rows), side, side, 3), np.float32)
    for i, (x0, y0, x1, y1, _) in enumerate(rows):
        n = max(1, round(max(x1 - x0, y1 - y0)))
        left, top = round((x0 + x1 - n) / 2), round((y0 + y1 - n) / 2)
        window = np.zeros((n, n, 3), np.uint8)
        inside = rgb[max(0, top) : max(0, min(height, top + n)), max(0, left) : max(0, min(width, left + n))]
        dy, dx = max(0, -top), max(0, -left)
        window[dy : dy + inside.shape[0], dx : dx + inside.shape[1]] = inside
        crops[i] = cv2.resize(window, (side, side), interpolation=cv2.INTER_AREA if n > side else cv2.INTER_LINEAR)
    return np.ascontiguousarray(((crops - 127.5) / 128).transpose(0, 3, 1, 2))


def verifier_sessions() -> dict[str, tuple[ort.InferenceSession, int]]:
    found = {}
    for name, (file, side) in VERIFIERS.items():
        if (MODELS / file).exists():
            found[name] = (ort.InferenceSession(str(MODELS / file), providers=["CPUExecutionProvider"]), side)
    return found


def collect(
    names: list[str], profile: DetectionProfile, verifiers: dict[str, tuple[ort.InferenceSession, int]]
) -> dict[str, Candidates]:
    detector = shared_detector()
    floor = replace(profile, threshold=FLOOR)
    found = {}
    for done, name in enumerate(names):
        picture = prepared(read_photo(DATA / "images" / name).pixels, floor)
        rgb, sized = picture.rgb, picture.profile
        rows = nms(candidates(rgb, sized, detector), profile.nms_iou)
        probability = {
            verifier: session.run(None, {"image": square_crops(rgb, rows, side)})[-1][:, 1] if len(rows) else np.empty(0)
            for verifier, (session, side) in verifiers.items()
        }
        found[name] = Candidates(rgb.shape[0], rgb.shape[1], rows, probability)
        if done % 50 == 49:
            print(f"  candidates: {done + 1} / {len(names)} images", file=sys.stderr, flush=True)
    return found


def redacted_mask(found: Candidates, keep: np.ndarray, nms_iou: float) -> np.ndarray:
    """The pixels veil would hide for the kept candidates: fused, then rendered as veil does."""
    faces = fuse(found.rows[keep], nms_iou, found.width, found.height)
    regions = [face_region(f"f{i}", face) for i, face in enumerate(faces)]
    boxes = [(region, region.boxes[0]) for region in regions]
    canvas = redact_frame(np.zeros((found.height, found.width), np.uint8), boxes, RenderSettings(color=(255, 255, 255)))
    return canvas > 0


def threshold_rule(profile: DetectionProfile) -> Rule:
    return lambda c: c.rows[:, 4] > size_threshold(c.rows, for_size(profile, c.width, c.height))


def verify_rule(profile: DetectionProfile, verifier: str, minimum: float) -> Rule:
    def keep(c: Candidates) -> np.ndarray:
        weak_and_rejected = (c.rows[:, 4] < WEAK) & (c.face_probability[verifier] < minimum)
        return threshold_rule(profile)(c) & ~weak_and_rejected

    return keep


def evaluate(
    rule: Rule, found: dict[str, Candidates], truth: dict[str, list[GroundTruthFace]], nms_iou: float
) -> Tally:
    tally = Tally()
    for name, candidates in found.items():
        keep = rule(candidates) if len(candidates.rows) else np.zeros(0, bool)
        tally.add(redacted_mask(candidates, keep, nms_iou), truth[name])
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: this benchmark needs the WIDER FACE dev images from ../shared/data")
    truth = dict(list(load_ground_truth(DATA).items())[: args.limit])
    verifiers = verifier_sessions()
    if not verifiers:
        print(f"no MTCNN networks in {MODELS}: run tools/export_mtcnn.py for the verify rows", file=sys.stderr)
    found = collect(list(truth), FAST, verifiers)
    rules: list[tuple[str, Rule]] = [
        (f"threshold {t:.2f}", threshold_rule(replace(FAST, threshold=t))) for t in (0.08, 0.1, 0.12, 0.14, 0.16)
    ]
    rules += [
        (f"verify {verifier} < {minimum}", verify_rule(FAST, verifier, minimum))
        for verifier in verifiers
        for minimum in (0.01, 0.02, 0.05, 0.1)
    ]
    print(f"WIDER FACE dev: {len(truth)} images; fast profile's passes; NMS IoU {FAST.nms_iou}")
    print(f"{'rule':20s} {header()}")
    for label, rule in rules:
        print(f"{label:20s} {figures(evaluate(rule, found, truth, FAST.nms_iou))}", flush=True)


if __name__ == "__main__":
    main()
