"""Stops at random moments: what a killed or interrupted run leaves behind.

Each round starts `veil` on a folder of photos named by file:// URLs (so every file is staged in a
private temporary folder and uploaded under a hidden temporary name), waits a random 1.5-6 s, and
sends SIGTERM, SIGINT or SIGHUP to its whole process group (as a service manager, a closed terminal
or Ctrl-C does), a second time 0-0.3 s later in 30% of rounds. A round is bad when anything is
left in TMPDIR, a hidden partial output is left, any process of the group printed a traceback, or
veil had not exited 90 s later.

    python bench/stops.py --jobs 2 --rounds 30 --seed 5
    python bench/stops.py --jobs 1 --rounds 12 --seed 6
    python bench/stops.py --jobs 2 --rounds 20 --seed 7 --progress
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "wider_face_dev" / "images"
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def one_round(work: Path, jobs: int, rng: random.Random, progress: bool) -> str | None:
    """What this round left wrong, or None."""
    temp, out, manifest = work / "tmp", work / "out", work / "manifest.jsonl"
    for folder in (temp, out):
        shutil.rmtree(folder, ignore_errors=True)
    temp.mkdir()
    manifest.unlink(missing_ok=True)
    command = [sys.executable, "-c", "from veil.cli import main; main()", f"file://{work / 'in'}",
               "--output-dir", f"file://{out}", "--manifest", str(manifest), "--jobs", str(jobs),
               *([] if progress else ["-q"])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(ROOT / "src")},
                               start_new_session=True)
    time.sleep(rng.uniform(1.5, 6.0))
    signum, twice = rng.choice(SIGNALS), rng.random() < 0.3
    try:
        os.killpg(process.pid, signum)
        if twice:
            time.sleep(rng.uniform(0, 0.3))
            os.killpg(process.pid, signum)
    except ProcessLookupError:  # it had finished
        pass
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return f"{signum.name} x{1 + twice}: still running 90 s later"
    left = [p.name for p in temp.iterdir()]
    partial = [p.name for p in out.iterdir() if p.name.startswith(".")] if out.exists() else []
    if left or partial or "Traceback" in stderr or "Exception ignored" in stderr:
        return f"{signum.name} x{1 + twice}: left {left + partial}; stderr ends {stderr[-300:]!r}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--progress", action="store_true", help="with the progress bar (its thread may take the signal)")
    args = parser.parse_args()
    if not DEV.is_dir():
        sys.exit(f"{DEV} is absent: the bench needs the WIDER FACE dev photos")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="veil-stops-") as folder:
        work = Path(folder)
        (work / "in").mkdir()
        for photo in sorted(DEV.rglob("*.jpg"), key=lambda p: (p.stat().st_size, p.name))[:8]:
            shutil.copy(photo, work / "in" / photo.name)
        bad = [problem for _ in range(args.rounds) if (problem := one_round(work, args.jobs, rng, args.progress))]
    for problem in bad:
        print(problem)
    print(f"--jobs {args.jobs}: {len(bad)} bad rounds of {args.rounds}")


if __name__ == "__main__":
    main()
