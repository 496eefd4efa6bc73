"""Clips with ground truth under real-footage conditions, their GT boxes moved with the frames.

The clips in ../shared/data/videos are steady, well lit, sharp and encoded at crf 18. This script
makes variants of 10 of them: the 4 YouTube Faces clips and the 6 wider_pan clips with the most
faces >= 40 px high. In each variant every frame and its GT boxes are transformed together:

    base      the clip re-encoded unchanged: the reference for the others
    dark      one gamma per clip, chosen so that the clip's mean luma comes to ~25, then a sensor's
              noise (Gaussian, per channel sigma 2 + 8% of the value, plus sigma 1.5 shared by the
              channels). video_leaks.py's rule is not valid on it: a pixel counts as redacted when
              it is dark, and here much of a face is that dark already in the input, so faces left
              visible count as protected. A bright scene needs so strong a gamma that its faces are
              crushed to black. Kept for comparison; dark2 is the realistic night case
    dark2     a night shot: gamma 2.0 (shadows deepened), one gain per clip to a mean luma of ~25,
              then the same noise as dark; faces keep some level
    crf45     the frames encoded at crf 45, as a platform's low-bitrate copy
    lowres    240 lines high, aspect kept
    roll      the camera rolled by 15-25 degrees either way (one angle per clip), black corners;
              a box becomes the upright bounds of the turned box shrunk to 80% about its centre
    shake     a handheld camera: a 90% crop window moved by a smoothed random walk within the 5%
              margin on each side, with occasional jolts; jumps clamped to 30 px a frame. The clip
              is the crop's size
    handheld  shake as a hand gives it: the same window's wobble and jolts, the camera also turning
              by up to 3 degrees and zooming by up to 5% (damped random walks); the frame's edges
              mirrored where the turn uncovers them; a box becomes the upright bounds of the turned box
    blur      motion blur: a 1x15 horizontal box kernel on every frame
    vertical  a phone's 9:16 frame: a centred 9:16 window scaled to 720x1280
    fps12     12 frames a second: the frame nearest each twelfth of a second kept, GT renumbered
    interlaced  an interlaced camera's frames (1080i, a camcorder's or a broadcast's): each frame's
              lines alternate between two moments, its even lines from the frame and its odd lines
              from the next one (a field a whole frame later: twice a real camera's interval, so
              motion combs twice as wide), coded as interlaced H.264, top field first; GT as the
              frame's own (the even lines')
    woven     the interlaced variant's frames coded as progressive video, as an editor or a
              converter leaves interlaced footage it did not deinterlace: nothing in the file says
              the lines alternate between two moments
    haze      fog or a window's glare: every frame blended 50-70% toward a light grey (190-230),
              one draw per clip
    stage     one strongly coloured light: linear RGB times a deep red, magenta or blue cast (the
              lit channel x 1-1.6), then blacks crushed (black point 25-45 of 255), one draw per clip
    anamorphic  non-square pixels: each frame stored half as wide and shown 2:1 stretched (sample
              aspect ratio 2:1), GT in stored pixels
    turn90, turn180, turn270  the picture stored turned by a quarter, a half or three quarters
              counter-clockwise with nothing in the file to turn it back: a phone clip whose
              rotation tag was lost, or people lying down; GT turned with it

and two made of two clips (each clip with the next in the list, the last with the first; the other
clip's frames resized to this one's size, stretched where their shapes differ, with their boxes;
at least two clips are needed):

    spliced   four single frames of the other clip spliced in on odd frames (frames a stride of 2
              passes by): an editing slip, a glitch, a subliminal cut; the grey levels of two crowds
              are often alike, so a histogram sees no cut there
    montage   shots of 7-21 frames, alternating between the two clips (each shot from its own
              clip's frames at the same time), as long as the shorter clip: hard cuts between
              pictures with alike grey levels

A box less than half inside the transformed frame is dropped (as ../shared/tools/make_pan_videos.py
does); kept boxes are not clipped. A clip left with no GT face in a variant is not written.
Encoding: PyAV libx264 on one thread, crf 18 unless the variant says otherwise, yuv420p; frame
count and rate kept except in fps12 and montage. The random draws are seeded per variant and clip, and one
encoder thread makes the same bytes from the same frames, so a run makes the same clips and GT
every time, whichever variants it is given.

    python bench/video_variants.py /tmp/variants                    # every variant (never commit them)
    python bench/video_variants.py /tmp/variants --variants shake,blur
    python bench/video_variants.py /tmp/pan30-turned --variants turn90 --clips /tmp/pan30   # of other clips
    python bench/video_leaks.py --tools veil --sets "" --more /tmp/variants/shake   # leaks on one

Writes OUT/<variant>/<clip>.mp4 and OUT/<variant>/<clip>_gt.csv (frame_index,x_left,y_top,width,height,
as the clips in ../shared/data/videos), and prints a line per clip.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
YOUTUBE_FACES = ("Aaron_Guiel5", "Agbani_Darego0", "Albert_Brooks0", "Alek_Wek1")
# The wider_pan clips with the most face instances >= 40 px high: crowds big enough to be judged.
WIDER_PAN = ("61_Street_Battle_streetfight_61_432", "55_Sports_Coach_Trainer_sportcoaching_55_774",
             "0_Parade_marchingband_1_445", "12_Group_Group_12_Group_Group_12_434",
             "40_Gymnastics_Gymnastics_40_950", "61_Street_Battle_streetfight_61_913")
SEED = 24
CRF = 18  # as the source clips
NIGHT_LUMA = 25.0
MAX_JUMP = 30.0  # shake: px a frame
VERTICAL = (720, 1280)

Box = tuple[float, float, float, float]  # x_left, y_top, width, height
Boxes = dict[int, list[Box]]  # by frame index


@dataclass
class Clip:
    frames: list[np.ndarray]  # RGB
    boxes: Boxes
    rate: Fraction
    crf: int = CRF
    note: str = ""  # what the variant chose for this clip, printed
    interlaced: bool = False  # coded as interlaced, top field first
    pixel_aspect: Fraction | None = None  # the stream's sample aspect ratio, where not square


def sources(folder: Path | None = None) -> list[Path]:
    """The clips, without suffix: every clip with its GT in `folder` where given (made by
    make_pan_videos.py, say), else the 10 chosen here."""
    if folder:
        return sorted(p.with_suffix("") for p in folder.glob("*.mp4") if Path(f"{p.with_suffix('')}_gt.csv").is_file())
    return [VIDEOS / "youtube_faces" / c for c in YOUTUBE_FACES] + [VIDEOS / "wider_pan" / c for c in WIDER_PAN]


def load(source: Path) -> Clip:
    with av.open(str(source.with_suffix(".mp4"))) as container:
        rate = container.streams.video[0].average_rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    boxes: Boxes = {}
    with open(f"{source}_gt.csv", newline="") as file:
        for row in csv.DictReader(file):
            box = (float(row["x_left"]), float(row["y_top"]), float(row["width"]), float(row["height"]))
            boxes.setdefault(int(row["frame_index"]), []).append(box)
    return Clip(frames, boxes, rate)


def gt_rows(clip: Clip) -> list[list[float]]:
    """The CSV rows of the boxes at least half inside their frame, at 0.1 px."""
    height, width = clip.frames[0].shape[:2]
    rows = []
    for index in range(len(clip.frames)):
        for x, y, w, h in clip.boxes.get(index, []):
            inside = max(0, min(x + w, width) - max(x, 0)) * max(0, min(y + h, height) - max(y, 0))
            if w > 0 and h > 0 and inside >= 0.5 * w * h:
                rows.append([index, round(x, 1), round(y, 1), round(w, 1), round(h, 1)])
    return rows


def write(dest: Path, clip: Clip, rows: list[list[float]]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    height, width = clip.frames[0].shape[:2]
    with av.open(str(dest.with_suffix(".mp4")), "w") as container:
        stream = container.add_stream("libx264", rate=clip.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if clip.pixel_aspect:
            stream.codec_context.sample_aspect_ratio = clip.pixel_aspect
        stream.options = {"crf": str(clip.crf), **({"flags": "+ilme+ildct", "x264-params": "interlaced=1:tff=1"}
                                                    if clip.interlaced else {})}
        # One encoder thread: x264's threads split the work by timing, so a busy machine would make
        # other bytes from the same frames each run, and figures on the clips would move with it.
        stream.thread_count = 1
        for frame in clip.frames:
            # Crops are views with strides: from_ndarray needs contiguous rows.
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with open(f"{dest}_gt.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["frame_index", "x_left", "y_top", "width", "height"])
        writer.writerows(rows)


def luma(rgb: np.ndarray) -> float:
    """Mean ITU-R 601 luma."""
    return float((rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).mean())


def even(n: float) -> int:
    """The nearest even size: yuv420p halves both sides."""
    return max(2, int(round(n / 2)) * 2)


def sensor_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shot-like noise growing with the value, per channel, plus a little shared by the channels."""
    noise = rng.normal(0, 1, x.shape).astype(np.float32) * (2 + 0.08 * x)
    noise += rng.normal(0, 1.5, x.shape[:2] + (1,)).astype(np.float32)
    return np.clip(x + noise, 0, 255).astype(np.uint8)


