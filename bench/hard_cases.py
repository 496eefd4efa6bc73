"""Hard cases made from the WIDER FACE dev photos: what a plain crowd photo does not test.

The dev photos are mostly upright people at a distance. The faces veil left visible on unseen
photos were of other kinds: a close-up face filling the frame, people lying down or upside
down, faces partly covered (a hand, a surgical mask, body paint). This script makes such
cases from the dev photos, with exact ground truth, so that detection profiles can be
chosen on them as well as on the plain set:

    rot90, rot180, rot270  dev photos turned a quarter, half, three quarters counter-clockwise
                           (every other photo, each in one set only); boxes turned exactly
    rot90b, rot180b, rot270b  the other photos turned the same way: the turned views and the
                           rules for them were chosen on the three sets above, never on these
    closeup                (every third photo) a crop around one face >= 50 px high that fills 50-100% of the crop's
                           height, upscaled to 1,024 px on its longer side
    occluded               up to three faces >= 24 px per photo partly covered by a pasted
                           hand-sized patch: skin-coloured and textured (a hand across the face,
                           over the eyes) or mask-coloured over the lower half

and four sets for the conditions photos are taken and shared in (every fourth dev photo each,
with a random generator of their own so that the sets above stay as they were):

    dark                   a night shot: light cut to 5-15% in linear terms, then sensor noise
    shared                 as a messaging app passes it on: defocus blur, JPEG quality 20-35
    small                  a web thumbnail: longer side 640 px (faces shrink, most to under 40 px)
    large                  a phone camera's size: longer side 4,032 px (faces 4x, CenterFace tiled)
    large_turned           the `large` set's photos turned a quarter, half or three quarters (in
                           turn) before they are scaled: a person lying down in a phone's photo

and one without colour (black and white prints, infrared night footage), made from every photo:

    gray                   the photo's luma (ITU-R 601, as OpenCV's RGB2GRAY) in all three channels

and one for a face the frame cuts (a person entering the picture, a tight crop), from every photo
with a face >= 40 px:

    edge                   the photo cropped at the edge nearest one such face (drawn), so that
                           60-90% of the face is left inside; its box is cut with it

and one for a face larger than the picture (a camera held close to someone's face, a documentary's
shot of the eyes), one case for each face >= 150 px high:

    ecu                    a 960x540 frame 0.6 or 0.75 times as wide as the face (every other face),
                           at 0.42 or 0.55 of its height (every other pair): eyes and brows, or
                           eyes and nose, fill it; its box is the face's, cut to the frame

and two for people lying on the ground at an angle or a tilted camera, from every other photo
(those the quarter-turned sets do not hold):

    tilt, tilt20           the photo turned 30-60 (tilt20: 15-25) degrees either way about its
                           centre, on a canvas that holds all of it (corners: the border
                           replicated); a box is the upright bounds of the turned box shrunk to 80%

and one for a camera swung or shaken at a slant (every sixth photo, from the fourth):

    diagonal               motion blur along a line 1.2-3% of the width long at 30-60 degrees
                           either way (boxes unchanged)

and two of a shape no camera frame has, which views of the whole picture shrink to a sliver:

    panorama               six photos side by side at 1,000 px high (every fourth photo, from the
                           third), about 8,000 px wide: a phone's panorama
    longshot               seven photos stacked at 1,080 px wide (every fourth, from the first),
                           about 5,000-6,000 px high: a phone's long screenshot of a feed

    python bench/hard_cases.py make /tmp/veil-hard           # writes the sets (never commit them)
    python bench/hard_cases.py make /tmp/veil-hard --sets dark small   # only these
    python bench/hard_cases.py score /tmp/veil-hard          # fast and accurate on plain + every set
    python bench/hard_cases.py score /tmp/veil-hard --profile fast --sets closeup --limit 50

Each set is written as WIDER FACE: <set>/images/<name>.png and <set>/wider_face_val_bbx_gt.txt
(faces cut to under 60% by a crop are flagged invalid: not scored, and hiding them is not
over-redaction), so /work/shared/tools/eval_images.py (`--tool veil --data OUT/<set>`) scores
them too. `score` uses photo_recall.py's rule (protected / over-redaction) and veil's own flow
(plan_photo, render_photo with a magenta fill into PNG); "plain" is the dev set itself.
Prints figures only; asserts nothing. Generated images are derived from WIDER FACE
(research use only): keep them out of the repository.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_recall import BENCH_PROFILES, DATA, MAGENTA, GroundTruthFace, Tally, figures, header, load_ground_truth  # noqa: E402

from veil.imagefile import read_photo  # noqa: E402
from veil.photo import plan_photo, render_photo  # noqa: E402
from veil.plan import RenderSettings  # noqa: E402

SETS = ("rot90", "rot180", "rot270", "rot90b", "rot180b", "rot270b", "closeup", "occluded", "dark", "shared", "small",
        "large", "large_turned", "gray", "edge", "tilt", "tilt20", "ecu", "panorama", "longshot", "diagonal")
ECU_MIN_HEIGHT = 150
SEED = 20261129
CONDITIONS_SEED = 20261130
EDGE_SEED = 20261201
TILT_SEED = 20261260
DIAGONAL_SEED = 20261207
TILTS = {"tilt": (30, 60), "tilt20": (15, 25)}  # degrees either way
CLOSEUP_SIDE = 1024
# A phone's panorama (photos side by side at one height) and long screenshot (photos stacked at one width).
PANORAMA = {"panorama": (1000, 6), "longshot": (1080, 7)}  # the shared side in px, photos per picture
SKIN = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 51, 23)]
MASK = [(168, 207, 223), (190, 222, 206), (236, 236, 236), (40, 40, 46)]

Faces = list[GroundTruthFace]
Case = tuple[str, np.ndarray, Faces]  # name, RGB pixels, ground truth


def turned(rgb: np.ndarray, faces: Faces, turns: int) -> tuple[np.ndarray, Faces]:
    """np.rot90 (counter-clockwise) of the photo and of its boxes."""
    h, w = rgb.shape[:2]
    out = []
    for f in faces:
        if turns == 1:
            x, y, bw, bh = f.y, w - f.x - f.w, f.h, f.w
        elif turns == 2:
            x, y, bw, bh = w - f.x - f.w, h - f.y - f.h, f.w, f.h
        else:
            x, y, bw, bh = h - f.y - f.h, f.x, f.h, f.w
        out.append(GroundTruthFace(x, y, bw, bh, f.valid))
    return np.ascontiguousarray(np.rot90(rgb, turns)), out


def swung(rgb: np.ndarray, rnd: random.Random) -> np.ndarray:
    """Motion blur along a slant: a line 1.2-3% of the photo's width long at 30-60 degrees either
    way, as a camera swung or shaken at a slant smears it."""
    length = max(5, round(rgb.shape[1] * rnd.uniform(0.012, 0.03)))
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1
    turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rnd.uniform(30, 60) * rnd.choice((-1, 1)), 1)
    line = cv2.warpAffine(line, turn, (length, length))
    return cv2.filter2D(rgb, -1, line / line.sum(), borderType=cv2.BORDER_REFLECT)


def tilted(rgb: np.ndarray, faces: Faces, angle: float) -> tuple[np.ndarray, Faces]:
    """The photo turned `angle` degrees (counter-clockwise) about its centre on a canvas that holds
    all of it, the corners filled by replicating the border (no hard edge across a face); each box
    the upright bounds of the turned box shrunk to 80% about its centre, as video_variants' roll."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    width, height = int(np.ceil(h * s + w * c)), int(np.ceil(h * c + w * s))
    m[0, 2] += width / 2 - w / 2
    m[1, 2] += height / 2 - h / 2
    out = cv2.warpAffine(rgb, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    boxes = []
    for f in faces:
        corners = np.array([[f.x, f.y, 1], [f.x + f.w, f.y, 1], [f.x, f.y + f.h, 1], [f.x + f.w, f.y + f.h, 1]], float) @ m.T
        (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
        cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * (x1 - x0), 0.8 * (y1 - y0)
        boxes.append(GroundTruthFace(round(cx - bw / 2), round(cy - bh / 2), max(1, round(bw)), max(1, round(bh)), f.valid))
    return np.ascontiguousarray(out), boxes


def cropped_faces(faces: Faces, x0: int, y0: int, x1: int, y1: int, k: float) -> Faces:
    """Faces inside the crop window, in the upscaled crop's pixels; cut to under 60%: invalid."""
    out = []
    for f in faces:
        cx0, cy0, cx1, cy1 = max(f.x, x0), max(f.y, y0), min(f.x + f.w, x1), min(f.y + f.h, y1)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        visible = (cx1 - cx0) * (cy1 - cy0) / (f.w * f.h)
        out.append(GroundTruthFace(round((cx0 - x0) * k), round((cy0 - y0) * k), round((cx1 - cx0) * k),
                                   round((cy1 - cy0) * k), f.valid and visible >= 0.6))
    return out


def closeup(rgb: np.ndarray, faces: Faces, face: GroundTruthFace, rnd: random.Random) -> tuple[np.ndarray, Faces]:
    """A crop in which `face` fills 50-100% of the height, upscaled to CLOSEUP_SIDE."""
    h, w = rgb.shape[:2]
    ch = min(h, face.h / rnd.uniform(0.5, 1.0))
    cw = min(w, max(face.w, ch * rnd.choice((0.75, 1.0, 4 / 3))))
    x0 = rnd.uniform(max(0, face.x + face.w - cw), min(face.x, w - cw))
    y0 = rnd.uniform(max(0, face.y + face.h - ch), min(face.y, h - ch))
    x0, y0, x1, y1 = round(x0), round(y0), round(x0 + cw), round(y0 + ch)
    k = CLOSEUP_SIDE / max(x1 - x0, y1 - y0)
    crop = cv2.resize(rgb[y0:y1, x0:x1], (round((x1 - x0) * k), round((y1 - y0) * k)), interpolation=cv2.INTER_CUBIC)
    return crop, cropped_faces(faces, x0, y0, x1, y1, k)


def extreme_close_up(rgb: np.ndarray, face: GroundTruthFace, width_share: float,
                     eyes_at: float) -> tuple[np.ndarray, Faces]:
    """A 960x540 frame `width_share` times as wide as `face`, centred across it and at `eyes_at` of
    its height, upscaled from the photo; the face's box cut to the frame."""
    window = width_share * face.w
    scale = 960 / window
    left, top = face.x + face.w / 2 - window / 2, face.y + eyes_at * face.h - 270 / scale
    shift = np.float32([[scale, 0, -left * scale], [0, scale, -top * scale]])
    frame = cv2.warpAffine(rgb, shift, (960, 540), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    x0, y0 = (face.x - left) * scale, (face.y - top) * scale
    x1, y1 = x0 + face.w * scale, y0 + face.h * scale
    x0, y0, x1, y1 = max(0, round(x0)), max(0, round(y0)), min(960, round(x1)), min(540, round(y1))
    return frame, [GroundTruthFace(x0, y0, x1 - x0, y1 - y0, True)]


def edge_cut(rgb: np.ndarray, faces: Faces, face: GroundTruthFace, rnd: random.Random) -> tuple[np.ndarray, Faces]:
    """The photo cropped at the edge nearest `face`, so that 60-90% of the face (along that edge's
    axis) is left inside."""
    height, width = rgb.shape[:2]
    keep = rnd.uniform(0.6, 0.9)
    distances = {"left": face.x, "top": face.y, "right": width - face.x - face.w, "bottom": height - face.y - face.h}
    x0, y0, x1, y1 = 0, 0, width, height
    side = min(distances, key=distances.__getitem__)
    if side == "left":
        x0 = round(face.x + face.w * (1 - keep))
    elif side == "top":
        y0 = round(face.y + face.h * (1 - keep))
    elif side == "right":
        x1 = round(face.x + face.w * keep)
    else:
        y1 = round(face.y + face.h * keep)
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), cropped_faces(faces, x0, y0, x1, y1, 1.0)


def patch(rgb: np.ndarray, face: GroundTruthFace, rnd: random.Random) -> None:
    """Paste a soft-edged, textured patch over part of `face` (in place)."""
    kind = rnd.choice(("hand", "eyes", "mask"))
    colour = np.array(rnd.choice(MASK if kind == "mask" else SKIN), np.float32)
    if kind == "mask":  # a surgical mask: the lower half, nose to chin
        pw, ph, cx, cy, angle = 1.05 * face.w, 0.55 * face.h, face.x + face.w / 2, face.y + 0.75 * face.h, 0.0
    elif kind == "eyes":  # a hand over the eyes
        pw, ph, cx, cy, angle = 0.9 * face.w, 0.35 * face.h, face.x + face.w / 2, face.y + 0.4 * face.h, rnd.uniform(-20, 20)
    else:  # a hand across the face, at a slant
        pw, ph = rnd.uniform(0.6, 0.9) * face.w, rnd.uniform(0.35, 0.5) * face.h
        cx, cy, angle = face.x + rnd.uniform(0.3, 0.7) * face.w, face.y + rnd.uniform(0.45, 0.7) * face.h, rnd.uniform(-50, 50)
    h, w = rgb.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (round(cx), round(cy)), (max(1, round(pw / 2)), max(1, round(ph / 2))), angle, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.8, 0.04 * face.h))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 1 + 0.15 * np.sin((x * np.cos(np.deg2rad(angle)) + y * np.sin(np.deg2rad(angle))) / max(2.0, 0.3 * face.h))
    noise = np.random.default_rng(rnd.randrange(1 << 30)).normal(0, 6, (h, w, 1)).astype(np.float32)
    texture = np.clip(colour * shade[..., None] + noise, 0, 255)
    rgb[:] = (rgb * (1 - alpha[..., None]) + texture * alpha[..., None]).astype(np.uint8)


