"""Damaged inputs: does veil fail closed on every one?

Real photos (WIDER FACE, camera JPEGs with EXIF, HEIC, a PNG made from a real photo) and
short real videos (MP4, Matroska, MOV-family with audio) from ../shared/data are damaged in
a temporary folder, deterministically by --seed: truncations at many offsets, bit flips in
the header and in the payload, runs of zeros or garbage, a chunk cut out, trailing garbage,
zero-length, all-zero and random-byte files, and the right bytes under a wrong extension
(a JPEG named .mp4, an MP4 named .jpg, ...). `veil FILE -o OUT --json` runs on each, one
process per file, as a user would run it, and the result is sorted:

- traceback: stderr holds a Python traceback (target: none);
- hang: the process outlived --timeout (target: none);
- bad exit: an exit code other than 0, 1 or 2 (a crash in native code, say; target: none);
- left output: a non-zero exit, yet an output or a partial file was left (target: none);
- passed: exit 0 on a damaged file. Fine when the damage left the file decodable (trailing
  garbage, a wrong extension, a flipped bit in a JPEG's entropy data) and its pixels were
  really analysed; each is listed with its damage and its face count beside the intact
  original's, so a person can look at it in the work folder.

    python bench/fuzz.py                       # 500 variants, 2 at a time
    python bench/fuzz.py --count 60 --seed 7 --timeout 120 --jobs 1

The variants and outputs stay in the work folder printed at the end (outside the checkout:
they are made from third-party data and must not be committed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOS = (
    "metadata/metadata-extractor-images/jpg/Samsung GT-I9000 (Galaxy S).jpg",  # a face, GPS
    "metadata/exif-samples/jpg/orientation/portrait_6.jpg",  # EXIF rotation
    "metadata/exif-samples/jpg/gps/DSCN0010.jpg",
    "metadata/exif-samples/jpg/Kodak_CX7530.jpg",
    "metadata/exif-samples/heic/IMG_5195.HEIC",
    "metadata/metadata-extractor-images/heic/exif-at-eof.heic",
)
WIDER_PHOTOS = 9  # drawn by the seed from wider_face_dev/images; the first is also saved as PNG
VIDEOS = (
    "videos/intel_walking_and_headpose/people-detection.mp4",  # 23 frames
    "videos/intel_walking_and_headpose/head-pose-face-detection-female.mp4",
    "videos/intel_asl/thanks.mkv",  # Matroska: no frame index, a duration only
    "metadata/metadata-extractor-images/mp4/with-gps.mp4",  # 3 frames of 1080p, AAC audio, GPS
    "metadata/metadata-extractor-images/mov/with-gps.mov",  # 4 s, audio and data streams
)
PHOTO_SUFFIXES = (".jpg", ".png", ".heic", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm")
KINDS = ("truncate", "head-only", "flip-header", "flip-payload", "zero-run", "garbage-run", "cut-chunk",
         "trailing-garbage", "zero-length", "all-zero", "random-bytes", "wrong-extension")
TRUNCATE_AT = (0.001, 0.01, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.99, 0.999)
HEADER_BYTES = 1024


@dataclass(frozen=True)
class Variant:
    """A damaged copy of a real file: what was done to it, and its bytes and suffix."""

    source: Path
    damage: str
    data: bytes
    suffix: str

    def file_name(self, number: int) -> str:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", self.source.stem)[:28]
        return f"{number:04d}_{stem}_{kind_of(self.damage)}{self.suffix}"


def kind_of(description: str) -> str:
    """The damage kind of a description: "truncate@120/4000" -> "truncate"."""
    return re.match(r"[a-z-]+", description).group()


def damage(kind: str, data: bytes, suffix: str, rng: random.Random) -> tuple[str, bytes, str]:
    """One kind of damage to one file: (description, new bytes, new suffix)."""
    size = len(data)
    if kind == "truncate":
        at = max(1, min(size - 1, int(size * rng.choice(TRUNCATE_AT)) + rng.randint(-64, 64)))
        return f"truncate@{at}/{size}", data[:at], suffix
    if kind == "head-only":
        at = rng.choice((1, 2, 4, 8, 12, 16, 32, 64, 256))
        return f"head-only@{at}", data[:at], suffix
    if kind in ("flip-header", "flip-payload"):
        low, high = (0, min(size, HEADER_BYTES)) if kind == "flip-header" else (min(size, HEADER_BYTES), size)
        flipped = bytearray(data)
        bits = sorted(rng.randrange(low * 8, high * 8) for _ in range(rng.randint(1, 8)))
        for bit in bits:
            flipped[bit // 8] ^= 1 << (bit % 8)
        return f"{kind}@{','.join(str(b // 8) for b in bits)}", bytes(flipped), suffix
    if kind in ("zero-run", "garbage-run", "cut-chunk"):
        length = rng.randint(16, 8192)
        at = rng.randrange(min(size // 2, HEADER_BYTES), max(size - length, size // 2 + 1))
        middle = {"zero-run": bytes(length), "garbage-run": rng.randbytes(length), "cut-chunk": b""}[kind]
        return f"{kind}@{at}+{length}", data[:at] + middle + data[at + length:], suffix
    if kind == "trailing-garbage":
        extra = rng.randint(1, 8192)
        return f"trailing-garbage+{extra}", data + rng.randbytes(extra), suffix
    if kind == "zero-length":
        return "zero-length", b"", suffix
    if kind == "all-zero":
        return f"all-zero*{size}", bytes(size), suffix
    if kind == "random-bytes":
        return f"random-bytes*{size}", rng.randbytes(size), suffix
    if kind == "wrong-extension":
        photo = suffix.lower() in PHOTO_SUFFIXES
        # Mostly across kinds (a photo named as a video and back), sometimes within a kind.
        choices = [s for s in (VIDEO_SUFFIXES if photo else PHOTO_SUFFIXES)] * 2 + [
            s for s in (PHOTO_SUFFIXES if photo else VIDEO_SUFFIXES) if s != suffix.lower()]
        new = rng.choice(choices)
        return f"wrong-extension{suffix}->{new}", data, new
    raise ValueError(f"unknown damage {kind!r}")


def make_variants(sources: list[Path], count: int, seed: int, kinds: tuple[str, ...] = KINDS) -> list[Variant]:
    """`count` damaged files: every kind on every source in turn, parameters drawn from `seed`."""
    rng = random.Random(seed)
    contents = {source: source.read_bytes() for source in sources}
    variants = []
    for number in range(count):
        kind = kinds[number % len(kinds)]
        source = sources[(number // len(kinds) + number) % len(sources)]
        description, data, suffix = damage(kind, contents[source], source.suffix, rng)
        variants.append(Variant(source, description, data, suffix))
    return variants


def real_sources(work: Path, seed: int) -> list[Path]:
    """The intact real files to damage; the PNG is a real WIDER FACE photo saved as PNG in `work`."""
    from PIL import Image

    missing = [p for p in (*PHOTOS, *VIDEOS) if not (DATA / p).is_file()]
    if missing:
        raise SystemExit(f"real data missing under {DATA}: {missing}")
    wider = sorted((DATA / "wider_face_dev" / "images").rglob("*.jpg"))
    drawn = random.Random(seed).sample(wider, WIDER_PHOTOS)
    png = work / f"{drawn[0].stem}.png"
    with Image.open(drawn[0]) as image:
        image.save(png)
    return [*(DATA / p for p in PHOTOS), *drawn, png, *(DATA / p for p in VIDEOS)]


@dataclass
class Result:
    name: str
    source: Path
    damage: str
    code: int | None  # None: killed after the timeout
    stderr: str
    faces: int | None
    left: list[str]  # files left in the output folder

    @property
    def verdict(self) -> str:
        if self.code is None:
            return "hang"
        if "Traceback" in self.stderr:
            return "traceback"
        if self.code not in (0, 1, 2):
            return "bad exit"
        if self.code != 0 and self.left:
            return "left output"
        return "passed" if self.code == 0 else "refused"


def run_veil(path: Path, out: Path, timeout: float) -> tuple[int | None, str, str]:
    """`python -m veil` on one file in a session of its own, so a hang is killed whole."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    target = out / f"{path.stem}.redacted{path.suffix}"
    process = subprocess.Popen([sys.executable, "-m", "veil", str(path), "-o", str(target), "--json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return process.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return None, stdout, stderr


def check(path: Path, source: Path, description: str, out: Path, timeout: float) -> Result:
    out.mkdir(parents=True)
    code, stdout, stderr = run_veil(path, out, timeout)
    try:
        faces = json.loads(stdout)["faces"]
    except (ValueError, KeyError, TypeError):
        faces = None
    left = sorted(p.name for p in out.iterdir())
    return Result(path.name, source, description, code, stderr, faces, left)


def cause(stderr: str) -> str:
    """The innermost veil frame and the exception line of a traceback, or the last stderr line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    frames = [line for line in lines if line.startswith("File ") and "/veil/" in line]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", line)]
    if "Traceback" in stderr:
        return " | ".join(filter(None, [frames[-1] if frames else None, errors[-1] if errors else lines[-1]]))
    return lines[-1] if lines else "(no message)"


def report(results: list[Result], baseline: dict[Path, int | None], work: Path) -> None:
    verdicts = ("traceback", "hang", "bad exit", "left output", "passed", "refused")
    kinds = sorted({kind_of(r.damage) for r in results})
    table = Counter((kind_of(r.damage), r.verdict) for r in results)
    print(f"\n{'damage':<18}" + "".join(f"{v:>12}" for v in verdicts))
    for kind in kinds:
        print(f"{kind:<18}" + "".join(f"{table[kind, v]:>12}" for v in verdicts))
    totals = Counter(r.verdict for r in results)
    print(f"{'all':<18}" + "".join(f"{totals[v]:>12}" for v in verdicts))
    for verdict in ("traceback", "hang", "bad exit", "left output", "passed"):
        chosen = [r for r in results if r.verdict == verdict]
        if not chosen:
            continue
        print(f"\n{verdict} ({len(chosen)}):")
        for r in chosen:
            detail = (f"faces {r.faces} (intact: {baseline.get(r.source)})" if verdict == "passed"
                      else f"exit {r.code}; left {r.left}; {cause(r.stderr)}")
            print(f"  {r.name}  [{r.damage}]  {detail}")
    print(f"\nvariants, outputs and stderr in {work}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per file before it counts as a hang")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, help="folder for variants and outputs (default: a new temp folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="veil-fuzz-"))
    (work / "in").mkdir(parents=True)
    sources = real_sources(work, args.seed)

    print(f"intact originals ({len(sources)}) ...", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        intact = list(pool.map(lambda s: check(s[1], s[1], "intact", work / "intact" / str(s[0]), args.timeout),
                               enumerate(sources)))
    for r in intact:
        if r.verdict != "passed":
            print(f"  intact {r.source.name} did not pass: {r.verdict}, {cause(r.stderr)}")
    baseline = {r.source: r.faces for r in intact}

    variants = make_variants(sources, args.count, args.seed)
    jobs = []
    for number, variant in enumerate(variants):
        path = work / "in" / variant.file_name(number)
        path.write_bytes(variant.data)
        jobs.append((path, variant))
    print(f"{len(jobs)} damaged variants ...", flush=True)

    done = Counter()

    def one(job: tuple[Path, Variant]) -> Result:
        path, variant = job
        result = check(path, variant.source, variant.damage, work / "out" / path.stem, args.timeout)
        (work / "out" / path.stem / "stderr.txt").write_text(result.stderr)
        done[result.verdict] += 1
        if result.verdict not in ("refused", "passed"):
            print(f"  {result.verdict}: {result.name} [{result.damage}] {cause(result.stderr)}", flush=True)
        if done.total() % 50 == 0:
            print(f"  {done.total()}/{len(jobs)}: {dict(done)}", flush=True)
        return result

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, jobs))
    report(results, baseline, work)
    # veil must never write beside its inputs when given -o.
    stray = sorted({p.name for p in (work / "in").iterdir()} - {path.name for path, _ in jobs})
    if stray:
        print(f"files appeared beside the inputs: {stray}")


if __name__ == "__main__":
    main()