def base(clip: Clip, rng: np.random.Generator) -> Clip:
    return clip


def crf45(clip: Clip, rng: np.random.Generator) -> Clip:
    return replace(clip, crf=45)


def dark(clip: Clip, rng: np.random.Generator) -> Clip:
    # Bisection on every 10th frame: enough to judge the clip's mean luma, and cheap.
    sample = np.stack(clip.frames[::10]).astype(np.float32) / 255
    low, high = 1.0, 12.0
    for _ in range(30):
        gamma = (low + high) / 2
        if luma(255 * sample ** gamma) > NIGHT_LUMA:
            low = gamma
        else:
            high = gamma
    frames = [sensor_noise(255 * (f.astype(np.float32) / 255) ** gamma, rng) for f in clip.frames]
    return replace(clip, frames=frames, note=f"gamma {gamma:.2f}, mean luma {luma(np.stack(frames[::10])):.1f}")


def dark2(clip: Clip, rng: np.random.Generator) -> Clip:
    # A fixed gamma then a gain: one gamma alone (dark) must be so strong on a bright scene that
    # its faces go black; here the scene darkens as a whole and faces keep some level.
    gain = NIGHT_LUMA / luma(255 * (np.stack(clip.frames[::10]).astype(np.float32) / 255) ** 2.0)
    frames = [sensor_noise(np.clip(gain * 255 * (f.astype(np.float32) / 255) ** 2.0, 0, 255), rng)
              for f in clip.frames]
    return replace(clip, frames=frames,
                   note=f"gamma 2.0, gain {gain:.2f}, mean luma {luma(np.stack(frames[::10])):.1f}")