def scaled(rgb: np.ndarray, faces: Faces, side: int) -> tuple[np.ndarray, Faces]:
    """The photo with its longer side `side` px, and its boxes likewise."""
    h, w = rgb.shape[:2]
    k = side / max(h, w)
    size = (round(w * k), round(h * k))
    out = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    return out, [GroundTruthFace(round(f.x * k), round(f.y * k), max(1, round(f.w * k)), max(1, round(f.h * k)), f.valid)
                 for f in faces]


def dark(rgb: np.ndarray, rnd: random.Random) -> np.ndarray:
    """Light cut to 5-15% in linear terms (sRGB's 2.2 gamma), then a sensor's noise."""
    linear = (rgb.astype(np.float32) / 255) ** 2.2 * rnd.uniform(0.05, 0.15)
    noise = np.random.default_rng(rnd.randrange(1 << 30)).normal(0, rnd.uniform(2, 4), rgb.shape)
    return np.clip(255 * linear ** (1 / 2.2) + noise, 0, 255).astype(np.uint8)


def shared(rgb: np.ndarray, rnd: random.Random) -> np.ndarray:
    """Defocus blur, then JPEG at quality 20-35, as a messaging app passes a photo on."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), rnd.uniform(0.8, 1.6))
    ok, jpeg = cv2.imencode(".jpg", blurred[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, rnd.randint(20, 35)])
    return np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1])


def condition_case(k: int, stem: str, rgb: np.ndarray, faces: Faces, rnd: random.Random,
                   wanted: set[str]) -> tuple[str, Case | None]:
    """Every fourth photo into each of the capture-condition sets; None for a set not wanted (the
    night shot and the shared copy are made anyway: their draws keep `rnd` in step)."""
    if k % 4 == 0:
        return "dark", (stem, dark(rgb, rnd), faces)
    if k % 4 == 1:
        return "shared", (stem, shared(rgb, rnd), faces)
    name, side = ("small", 640) if k % 4 == 2 else ("large", 4032)
    return name, (stem, *scaled(rgb, faces, side)) if name in wanted else None


def make_cases(ground_truth: dict[str, Faces], wanted: set[str]) -> dict[str, list[Case]]:
    """The sets named in `wanted`, each photo drawn as it would be if every set were made."""
    rnd, conditions, edges = random.Random(SEED), random.Random(CONDITIONS_SEED), random.Random(EDGE_SEED)
    tilts = {name: random.Random(TILT_SEED + i) for i, name in enumerate(TILTS)}
    swings = random.Random(DIAGONAL_SEED)
    cases: dict[str, list[Case]] = {s: [] for s in SETS}
    joined: dict[str, list[Case]] = {name: [] for name in PANORAMA}
    held_out = bool(wanted & {"rot90b", "rot180b", "rot270b"})
    for k, (name, faces) in enumerate(ground_truth.items()):
        rgb = read_photo(DATA / "images" / name).pixels[:, :, :3]
        stem = Path(name).stem
        turns = k // 2 % 3 + 1
        if k % 2 == 0:  # every other photo is turned, each into one of the three sets
            cases[f"rot{90 * turns}"].append((stem, *turned(rgb, faces, turns)))
        elif held_out:
            # The other photos turned the same way: sets that chose no view or rule (held out).
            cases[f"rot{90 * turns}b"].append((stem, *turned(rgb, faces, turns)))
        large = [f for f in faces if f.valid and f.h >= 50]
        if large and k % 3 == 0:
            cases["closeup"].append((stem, *closeup(rgb, faces, rnd.choice(large), rnd)))
        if k % 2 == 1:
            covered = sorted((f for f in faces if f.valid and f.h >= 24), key=lambda f: -f.h)[:3]
            if covered:
                image = rgb.copy()
                for f in covered:
                    patch(image, f, rnd)
                cases["occluded"].append((stem, image, faces))
        condition, case = condition_case(k, stem, rgb, faces, conditions, wanted)
        if case is not None:
            cases[condition].append(case)
        if k % 4 == 3 and "large_turned" in wanted:  # odd: never in the sets that chose the turned views
            cases["large_turned"].append((stem, *scaled(*turned(rgb, faces, k // 4 % 3 + 1), 4032)))
        cut = [f for f in faces if f.valid and f.h >= 40]
        if cut and "edge" in wanted:
            cases["edge"].append((stem, *edge_cut(rgb, faces, edges.choice(cut), edges)))
        if k % 2 == 1:  # the photos the quarter-turned sets (which chose the turned views) do not hold
            for name, (low, high) in TILTS.items():
                angle = tilts[name].uniform(low, high) * tilts[name].choice((-1, 1))
                if name in wanted:
                    cases[name].append((stem, *tilted(rgb, faces, angle)))
        if "ecu" in wanted:
            for face in (f for f in faces if f.valid and f.h >= ECU_MIN_HEIGHT):
                n = len(cases["ecu"])
                share, eyes_at = (0.6, 0.75)[n % 2], (0.42, 0.55)[n // 2 % 2]
                cases["ecu"].append((f"{stem}_{n}", *extreme_close_up(rgb, face, share, eyes_at)))
        if k % 6 == 3 and "diagonal" in wanted:
            cases["diagonal"].append((stem, swung(rgb, swings), faces))
        if "gray" in wanted:
            cases["gray"].append((stem, np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2), faces))
        if k % 4 == 2 and "panorama" in wanted:
            joined["panorama"].append((stem, rgb, faces))
        if k % 4 == 0 and "longshot" in wanted:
            joined["longshot"].append((stem, rgb, faces))
    for name, photos in joined.items():
        side, count = PANORAMA[name]
        for start in range(0, len(photos) - count + 1, count):
            cases[name].append(side_by_side(photos[start : start + count], side, across=name == "panorama"))
    return {s: c for s, c in cases.items() if s in wanted}


def side_by_side(photos: list[Case], side: int, across: bool) -> Case:
    """The photos joined into one picture: `across`, side by side at `side` px high (a panorama);
    else stacked at `side` px wide (a long screenshot). Named after the first."""
    pictures, faces, offset = [], [], 0
    for _, rgb, own in photos:
        h, w = rgb.shape[:2]
        k = side / (h if across else w)
        size = (round(w * k), side) if across else (side, round(h * k))
        pictures.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC))
        dx, dy = (offset, 0) if across else (0, offset)
        faces += [GroundTruthFace(round(f.x * k) + dx, round(f.y * k) + dy, max(1, round(f.w * k)), max(1, round(f.h * k)),
                                  f.valid) for f in own]
        offset += size[0] if across else size[1]
    return f"{photos[0][0]}_{len(photos)}", np.concatenate(pictures, axis=1 if across else 0), faces


def write_set(root: Path, cases: list[Case]) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for name, rgb, faces in cases:
        Image.fromarray(rgb).save(root / "images" / f"{name}.png")
        lines += [f"{name}.png", str(len(faces))]
        lines += [f"{f.x} {f.y} {f.w} {f.h} 0 0 0 {0 if f.valid else 1} 0 0" for f in faces] or ["0 0 0 0 0 0 0 0 0 0"]
    (root / "wider_face_val_bbx_gt.txt").write_text("\n".join(lines) + "\n")


def measure(root: Path, plan: Callable[[Path], object], limit: int | None, workdir: Path) -> Tally:
    """photo_recall.py's rule over one WIDER-format set, with `plan` in place of a profile."""
    tally = Tally()
    settings = RenderSettings(mode="fill", color=MAGENTA)
    for name, faces in list(load_ground_truth(root).items())[:limit]:
        source = root / "images" / name
        photo = read_photo(source)
        started = time.perf_counter()
        media = plan(source, photo)
        tally.seconds += time.perf_counter() - started
        render_photo(media, settings, workdir / "out.png", photo=photo)
        redacted = (np.asarray(Image.open(workdir / "out.png").convert("RGB")) == MAGENTA).all(axis=2)
        tally.add(redacted, faces)
    return tally