def lowres(clip: Clip, rng: np.random.Generator) -> Clip:
    height, width = clip.frames[0].shape[:2]
    new_width = even(width * (240 / height))
    kx, ky = new_width / width, 240 / height
    frames = [cv2.resize(f, (new_width, 240), interpolation=cv2.INTER_AREA) for f in clip.frames]
    boxes = {i: [(x * kx, y * ky, w * kx, h * ky) for x, y, w, h in b] for i, b in clip.boxes.items()}
    return replace(clip, frames=frames, boxes=boxes, note=f"{width}x{height} -> {new_width}x240")


def roll(clip: Clip, rng: np.random.Generator) -> Clip:
    height, width = clip.frames[0].shape[:2]
    angle = float(rng.uniform(15, 25) * rng.choice([-1, 1]))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    frames = [cv2.warpAffine(f, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
              for f in clip.frames]
    boxes: Boxes = {}
    for index, faces in clip.boxes.items():
        for x, y, w, h in faces:
            corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]]) @ matrix.T
            x0, y0 = corners.min(0)
            x1, y1 = corners.max(0)
            # The upright bounds of a turned face hold background in their corners: shrunk so that
            # the box is mostly face, as an annotator would draw it.
            cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * (x1 - x0), 0.8 * (y1 - y0)
            boxes.setdefault(index, []).append((cx - bw / 2, cy - bh / 2, bw, bh))
    return replace(clip, frames=frames, boxes=boxes, note=f"angle {angle:+.1f} deg")


def shake(clip: Clip, rng: np.random.Generator) -> Clip:
    height, width = clip.frames[0].shape[:2]
    crop_width, crop_height = even(0.9 * width), even(0.9 * height)
    margin = np.array([(width - crop_width) / 2, (height - crop_height) / 2])
    position, velocity = np.zeros(2), np.zeros(2)
    frames, boxes, offsets = [], {}, []
    for index, frame in enumerate(clip.frames):
        # Damped velocity: the window drifts and wobbles rather than jumping at random each frame.
        velocity = 0.6 * velocity + rng.normal(0, 0.45 * MAX_JUMP, 2)
        if rng.random() < 0.08:  # an occasional jolt
            velocity = rng.choice([-1, 1], 2) * MAX_JUMP
        velocity = np.clip(velocity, -MAX_JUMP, MAX_JUMP)
        position = np.clip(position + velocity, -margin, margin)
        ox, oy = int(round(margin[0] + position[0])), int(round(margin[1] + position[1]))
        offsets.append((ox, oy))
        frames.append(frame[oy:oy + crop_height, ox:ox + crop_width])
        boxes[index] = [(x - ox, y - oy, w, h) for x, y, w, h in clip.boxes.get(index, [])]
    jump = np.abs(np.diff(np.array(offsets), axis=0)).max() if len(offsets) > 1 else 0
    return replace(clip, frames=frames, boxes=boxes, note=f"crop {crop_width}x{crop_height}, max jump {jump} px")