def score(out: Path, sets: list[str], profiles: list[str], limit: int | None) -> None:
    print(f"{'set':9s} {'profile':14s} {header()}  s/image  faces>=80px")
    with tempfile.TemporaryDirectory() as tmp:
        for name in sets:
            root = DATA if name == "plain" else out / name
            for profile in profiles:
                t = measure(root, lambda path, photo, p=BENCH_PROFILES[profile]: plan_photo(path, p, photo=photo), limit, Path(tmp))
                print(f"{name:9s} {profile:14s} {figures(t)}    {t.seconds / t.images:.3f}  {t.total[4]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("make", "score"))
    parser.add_argument("out", type=Path, help="folder for the generated sets (outside the repository)")
    parser.add_argument("--sets", nargs="+", default=["plain", *SETS], choices=["plain", *SETS])
    parser.add_argument("--profile", choices=sorted(BENCH_PROFILES), action="append")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set only")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: this benchmark needs the WIDER FACE dev images from ../shared/data")
    if args.action == "make":
        for name, cases in make_cases(load_ground_truth(DATA), set(args.sets)).items():
            write_set(args.out / name, cases)
            print(f"{name}: {len(cases)} images, {sum(f.valid for _, _, fs in cases for f in fs)} valid faces")
    else:
        score(args.out, args.sets, args.profile or ["fast", "accurate"], args.limit)


if __name__ == "__main__":
    main()