def handheld(clip: Clip, rng: np.random.Generator) -> Clip:
    """Shake as a hand gives it: the 90% window's wobble and jolts (as `shake`) with the camera also
    turning by up to 3 degrees and zooming by up to 5% either way, each a damped random walk of its
    own (at most 0.8 degrees and 1% a frame)."""
    height, width = clip.frames[0].shape[:2]
    crop_width, crop_height = even(0.9 * width), even(0.9 * height)
    margin = np.array([(width - crop_width) / 2, (height - crop_height) / 2])
    position, velocity = np.zeros(2), np.zeros(2)
    angle = turning = zoom = zooming = 0.0
    frames, boxes = [], {}
    for index, frame in enumerate(clip.frames):
        velocity = 0.6 * velocity + rng.normal(0, 0.45 * MAX_JUMP, 2)
        if rng.random() < 0.08:
            velocity = rng.choice([-1, 1], 2) * MAX_JUMP
        velocity = np.clip(velocity, -MAX_JUMP, MAX_JUMP)
        position = np.clip(position + velocity, -0.8 * margin, 0.8 * margin)  # room left for the turn
        turning = float(np.clip(0.6 * turning + rng.normal(0, 0.3), -0.8, 0.8))
        angle = float(np.clip(angle + turning, -3, 3))
        zooming = float(np.clip(0.6 * zooming + rng.normal(0, 0.004), -0.01, 0.01))
        zoom = float(np.clip(zoom + zooming, -0.05, 0.05))
        # The window's centre moved by `position`, turned and scaled about it, then cut to the crop.
        centre = (width / 2 + position[0], height / 2 + position[1])
        matrix = cv2.getRotationMatrix2D(centre, angle, 1 + zoom)
        matrix[:, 2] += (crop_width / 2 - centre[0], crop_height / 2 - centre[1])
        frames.append(cv2.warpAffine(frame, matrix, (crop_width, crop_height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))
        for x, y, w, h in clip.boxes.get(index, []):
            corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]]) @ matrix.T
            (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
            boxes.setdefault(index, []).append((x0, y0, x1 - x0, y1 - y0))
    return replace(clip, frames=frames, boxes=boxes, note=f"crop {crop_width}x{crop_height}")


def blur(clip: Clip, rng: np.random.Generator) -> Clip:
    kernel = np.ones((1, 15), np.float32) / 15
    return replace(clip, frames=[cv2.filter2D(f, -1, kernel, borderType=cv2.BORDER_REPLICATE) for f in clip.frames])


def vertical(clip: Clip, rng: np.random.Generator) -> Clip:
    height, width = clip.frames[0].shape[:2]
    window_width = min(width, height * 9 / 16)
    window_height = window_width * 16 / 9
    x0, y0 = (width - window_width) / 2, (height - window_height) / 2
    kx, ky = VERTICAL[0] / window_width, VERTICAL[1] / window_height
    matrix = np.array([[kx, 0, -x0 * kx], [0, ky, -y0 * ky]], np.float32)
    frames = [cv2.warpAffine(f, matrix, VERTICAL, flags=cv2.INTER_LINEAR) for f in clip.frames]
    boxes = {i: [((x - x0) * kx, (y - y0) * ky, w * kx, h * ky) for x, y, w, h in b] for i, b in clip.boxes.items()}
    return replace(clip, frames=frames, boxes=boxes, note=f"window {window_width:.0f}x{window_height:.0f} x{kx:.2f}")


def fps12(clip: Clip, rng: np.random.Generator) -> Clip:
    count = len(clip.frames)
    keep = []
    while (index := int(round(len(keep) * float(clip.rate) / 12))) < count:
        keep.append(index)
    return Clip([clip.frames[i] for i in keep], {j: clip.boxes.get(i, []) for j, i in enumerate(keep)},
                Fraction(12), note=f"{count} -> {len(keep)} frames")


def interlaced(clip: Clip, rng: np.random.Generator) -> Clip:
    frames = []
    for frame, later in zip(clip.frames, clip.frames[1:] + clip.frames[-1:]):
        woven = frame.copy()
        woven[1::2] = later[1::2]
        frames.append(woven)
    return replace(clip, frames=frames, interlaced=True)


def woven(clip: Clip, rng: np.random.Generator) -> Clip:
    return replace(interlaced(clip, rng), interlaced=False)


def haze(clip: Clip, rng: np.random.Generator) -> Clip:
    share, grey = rng.uniform(0.5, 0.7), rng.uniform(190, 230)
    frames = [np.clip(f.astype(np.float32) * (1 - share) + grey * share + 0.5, 0, 255).astype(np.uint8)
              for f in clip.frames]
    return replace(clip, frames=frames, note=f"{share:.0%} toward grey {grey:.0f}")


STAGE_CASTS = {"red": (1.0, 0.12, 0.08), "magenta": (1.0, 0.1, 0.85), "blue": (0.1, 0.25, 1.0)}


def stage(clip: Clip, rng: np.random.Generator) -> Clip:
    name = sorted(STAGE_CASTS)[rng.integers(len(STAGE_CASTS))]
    cast = np.array(STAGE_CASTS[name], np.float32) * rng.uniform(1.0, 1.6)
    black = rng.uniform(25, 45)

    def lit(frame: np.ndarray) -> np.ndarray:
        linear = (frame.astype(np.float32) / 255) ** 2.2 * cast
        encoded = 255 * np.clip(linear, 0, 1) ** (1 / 2.2)
        return np.clip((encoded - black) * 255 / (255 - black) + 0.5, 0, 255).astype(np.uint8)

    return replace(clip, frames=[lit(f) for f in clip.frames], note=f"{name} light, black point {black:.0f}")


def anamorphic(clip: Clip, rng: np.random.Generator) -> Clip:
    height, width = clip.frames[0].shape[:2]
    stored = even(width / 2)
    frames = [cv2.resize(f, (stored, height), interpolation=cv2.INTER_AREA) for f in clip.frames]
    k = stored / width
    boxes = {i: [(x * k, y, w * k, h) for x, y, w, h in b] for i, b in clip.boxes.items()}
    return replace(clip, frames=frames, boxes=boxes, pixel_aspect=Fraction(2, 1))


def turned(quarters: int) -> Callable[[Clip, np.random.Generator], Clip]:
    def turn(clip: Clip, rng: np.random.Generator) -> Clip:
        height, width = clip.frames[0].shape[:2]
        frames = [np.ascontiguousarray(np.rot90(f, quarters)) for f in clip.frames]

        def box(x: float, y: float, w: float, h: float) -> Box:
            # np.rot90 turns counter-clockwise: a quarter takes (x, y) to (y, width - x).
            return {1: (y, width - x - w, h, w), 2: (width - x - w, height - y - h, w, h),
                    3: (height - y - h, x, h, w)}[quarters]

        return replace(clip, frames=frames, boxes={i: [box(*b) for b in faces] for i, faces in clip.boxes.items()})

    turn.__name__ = f"turn{90 * quarters}"
    return turn


def scaled_to(other: Clip, clip: Clip) -> Clip:
    """`other`'s frames and boxes at `clip`'s frame size."""
    height, width = clip.frames[0].shape[:2]
    sx, sy = width / other.frames[0].shape[1], height / other.frames[0].shape[0]
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in other.frames]
    boxes = {i: [(x * sx, y * sy, w * sx, h * sy) for x, y, w, h in b] for i, b in other.boxes.items()}
    return Clip(frames, boxes, other.rate)


def spliced(clip: Clip, other: Clip, rng: np.random.Generator) -> Clip:
    other = scaled_to(other, clip)
    count = len(clip.frames)
    odd = [i for i in range(5, count - 5) if i % 2 and i < len(other.frames)]
    at = sorted(int(i) for i in rng.choice(odd, size=min(4, len(odd)), replace=False))
    frames, boxes = list(clip.frames), dict(clip.boxes)
    for i in at:
        frames[i], boxes[i] = other.frames[i], other.boxes.get(i, [])
    return replace(clip, frames=frames, boxes=boxes, note=f"frames {at} from the other clip")


def montage(clip: Clip, other: Clip, rng: np.random.Generator) -> Clip:
    other = scaled_to(other, clip)
    count = min(len(clip.frames), len(other.frames))
    frames, boxes, cuts, start, mine = [], {}, [], 0, True
    while start < count:
        end = min(count, start + int(rng.integers(7, 22)))
        shot = clip if mine else other
        frames += shot.frames[start:end]
        boxes.update({i: shot.boxes[i] for i in range(start, end) if i in shot.boxes})
        cuts.append(start)
        start, mine = end, not mine
    return replace(clip, frames=frames, boxes=boxes, note=f"cuts at {cuts[1:]}")


VARIANTS: dict[str, Callable[[Clip, np.random.Generator], Clip]] = {
    f.__name__: f for f in (base, dark, dark2, crf45, lowres, roll, shake, handheld, blur, vertical, fps12, interlaced,
                            woven, haze, stage, anamorphic, turned(1), turned(2), turned(3))}
TWO_CLIPS: dict[str, Callable[[Clip, Clip, np.random.Generator], Clip]] = {f.__name__: f for f in (spliced, montage)}


def make(out: Path, variant: str, source: Path, partner: Path) -> str:
    # Seeded by the variant and the clip's name: each clip's draws are its own, whatever else is made.
    seed = int(hashlib.sha256(f"{SEED} {variant} {source.name}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    clip = TWO_CLIPS[variant](load(source), load(partner), rng) if variant in TWO_CLIPS else \
        VARIANTS[variant](load(source), rng)
    rows = gt_rows(clip)
    height, width = clip.frames[0].shape[:2]
    line = f"{variant:9s} {source.name[:40]:40s} {width}x{height} {len(clip.frames)} fr, "
    if not rows:
        return line + "no GT face left: not written"
    write(out / variant / source.name, clip, rows)
    return line + f"{len(rows)} boxes" + (f", {clip.note}" if clip.note else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the variants (outside the repository)")
    known = [*VARIANTS, *TWO_CLIPS]
    parser.add_argument("--variants", default=",".join(known), help="comma-separated, from: " + ", ".join(known))
    parser.add_argument("--clips", type=Path, help="make the variants of every clip in this folder that has its GT")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in known]
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    if not (args.clips or VIDEOS).is_dir():
        sys.exit(f"test videos not found at {args.clips or VIDEOS}")
    clips = sources(args.clips)
    if len(clips) < 2 and set(variants) & set(TWO_CLIPS):
        sys.exit(f"{', '.join(sorted(set(variants) & set(TWO_CLIPS)))} need two clips or more")
    for variant in variants:
        for k, source in enumerate(clips):
            print(make(args.out, variant, source, clips[(k + 1) % len(clips)]), flush=True)


if __name__ == "__main__":
    main()
