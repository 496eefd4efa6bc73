"""Many files: worker processes, a real Dask LocalCluster, the manifest and resuming.

Every test runs the real `veil` command in a subprocess on real WIDER FACE photos copied into
tmp_path, with the real detector; crashes and interrupts are real signals to real processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pty
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from veil.names import MANIFEST_NAME, holds_capture_time

SRC = Path(__file__).resolve().parents[1] / "src"
MANIFEST = "veil-manifest.jsonl"
# A generous bound for polling loops (a stuck run fails the test instead of hanging it).
DEADLINE_S = 300
# A phone's full-size photo: far longer to redact than the dev photos.
SLOW_PHOTO = "metadata/metadata-extractor-images/jpg/Samsung SM-G935L (Galaxy S7 Edge).jpg"


def veil_command(*args: object) -> list[str]:
    return [sys.executable, "-c", "from veil.cli import main; main()", *map(str, args)]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}


def run_veil(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(veil_command(*args), capture_output=True, text=True, env=environment(), timeout=DEADLINE_S)


def start_veil(*args: object, temp: Path | None = None) -> subprocess.Popen:
    """veil started; `temp`: its temp folder (TMPDIR), to see what it leaves there."""
    env = {**environment(), **({"TMPDIR": str(temp)} if temp else {})}
    return subprocess.Popen(veil_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def photos(shared_data: Path, folder: Path, count: int) -> list[Path]:
    """The `count` smallest dev photos (real crowds, quick to detect), copied into `folder`."""
    found = sorted((shared_data / "wider_face_dev/images").rglob("*.jpg"), key=lambda p: (p.stat().st_size, p.name))
    folder.mkdir(parents=True)
    return [Path(shutil.copy(path, folder / path.name)) for path in found[:count]]


def records(manifest: Path) -> list[dict]:
    """The records of files' outcomes (the "started" line each file gets first left aside)."""
    if not manifest.exists():
        return []
    every = [json.loads(line) for line in manifest.read_text().splitlines() if line.endswith("}")]
    return [record for record in every if record["status"] != "started"]


def outputs_of(folder: Path) -> list[str]:
    """Every file in the output folder but the manifest (hidden unfinished files included)."""
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)


def wait_until(condition, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert process.poll() is None, f"veil ended before the test could act: {process.communicate()}"
        assert time.monotonic() < deadline, "veil made no progress"
        time.sleep(0.05)


def worker_processes(pid: int) -> list[psutil.Process]:
    """The processes that run files for veil: spawned descendants that have no children of
    their own (not the multiprocessing resource tracker)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            if "spawn_main" in command and "resource_tracker" not in command and not child.children():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_jobs_2_writes_the_same_bytes_as_jobs_1(shared_data, tmp_path):
    inputs = photos(shared_data, tmp_path / "in", 10)
    one = run_veil(tmp_path / "in", "--output-dir", tmp_path / "one", "--jobs", 1)
    two = run_veil(tmp_path / "in", "--output-dir", tmp_path / "two", "--jobs", 2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert outputs_of(tmp_path / "one") == outputs_of(tmp_path / "two") == sorted(p.name for p in inputs)
    for path in inputs:
        assert (tmp_path / "two" / path.name).read_bytes() == (tmp_path / "one" / path.name).read_bytes(), path.name
    # Two processes really did the work, and the manifest has one ok record per input.
    done = records(tmp_path / "two" / MANIFEST)
    assert sorted(r["path"] for r in done) == sorted(str(p) for p in inputs)
    assert {r["status"] for r in done} == {"ok"}
    assert len({r["worker"] for r in done}) == 2
    assert sum(r["regions"] for r in done) > 0


@pytest.mark.parametrize("workers", [["--jobs", "2"], ["--cluster", "local:2"]], ids=["pool", "local-cluster"])
def test_a_worker_killed_mid_run_loses_nothing(shared_data, tmp_path, workers):
    inputs = photos(shared_data, tmp_path / "in", 12)
    out, temp = tmp_path / "out", tmp_path / "temp"
    temp.mkdir()
    # Inputs by URL: each worker stages an unredacted copy of its file in its temp folder.
    process = start_veil((tmp_path / "in").as_uri() + "/", "--output-dir", out, *workers, temp=temp)
    wait_until(lambda: len(records(out / MANIFEST)) >= 2 and worker_processes(process.pid), process)
    before = worker_processes(process.pid)
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        # Workers keep glibc's adaptive malloc: Dask's nanny would set a trim threshold (veil.cluster).
        assert not any("MALLOC_TRIM_THRESHOLD_" in p.environ() for p in before)
    victim = before[0]
    victim.kill()  # SIGKILL: no clean-up of any kind in that process
    _, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert outputs_of(out) == sorted(p.name for p in inputs)  # each once, no unfinished file left
    assert not list(temp.iterdir()), "the killed worker's staged copy was left"
    done = records(out / MANIFEST)
    assert sorted(r["path"] for r in done) == sorted(p.as_uri() for p in inputs)
    assert {r["status"] for r in done} == {"ok"}
    if workers[0] == "--jobs":
        # A dead worker breaks a process pool: the files after it ran in a new one.
        pids = {int(r["worker"].rsplit(":", 1)[1]) for r in done}
        assert pids - {p.pid for p in before}, "no file ran on a new worker after the kill"
        # The files in flight then were done again, and say so.
        assert ": done again (a worker process of its pool died while it was in flight: a crash in a library, " \
            "or killed)" in stderr, stderr
    else:  # the scheduler fails the dead worker's task (it moved it, unsaid): veil tries it again, saying so
        assert ": done again (a first attempt failed: the worker process redacting it ended abruptly" in stderr, stderr


def test_a_video_that_crashes_its_cluster_worker_is_tried_once(shared_data, tmp_path):
    # The scheduler moved a dead worker's task to another up to three times, and veil retried it:
    # a file that crashes every worker that reads it (a library's fault) killed eight. (A photo is
    # tried twice: test_a_worker_killed_mid_run_loses_nothing.)
    photos(shared_data, tmp_path / "in", 1)
    shutil.copy(shared_data / "videos/wider_pan/17_Ceremony_Ceremony_17_234.mp4", tmp_path / "in" / "crash.mp4")
    process = start_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", "local:2")
    killed: set[int] = set()
    while process.poll() is None:  # the crash: any process that opens a file named crash.* dies at once
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(Path(f.path).name.startswith("crash.") for f in child.open_files()):
                    child.kill()
                    killed.add(child.pid)
        time.sleep(0.05)
    stderr = process.stderr.read()
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    assert len(killed) == 1, killed  # one worker, not eight
    outcome = {Path(r["path"]).name: r["status"] for r in records(tmp_path / "out" / MANIFEST)}
    assert outcome.pop("crash.mp4") == "failed" and set(outcome.values()) == {"ok"}, outcome
    assert "crash.mp4: the worker process redacting it ended abruptly" in " ".join(stderr.split()), stderr


def listening_ports(pid: int) -> set[int]:
    """The TCP ports that the process `pid` and its descendants listen on."""
    ports = set()
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            ports |= {c.laddr.port for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return ports


def admits_a_stranger(port: int) -> bool:
    """Whether a Dask client with no key of the run's completes Dask's handshake on `port`
    (and could then run code in the scheduler or a worker), or reads any of Dask's web pages there."""
    import asyncio
    import urllib.error
    import urllib.request

    from distributed.comm import connect

    async def handshake() -> bool:
        try:
            comm = await connect(f"tcp://127.0.0.1:{port}", timeout=3)
        except Exception:
            return False
        comm.abort()
        return True

    for page in ("info/main/workers.html", "health", "metrics", "json/identity.json"):
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=3):
                return True
    return asyncio.run(handshake())


def test_a_local_cluster_lets_no_other_user_of_the_machine_in(shared_data, tmp_path):
    # Its scheduler and workers listened on the loopback in the clear, and served Dask's pages
    # (with the scheduler's address) without a dashboard: any local user could run code in the
    # workers, turn redaction off, and the run still reported every photo redacted.
    photos(shared_data, tmp_path / "in", 16)
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--cluster", "local:2")
    wait_until(lambda: len(records(out / MANIFEST)) >= 1, process)  # the whole cluster is up
    ports = listening_ports(process.pid)
    assert len(ports) >= 3  # the scheduler's, and each worker's
    admitted = [port for port in sorted(ports) if admits_a_stranger(port)]
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert not admitted, f"ports {admitted} let a stranger in"
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert {r["status"] for r in records(out / MANIFEST)} == {"ok"}


def test_a_ctrl_c_while_a_local_cluster_starts_is_one_clean_stop(shared_data, tmp_path):
    # Its worker processes, still importing, each ended with a KeyboardInterrupt traceback.
    photos(shared_data, tmp_path / "in", 2)
    process = subprocess.Popen(veil_command(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", "local:2"),
                               stderr=subprocess.PIPE, text=True, env=environment(), start_new_session=True)
    wait_until(lambda: len(worker_processes(process.pid)) == 2, process)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to every process of the group
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert not (tmp_path / "out").exists() or outputs_of(tmp_path / "out") == []


def test_a_second_sigterm_during_a_local_cluster_run_leaves_no_scratch_folder(shared_data, tmp_path):
    # The second stop ended the workers, and Dask's nanny, in veil's own process, removed each lost
    # worker's folder in the scratch folder (veil-dask-<pid>-*) as veil removed it, and started
    # another: the removal failed, the folder was left, and nothing said so. A race: tried 6 times.
    photos(shared_data, tmp_path / "in", 6)
    temp, out = tmp_path / "temp", tmp_path / "out"
    for attempt in range(6):
        temp.mkdir()
        process = start_veil(tmp_path / "in", "--output-dir", out, "--cluster", "local:2", temp=temp)
        wait_until(lambda: len(records(out / MANIFEST)) >= 1, process)  # photos in flight on both workers
        process.send_signal(signal.SIGTERM)
        time.sleep(0.1)  # the first stop waits for them
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=DEADLINE_S)
        assert process.returncode == 128 + signal.SIGTERM, stderr
        time.sleep(1)  # a worker left running would write there meanwhile
        assert list(temp.iterdir()) == [], f"attempt {attempt + 1}: {stderr}"
        shutil.rmtree(temp)
        shutil.rmtree(out)


def test_a_stop_waiting_for_a_cluster_says_so_and_a_second_ends_even_a_frozen_worker(shared_data, tmp_path):
    # The first stop waited for the video in flight without a word; at the second, a worker that
    # was stopped (SIGSTOP) took no SIGTERM: veil waited 30 s for it, then left it behind, stopped.
    photos(shared_data, tmp_path / "in", 1)
    shutil.copy(shared_data / "videos/wider_pan/17_Ceremony_Ceremony_17_234.mp4", tmp_path / "in" / "clip.mp4")
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--cluster", "local:2")

    def reading_the_clip() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(Path(f.path).name == "clip.mp4" for f in child.open_files()):
                    found.append(child)
        return found
    seen: list[psutil.Process] = []  # as first seen: the worker may close the clip and open it again between looks
    wait_until(lambda: seen.extend(reading_the_clip()) or seen, process)
    frozen = seen[0]
    frozen.suspend()
    try:
        process.send_signal(signal.SIGINT)
        wait_until(lambda: frozen.status() == psutil.STATUS_STOPPED and time.sleep(0.5) is None, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=DEADLINE_S)
        said = " ".join(stderr.split())
        assert process.returncode == 128 + signal.SIGINT, said
        assert re.search(r"veil: stopping \(SIGINT\): the [12] file\(s\) in progress finish first; stop again to "
                         "abandon them", said), said
        frozen.wait(timeout=DEADLINE_S)  # ended, not left stopped
    finally:
        with contextlib.suppress(psutil.Error):
            frozen.kill()
    assert not (out / "clip.mp4").exists()


@pytest.mark.parametrize("options", [[], ["--json"]])
def test_a_second_stop_leaves_no_output_unrecorded(shared_data, tmp_path, options):
    # At the first stop the files in flight finish whole; a second one ends veil at once, saying that
    # those still in progress were abandoned. The files finished in between were recorded only once
    # every file in flight had finished: their outputs stood, recorded nowhere. One worker is held
    # still (SIGSTOP) on a slow photo, so that a file is in progress at the second stop.
    quick = photos(shared_data, tmp_path / "in", 3)
    slow = Path(shutil.copy(shared_data / SLOW_PHOTO, tmp_path / "in" / "00_slow.jpg"))  # first: taken at once
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 2, *options)
    wait_until(lambda: len(records(out / MANIFEST)) >= 1, process)
    first = records(out / MANIFEST)[0]
    assert first["path"] != str(slow), "the slow photo was done first: nothing is in progress to hold"
    held = next(p for p in worker_processes(process.pid) if not first["worker"].endswith(f":{p.pid}"))
    held.suspend()
    try:
        process.send_signal(signal.SIGINT)
        # The other worker finishes the quick photos in flight; each is recorded as it finishes.
        wait_until(lambda: len(records(out / MANIFEST)) == len(quick), process)
        process.send_signal(signal.SIGINT)
        held.wait(timeout=DEADLINE_S)  # veil ends its workers, the one held still too (it was left, stopped)
    finally:
        with contextlib.suppress(psutil.Error):
            held.resume()
    stdout, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopped (SIGINT) again: the files in progress were abandoned" in stderr
    if options:  # --json: one object still (it printed nothing), the files finished being in the manifest
        assert json.loads(stdout) == {"error": "stopped (SIGINT) again: the files in progress were abandoned",
                                      "exit_code": 130}
    done = records(out / MANIFEST)
    assert {r["status"] for r in done} == {"ok"}
    assert outputs_of(out) == sorted(Path(r["output"]).name for r in done) == sorted(p.name for p in quick)


def test_workers_end_with_a_killed_main_process_and_write_nothing_unrecorded(shared_data, tmp_path):
    # The main process killed (the out-of-memory killer, say): its workers must not go on writing
    # outputs that no manifest records, which a rerun would then refuse to overwrite.
    inputs = photos(shared_data, tmp_path / "in", 16)
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 2)
    wait_until(lambda: len(records(out / MANIFEST)) >= 2 and len(worker_processes(process.pid)) == 2, process)
    workers = worker_processes(process.pid)
    process.kill()
    process.communicate(timeout=DEADLINE_S)
    _, alive = psutil.wait_procs(workers, timeout=DEADLINE_S)
    assert not alive, "a worker outlived the main process"
    recorded = sorted(r["path"].rsplit("/", 1)[-1] for r in records(out / MANIFEST) if r["status"] == "ok")
    assert outputs_of(out) == recorded and len(recorded) < len(inputs)


def test_a_rerun_knows_its_files_however_their_folder_is_spelled(shared_data, tmp_path):
    photos(shared_data, tmp_path / "in", 2)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    first = subprocess.run(veil_command("in", "--output-dir", "out"), capture_output=True, text=True,
                           env=environment(), cwd=tmp_path, timeout=DEADLINE_S)
    assert first.returncode == 0, first.stderr
    for spelling in (f"../{tmp_path.name}/in", "link"):
        again = subprocess.run(veil_command(spelling, "--output-dir", "out"), capture_output=True, text=True,
                               env=environment(), cwd=tmp_path, timeout=DEADLINE_S)
        assert again.returncode == 0 and "(2 already done by an earlier run, which hid" in again.stderr, again.stderr


def test_an_output_folder_holds_one_output_of_an_input_wherever_a_later_run_names_it(shared_data, tmp_path):
    # A run over in/ names its outputs out/day1/a.jpg; a later run over in/day1 named them
    # out/a.jpg, a second output of each input beside the first (one perhaps reviewed, the other
    # not: both published). The manifest says where each input's output lies.
    made = photos(shared_data, tmp_path / "in" / "day1", 2)
    # A photo that is a link to a file of another name: mirrored by its own name, not the one it leads to.
    (tmp_path / "store").mkdir()
    shutil.move(made[1], tmp_path / "store" / "IMG_20210506_070809.jpg")
    made[1].symlink_to(tmp_path / "store" / "IMG_20210506_070809.jpg")
    first = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert first.returncode == 0, first.stderr
    (tmp_path / "d1").symlink_to(tmp_path / "in" / "day1")
    for named, cwd in ((tmp_path / "in" / "day1", tmp_path), (Path(made[0].name), made[0].parent),  # a.jpg, in in/day1
                       (Path("d1"), tmp_path)):  # a link to in/day1
        again = subprocess.run(veil_command(named, "--output-dir", tmp_path / "out"), capture_output=True, text=True,
                               env=environment(), cwd=cwd, timeout=DEADLINE_S)
        assert again.returncode == 0 and "already done by an earlier run" in again.stderr, again.stderr
    assert outputs_of(tmp_path / "out") == ["day1"] and outputs_of(tmp_path / "out" / "day1") == sorted(p.name for p in made)


def test_a_manifest_record_places_an_output_only_where_it_still_stands_in_the_folder(shared_data, tmp_path):
    # Placement by the manifest (above) trusted any record: one whose output was deleted failed its
    # input on every later run (its name claimed by another input's output); one naming a URL made
    # a local run fail as a bug in veil (and would have reached the server); one naming a path
    # through `..` put the output outside the output folder.
    made = photos(shared_data, tmp_path / "in" / "day1", 3)
    shutil.copy(made[0], tmp_path / "in" / made[0].name)  # in/a.jpg beside in/day1/a.jpg
    first = run_veil(tmp_path / "in" / "day1", "--output-dir", tmp_path / "out")  # out/a.jpg, out/b.jpg, out/c.jpg
    assert first.returncode == 0, first.stderr
    (tmp_path / "out" / made[0].name).unlink()
    manifest = tmp_path / "out" / MANIFEST
    lines = manifest.read_text().splitlines()
    for line in list(lines):
        record = json.loads(line)
        if record["status"] == "ok" and record["path"].endswith(made[1].name):
            lines.append(json.dumps({**record, "output": f"s3://bucket/out/{made[1].name}"}))
        if record["status"] == "ok" and record["path"].endswith(made[2].name):
            lines.append(json.dumps({**record, "output": str(tmp_path / "out" / ".." / "elsewhere" / made[2].name)}))
    manifest.write_text("\n".join(lines) + "\n")
    again = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert again.returncode == 0 and "bug" not in again.stderr, again.stderr
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.jpg")) == sorted(
        [made[0].name, made[1].name, made[2].name, *(f"day1/{p.name}" for p in made)])
    # An output replaced by the same bytes made from an exact copy (in/a.jpg's, over in/day1/a.jpg's)
    # stands as it was recorded, but is the copy's now: the next runs, --overwrite or not, failed
    # in/day1/a.jpg as taking in/a.jpg's name.
    photo = photos(shared_data, tmp_path / "in2" / "day1", 1)[0]
    assert run_veil(photo.parent, "--output-dir", tmp_path / "out2").returncode == 0
    shutil.copy(photo, tmp_path / "in2" / photo.name)
    assert run_veil(tmp_path / "in2" / photo.name, "--output-dir", tmp_path / "out2", "--overwrite").returncode == 0
    for _ in range(2):
        third = run_veil(tmp_path / "in2", "--output-dir", tmp_path / "out2")
        assert third.returncode == 0, third.stderr


def test_an_output_a_killed_run_never_recorded_is_redone_where_it_lies(shared_data, tmp_path):
    """A run killed as it recorded its last file (the line cut short) left only that file's
    "started" line: a later run over the subfolder named its output out/b.jpg, beside the
    out/day1/b.jpg the killed run had made, and both were published."""
    made = photos(shared_data, tmp_path / "in" / "day1", 2)
    assert run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "-j", "1").returncode == 0
    manifest = tmp_path / "out" / MANIFEST
    lines = manifest.read_text().splitlines()
    assert json.loads(lines[-1])["status"] == "ok" and json.loads(lines[0])["status"] == "started"
    manifest.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:-40])
    again = run_veil(tmp_path / "in" / "day1", "--output-dir", tmp_path / "out", "-j", "1")
    assert again.returncode == 0, again.stderr
    assert "will be replaced as the file is redone" in " ".join(again.stderr.split()), again.stderr
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")) == [
        f"day1/{p.name}" for p in sorted(made)]


def test_a_killed_runs_record_never_hides_another_output_that_stands(shared_data, tmp_path):
    """A killed run's "started" line is the last record of its input: where the output it names is
    not there, placement looked no further and the input's recorded output (out/a.jpg) lost its
    name, so a later run wrote a second output; and where the file it names is another input's
    output, made and recorded since, the later run replaced that one unasked."""
    made = photos(shared_data, tmp_path / "in" / "day1", 2)
    assert run_veil(tmp_path / "in" / "day1", "--output-dir", tmp_path / "out", "-j", "1").returncode == 0
    manifest = tmp_path / "out" / MANIFEST
    started = next(json.loads(line) for line in manifest.read_text().splitlines()
                   if json.loads(line)["status"] == "started" and json.loads(line)["path"] == str(made[0]))
    with manifest.open("a") as records:  # killed after its line, before it moved copy.jpg into place
        records.write(json.dumps({**started, "output": str(tmp_path / "out" / "copy.jpg")}) + "\n")
    with Image.open(made[1]) as other:
        other.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "in" / made[0].name)
    run = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "-j", "1")
    assert run.returncode == 1 and "where the manifest records it" in " ".join(run.stderr.split()), run.stderr
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")) == sorted(
        p.name for p in made)
    # Killed while redoing it where it was: its output keeps its name (its done and its killed
    # record name one file, counted once, not as two inputs' outputs: a second output was written).
    (tmp_path / "in" / made[0].name).rename(tmp_path / "aside.jpg")
    with manifest.open("a") as records:
        records.write(json.dumps({**started, "output": str(tmp_path / "out" / made[0].name)}) + "\n")
    redone = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "-j", "1")
    assert redone.returncode == 0, redone.stderr  # (done: the output is still the one recorded done)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")) == sorted(
        p.name for p in made)

    # Another input's output, made where a killed run of day1/a.jpg had started making its own.
    (tmp_path / "aside.jpg").rename(tmp_path / "in" / made[0].name)
    out2 = tmp_path / "out2"
    assert run_veil(tmp_path / "in" / made[0].name, "--output-dir", out2, "-j", "1").returncode == 0
    theirs = (out2 / made[0].name).read_bytes()
    lines = (out2 / MANIFEST).read_text().splitlines()
    first = json.loads(lines[0])
    assert first["status"] == "started"
    killed = {**first, "path": str(made[0])}
    (out2 / MANIFEST).write_text("\n".join([json.dumps(killed), *lines]) + "\n")
    again = run_veil(tmp_path / "in" / "day1", "--output-dir", out2, "-j", "1")
    said = " ".join(again.stderr.split())
    assert again.returncode == 1 and f"is the output of {tmp_path / 'in' / made[0].name}" in said, said
    assert "use --overwrite" in said, said
    assert (out2 / made[0].name).read_bytes() == theirs


def test_a_refused_cluster_leaves_nothing(shared_data, tmp_path):
    photos(shared_data, tmp_path / "in", 2)
    for cluster in ("local:0", "bogus", "local:²"):  # ("²" passed str.isdigit, then int() failed: "a bug in veil")
        refused = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", cluster)
        assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "bug" not in refused.stderr, refused.stderr
        assert not (tmp_path / "out").exists()  # nor the manifest the run would have kept there
    # --jobs beside --cluster was passed by unsaid.
    refused = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", "local:2", "--jobs", "2")
    assert refused.returncode == 2 and "use either --jobs or --cluster, not both" in refused.stderr, refused.stderr
    assert not (tmp_path / "out").exists()


def test_a_cluster_address_s_user_and_password_are_never_said(shared_data, tmp_path):
    # Dask's error repeated the address, password and all ("invalid address 'user:hunter2@...'").
    photos(shared_data, tmp_path / "in", 1)
    for cluster in ("tcp://user:hunter2@127.0.0.1:1", "hunter2@127.0.0.1:1"):
        refused = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", cluster, "--json")
        assert refused.returncode == 2 and "hunter2" not in refused.stdout + refused.stderr, refused.stderr
        assert "address takes no user name or password" in refused.stderr, refused.stderr
        assert not (tmp_path / "out").exists()


def test_an_output_folder_that_is_the_folder_redacted_is_refused_before_any_work(shared_data, tmp_path):
    # Every file failed (its output would be itself), and a manifest was left among the originals.
    photos(shared_data, tmp_path / "in", 2)
    before = sorted(p.name for p in (tmp_path / "in").iterdir())
    for spelled in (tmp_path / "in", tmp_path / "in" / ".." / "in"):
        refused = run_veil(tmp_path / "in", "--output-dir", spelled)
        assert refused.returncode == 2 and "is the folder" in refused.stderr and "being redacted" in refused.stderr
        assert sorted(p.name for p in (tmp_path / "in").iterdir()) == before
    # A file named, in that folder: it failed, and the manifest (paths, host, hashes) was left there.
    refused = run_veil(tmp_path / "in" / before[0], "--output-dir", tmp_path / "in")
    assert refused.returncode == 2 and "is the folder of" in refused.stderr and "being redacted" in refused.stderr
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == before
    # A folder above it: the originals lay in the folder to publish, and with --overwrite an output
    # mirrored there replaced a photo of the user's of the same name, unsaid.
    (tmp_path / "in" / "sub").mkdir()
    shutil.copy(tmp_path / "in" / before[0], tmp_path / "in" / "sub" / before[0])
    theirs = (tmp_path / "in" / before[0]).read_bytes()
    refused = run_veil(tmp_path / "in" / "sub", "--output-dir", tmp_path / "in", "--overwrite")
    assert refused.returncode == 2 and f"holds the folder {tmp_path / 'in' / 'sub'} being redacted" in refused.stderr
    assert (tmp_path / "in" / before[0]).read_bytes() == theirs
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted([*before, "sub"])


def test_a_pipe_or_a_device_named_over_another_input_s_output_is_refused_unread(shared_data, tmp_path):
    # Where the manifest records -o's file as another input's output, the input was hashed before
    # it was found to be no file: /dev/zero was read for ever, a pipe waited for ever, nothing said.
    photos(shared_data, tmp_path / "in", 1)
    assert run_veil(tmp_path / "in", "--output-dir", tmp_path / "out").returncode == 0
    output = next(p for p in (tmp_path / "out").iterdir() if p.name != MANIFEST_NAME)
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    for source in (Path("/dev/zero"), pipe):
        refused = subprocess.run(veil_command(source, "-o", output, "--overwrite"), capture_output=True, text=True,
                                 env=environment(), timeout=120)
        assert refused.returncode == 1 and f"{source}: not a regular file" in refused.stderr, refused.stderr


@contextlib.contextmanager
def remote_cluster(folder: Path, worker_cwd: Path | None, worker_wrapper: list[str] = ()):
    """A Dask scheduler and one worker, started apart from veil as an operator would: the worker
    in its own working folder, and under `worker_wrapper` (its own view of the file system, say);
    none where `worker_cwd` is None. Gives the scheduler's address and process."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": environment()}
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                 "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file], **quiet)]
    try:
        if worker_cwd is not None:
            started.append(start_worker(scheduler_file, worker_cwd, worker_wrapper))
        from distributed import Client

        deadline = time.monotonic() + DEADLINE_S
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        if worker_cwd is not None:
            with Client(address, timeout=DEADLINE_S) as client:
                client.wait_for_workers(1, timeout=DEADLINE_S)
        yield address, started[0]
    finally:
        for process in started:
            process.kill()
            process.wait()


def start_worker(scheduler: Path | str, cwd: Path, wrapper: list[str] = ()) -> subprocess.Popen:
    """A Dask worker of the scheduler at `scheduler` (its file, or its address), started in `cwd`."""
    given = ["--scheduler-file", scheduler] if isinstance(scheduler, Path) else [scheduler]
    return subprocess.Popen([*wrapper, sys.executable, "-m", "distributed.cli.dask_worker", *given, "--nthreads", "1",
                             "--no-dashboard"], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=environment())


def test_an_address_that_leads_to_no_scheduler_is_refused_in_one_line(shared_data, tmp_path):
    # A server that accepts and never answers (a dashboard's port typed for the scheduler's) left
    # veil waiting without end; one answering garbage ended in "a bug in veil".
    photos(shared_data, tmp_path / "in", 1)
    for answer in (None, os.urandom(4096)):
        with socket.create_server(("127.0.0.1", 0)) as server:
            def serve():
                with contextlib.suppress(OSError):
                    connection, _ = server.accept()
                    if answer is not None:
                        connection.sendall(answer)
                    time.sleep(DEADLINE_S)
            threading.Thread(target=serve, daemon=True).start()
            refused = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster",
                               f"tcp://127.0.0.1:{server.getsockname()[1]}")
        said = refused.stderr
        assert refused.returncode == 2 and len(said.splitlines()) == 1, said
        assert "bug" not in said and ("no Dask scheduler answered" if answer is None else "cannot use a Dask scheduler") in said


def test_workers_without_veil_are_said_in_one_line(shared_data, tmp_path):
    # "unexpected Exception: ModuleNotFoundError(...); this is a bug in veil", rc 2.
    photos(shared_data, tmp_path / "in", 1)
    shadow = tmp_path / "shadow" / "veil"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'veil'\")\n")  # as where none is installed
    from distributed import Client

    with remote_cluster(tmp_path / "cluster", worker_cwd=None) as (address, _):
        worker = start_worker(address, tmp_path, wrapper=["env", f"PYTHONPATH={shadow.parent}"])
        try:
            with Client(address, timeout=DEADLINE_S) as client:
                client.wait_for_workers(1, timeout=DEADLINE_S)
            refused = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", address)
        finally:
            worker.kill()
            worker.wait()
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "cannot set veil up on the workers" in refused.stderr and "bug" not in refused.stderr, refused.stderr


def test_a_worker_running_another_veil_fails_its_files(shared_data, tmp_path):
    # A worker of an older or patched veil (here: another version, which also finds no face) was
    # taken at its word: its outputs recorded as done, the report naming the command's veil and
    # models, and a rerun with the right workers keeping them as already done.
    photos(shared_data, tmp_path / "in", 1)
    other = tmp_path / "other"
    import veil

    shutil.copytree(Path(veil.__file__).parent, other / "veil", ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "veil" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{veil.__version__}"', '__version__ = "0.0.9-other"'))
    with remote_cluster(tmp_path / "cluster", worker_cwd=tmp_path, worker_wrapper=["env", f"PYTHONPATH={other}"]) \
            as (address, _):
        run = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", address, "--json")
    assert run.returncode == 1, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    assert "runs another veil than this command" in result["error"] and result["regions"] == 0
    assert result["error"].endswith("the output it wrote was removed")
    assert [r["status"] for r in records(tmp_path / "out" / MANIFEST)] == ["failed"]
    assert outputs_of(tmp_path / "out") == []


def test_an_input_a_worker_read_otherwise_fails_its_file(shared_data, tmp_path):
    # A worker whose mount of the inputs is stale or another's redacted another file: its output
    # was recorded as this photo's, rc 0.
    from veil.cluster import seen_from_here
    from veil.pipeline import FileResult, FileTask
    from veil.plan import installed_veil_sha256
    from veil.plan import Encoding, RenderSettings

    (mine,) = photos(shared_data, tmp_path / "in", 1)
    output = tmp_path / "out.jpg"
    output.write_bytes(b"what the worker wrote")
    worker = FileResult(mine, output=output, regions=3, input_sha256="0" * 64, worker="node2:7",
                        output_sha256=hashlib.sha256(output.read_bytes()).hexdigest(), veil_sha256=installed_veil_sha256())
    task = FileTask(mine, "image", output, RenderSettings(), Encoding())
    seen = seen_from_here(worker, task)
    assert seen.error.startswith(f"its worker node2:7 read another file at {mine} than this machine sees there")
    assert seen.error.endswith("the output it wrote was removed") and not output.exists()
    output.write_bytes(b"what the worker wrote")
    read = dataclasses.replace(worker, input_sha256=hashlib.sha256(mine.read_bytes()).hexdigest())
    assert seen_from_here(read, task).error is None


def test_a_dry_run_of_a_worker_of_another_veil_leaves_no_plan(shared_data, tmp_path):
    # With no output to look at, a --dry-run --save-plan run took the plan of a worker running
    # another veil (one that found no faces: a plan of 0 regions saved, rc 0, this veil named).
    from veil.cluster import seen_from_here
    from veil.photo import plan_photo
    from veil.pipeline import FileResult, FileTask
    from veil.plan import installed_veil_sha256
    from veil.plan import Encoding, RenderSettings

    (mine,) = photos(shared_data, tmp_path / "in", 1)
    media = plan_photo(mine)
    task = FileTask(mine, "image", None, RenderSettings(), Encoding())
    other = FileResult(mine, media=media, regions=len(media.regions), worker="node2:7", veil_sha256="0" * 64,
                       input_sha256=hashlib.sha256(mine.read_bytes()).hexdigest())
    seen = seen_from_here(other, task)
    assert seen.error.startswith("its worker node2:7 runs another veil than this command")
    assert seen.error.endswith("nothing it found was taken") and seen.media is None and seen.regions == 0
    failed = seen_from_here(dataclasses.replace(other, error="the file is damaged"), task)  # its plan neither
    assert "runs another veil" in failed.error and failed.media is None
    ours = seen_from_here(dataclasses.replace(other, veil_sha256=installed_veil_sha256()), task)
    assert ours.error is None and ours.media is media
    elsewhere = seen_from_here(dataclasses.replace(other, veil_sha256=installed_veil_sha256(), input_sha256="0" * 64),
                               task)
    assert elsewhere.error.startswith(f"its worker node2:7 read another file at {mine}") and elsewhere.media is None


# Loaded by every Python the worker starts: its task process dies just after the file's output is
# in place, before its result reaches veil, the first time only (`DIE_AFTER_OUTPUT` names a file
# made then). Only the moment of the death is set up; the rest is the real worker.
DIE_AFTER_OUTPUT_HOOK = """
import os
if os.environ.get("DIE_AFTER_OUTPUT"):
    import veil.cluster

    def run_task_then_die(task, run_task=veil.cluster.run_task):
        result = run_task(task)
        if not os.path.exists(os.environ["DIE_AFTER_OUTPUT"]):
            open(os.environ["DIE_AFTER_OUTPUT"], "w").close()
            os._exit(9)
        return result

    veil.cluster.run_task = run_task_then_die
"""


def test_a_worker_killed_after_writing_its_output_leaves_it_recorded(shared_data, tmp_path):
    # The scheduler ran the task again on the worker's successor, which found the output there:
    # the photo failed ("exists: use --overwrite"), exit 1, its finished output left unrecorded.
    (photo,) = photos(shared_data, tmp_path / "in", 1)
    hook, died = tmp_path / "hook", tmp_path / "died"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DIE_AFTER_OUTPUT_HOOK)
    wrapper = ["env", f"PYTHONPATH={hook}{os.pathsep}{SRC}", f"DIE_AFTER_OUTPUT={died}"]
    with remote_cluster(tmp_path / "cluster", worker_cwd=tmp_path, worker_wrapper=wrapper) as (address, _):
        run = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", address)
    assert died.exists(), "the worker did not die after writing the output"
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "appeared while it was redacted (an earlier attempt's, whose worker ended before reporting it, say): " \
        "it is byte for byte the one made now, and stands" in " ".join(run.stderr.split()), run.stderr
    (record,) = records(tmp_path / "out" / MANIFEST)
    output = tmp_path / "out" / photo.name
    assert record["status"] == "ok" and record["regions"] > 0, record
    assert record["output_sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert outputs_of(tmp_path / "out") == [photo.name]


def test_a_paused_worker_is_said_and_a_stop_leaves_the_files_it_never_began(shared_data, tmp_path):
    # A worker short of memory, paused by Dask (past 80% of its limit, here set so low that it
    # pauses at once: a millionth of the machine's memory), begins no file: the run waited without
    # a word (8 minutes, then for ever), and a first stop waited for the files queued there as if
    # they were in progress.
    inputs = photos(shared_data, tmp_path / "in", 2)
    wrapper = ["env", "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE=0.000001"]
    with remote_cluster(tmp_path / "cluster", worker_cwd=tmp_path, worker_wrapper=wrapper) as (address, _):
        with open(tmp_path / "stderr", "w+") as stderr:
            process = subprocess.Popen(veil_command(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster",
                                                    address), stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                       env=environment())
            wait_until(lambda: "is paused" in (tmp_path / "stderr").read_text(), process)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=DEADLINE_S)
            said = " ".join((tmp_path / "stderr").read_text().split())
    assert process.returncode == 130 and "Traceback" not in said, said
    assert re.search(r"veil: the Dask worker tcp://127\.0\.0\.1:\d+ is paused \(it holds \d+ MB of the \d+ MB it may "
                     r"use, past Dask's distributed\.worker\.memory\.pause\): it begins no file until its memory "
                     r"falls; give it more memory \(dask worker --memory-limit\), or stop veil: the files no worker "
                     r"has begun are left undone", said), said
    assert f"the {len(inputs)} file(s) in progress finish first; stop again to abandon them veil: {len(inputs)} of " \
        "them no worker had begun: they are left undone" in said, said
    assert f"veil: stopped (SIGINT): 0 file(s) finished, {len(inputs)} not done" in said, said
    assert not (tmp_path / "out").exists()  # a manifest of no file, and the folder made for it, are removed


def test_an_output_that_appeared_otherwise_during_the_run_is_kept_and_the_file_fails(shared_data, tmp_path):
    from veil.detect import FAST
    from veil.pipeline import Analysis, FileTask, redact_file
    from veil.plan import Encoding, RenderSettings

    (photo,) = photos(shared_data, tmp_path / "in", 1)
    output = tmp_path / "out.jpg"
    output.write_bytes(b"put there by someone else")
    result = redact_file(FileTask(photo, "image", output, RenderSettings(), Encoding(), Analysis(FAST),
                                  new_target=True))
    assert result.error == f"{output} appeared while veil was writing it: use --overwrite to replace it"
    assert output.read_bytes() == b"put there by someone else"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.jpg"]  # nothing unfinished left


def test_a_scheduler_without_workers_is_said_and_waited_for(shared_data, tmp_path):
    # Its tasks waited without a word, and without end.
    photos(shared_data, tmp_path / "in", 1)
    with remote_cluster(tmp_path / "cluster", worker_cwd=None) as (address, _):
        with open(tmp_path / "stderr", "w+") as stderr:
            process = subprocess.Popen(veil_command(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", address),
                                       stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=environment())
            wait_until(lambda: "has no workers: waiting" in (tmp_path / "stderr").read_text(), process)
            worker = start_worker(address, tmp_path)
            try:
                assert process.wait(timeout=DEADLINE_S) == 0, (tmp_path / "stderr").read_text()
            finally:
                worker.kill()
                worker.wait()
    assert outputs_of(tmp_path / "out") == sorted(p.name for p in (tmp_path / "in").iterdir())


def test_a_remote_worker_redacts_the_files_named_here_not_those_of_its_own_folder(shared_data, tmp_path):
    # Relative names went to the worker as given: it redacted other photos of the same names in
    # its own working folder, wrote the outputs there, and veil said all was done, rc 0.
    mine = photos(shared_data, tmp_path / "in", 2)
    theirs = tmp_path / "elsewhere" / "in"
    theirs.mkdir(parents=True)
    others = sorted((shared_data / "wider_face_dev/images").rglob("*.jpg"), key=lambda p: p.stat().st_size)[10:12]
    for photo, other in zip(mine, others):
        shutil.copy(other, theirs / photo.name)
    from distributed import Client

    def plugins(address: str) -> list[str]:
        with Client(address, timeout=DEADLINE_S) as client:
            return client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.worker_plugins))
    with remote_cluster(tmp_path / "cluster", worker_cwd=tmp_path / "elsewhere") as (address, _):
        before = plugins(address)
        result = subprocess.run(veil_command("in", "--output-dir", "out", "--cluster", address), cwd=tmp_path,
                                capture_output=True, text=True, env=environment(), timeout=DEADLINE_S)
        assert plugins(address) == before  # veil's was left on the user's scheduler, one more each run
    assert result.returncode == 0, result.stderr
    assert outputs_of(tmp_path / "out") == sorted(photo.name for photo in mine)
    assert not (tmp_path / "elsewhere" / "out").exists()
    for record in records(tmp_path / "out" / MANIFEST):
        read = hashlib.sha256((tmp_path / "in" / Path(record["path"]).name).read_bytes()).hexdigest()
        assert record["status"] == "ok" and record["input_sha256"] == read, record


def test_an_output_that_is_a_broken_link_here_is_said_not_there(tmp_path):
    # The folder lists the name but the file cannot be found (a link to nothing): the check looked
    # it up again after each listing, for ever, and ended in a RecursionError ("a bug in veil").
    from veil.cluster import as_seen_here

    link = tmp_path / "photo.jpg"
    link.symlink_to(tmp_path / "gone.jpg")
    assert as_seen_here(link, "0" * 64) == "not there"
    (tmp_path / "gone.jpg").write_bytes(b"x")
    assert as_seen_here(link, hashlib.sha256(b"x").hexdigest()) is None
    assert as_seen_here(link, "0" * 64) == "a different file"


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs root and unshare(1) to give a worker its own view of the output folder")
def test_an_output_a_remote_worker_wrote_where_this_machine_cannot_see_it_is_a_failure(shared_data, tmp_path):
    # A worker without the shared output folder mounted wrote into its own: veil recorded every
    # file as done, rc 0, and the manifest vouched for outputs that are not there.
    photos(shared_data, tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    own_view = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs none "{out}" && exec "$0" "$@"']
    with remote_cluster(tmp_path / "cluster", worker_cwd=tmp_path, worker_wrapper=own_view) as (address, _):
        result = run_veil(tmp_path / "in", "--output-dir", out, "--cluster", address)
    said = " ".join(result.stderr.split())
    assert result.returncode == 1, said
    assert said.count("it is not there: every worker must see the inputs and the output folder") >= 2, said
    assert outputs_of(out) == []
    assert {record["status"] for record in records(out / MANIFEST)} == {"failed"}


def test_a_scheduler_lost_mid_run_fails_the_files_it_held_and_the_run_ends_with_its_report(shared_data, tmp_path):
    # Dask's tracebacks, then "unexpected CancelledError ... a bug in veil", rc 2, and no report.
    photos(shared_data, tmp_path / "in", 1)
    shutil.copy(shared_data / "videos/wider_pan/17_Ceremony_Ceremony_17_234.mp4", tmp_path / "in" / "clip.mp4")
    out, report = tmp_path / "out", tmp_path / "report.json"
    with remote_cluster(tmp_path / "cluster", worker_cwd=tmp_path) as (address, scheduler):
        process = start_veil(tmp_path / "in", "--output-dir", out, "--report", report, "--cluster", address)
        wait_until(lambda: len(records(out / MANIFEST)) >= 1, process)  # one file done (the photo), one in flight
        scheduler.kill()
        _, stderr = process.communicate(timeout=DEADLINE_S)
    said = " ".join(stderr.split())
    assert process.returncode == 1, said
    assert "Traceback" not in stderr and "bug" not in said and " - ERROR - " not in said, stderr
    assert f"the connection to the Dask scheduler at {address} was lost before it was done" in said, said
    outcome = {Path(record["path"]).name: record["status"] for record in records(out / MANIFEST)}
    assert sorted(outcome.values()) == ["failed", "ok"], outcome
    assert report.exists()


def test_a_low_limit_on_open_files_is_raised_or_said_never_a_flood(shared_data, tmp_path):
    # Under a shell's `ulimit -Sn 64`, a local cluster of 4 printed tens of thousands of lines of
    # tracebacks (Dask's accept loop out of files); under a hard limit that low, it printed them
    # without end, gigabytes, and never finished.
    photos(shared_data, tmp_path / "in", 4)
    as_given = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for soft, hard, out in ((64, as_given, tmp_path / "raised"), (64, 64, tmp_path / "held")):
        def limited(soft=soft, hard=hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        result = subprocess.run(veil_command(tmp_path / "in", "--output-dir", out, "--cluster", "local:4"),
                                capture_output=True, text=True, env=environment(), timeout=DEADLINE_S,
                                preexec_fn=limited)
        assert "Traceback" not in result.stderr and "bug" not in result.stderr, result.stderr[:2000]
        if hard == as_given:
            assert result.returncode == 0 and len(outputs_of(out)) == 4, result.stderr[:2000]
        else:
            assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr[:2000]
            assert "this process may open 64 (ulimit -n): raise that limit, or run fewer workers" in result.stderr


def test_a_local_cluster_starts_nothing_when_every_file_is_done(shared_data, tmp_path):
    # local:N started its workers (and refused to under a low limit on open files) for nothing.
    photos(shared_data, tmp_path / "in", 2)
    assert run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", "local:2").returncode == 0

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))  # too few for a cluster of 2
    again = subprocess.run(veil_command(tmp_path / "in", "--output-dir", tmp_path / "out", "--cluster", "local:2"),
                           capture_output=True, text=True, env=environment(), timeout=DEADLINE_S, preexec_fn=few_files)
    assert again.returncode == 0 and "2 already done" in " ".join(again.stderr.split()), again.stderr


def test_a_local_cluster_starts_no_more_workers_than_there_are_files():
    # local:64 for local:4 started 64 detectors for one photo; local:99999999999 took the memory.
    from veil.cluster import connect

    with connect("local:6", 2) as client:
        assert len(client.nthreads()) == 2


def test_a_manifest_removed_during_the_run_stops_it_saying_so(shared_data, tmp_path):
    # The output folder deleted mid-run: the run made it again, wrote its outputs there, kept its
    # records in the removed file, and exited 0; the next run took the outputs for the user's own.
    photos(shared_data, tmp_path / "in", 12)
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1)
    wait_until(lambda: len(records(out / MANIFEST)) >= 2, process)
    shutil.rmtree(out)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 2, stderr
    assert f"cannot write the manifest {out / MANIFEST} (it was removed during the run): the run stopped" in stderr


def test_an_output_folder_moved_during_the_run_stops_it_saying_so(shared_data, tmp_path):
    # Renamed mid-run (by the user, a sync tool), the folder was made again for the rest of the
    # outputs while the records went on into the moved manifest, and the run exited 0 naming a
    # manifest that was not there; a second run into the folder made again was not refused.
    photos(shared_data, tmp_path / "in", 12)
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1)
    wait_until(lambda: len(records(out / MANIFEST)) >= 2, process)
    out.rename(tmp_path / "out.old")
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 2, stderr
    assert f"cannot write the manifest {out / MANIFEST} (it was moved during the run): the run stopped" in stderr


def test_an_interrupted_run_resumes_where_it_stopped(shared_data, tmp_path):
    inputs = photos(shared_data, tmp_path / "in", 12)
    out = tmp_path / "out"
    command = (tmp_path / "in", "--output-dir", out, "--jobs", 2)
    process = start_veil(*command)
    wait_until(lambda: len(records(out / MANIFEST)) >= 3, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopped (SIGINT)" in stderr

    first = records(out / MANIFEST)
    assert {r["status"] for r in first} == {"ok"}
    assert 3 <= len(first) < len(inputs), "the interrupt came too late to leave anything to resume"
    assert not [name for name in outputs_of(out) if name.startswith(".")], "an unfinished file was left"
    stamps = {r["output"]: _stamp(Path(r["output"])) for r in first}

    rerun = run_veil(*command)
    assert rerun.returncode == 0, rerun.stderr
    latest = records(out / MANIFEST)[-len(inputs):]  # each run's outcomes are the last lines it appended
    assert sorted(r["path"] for r in latest) == sorted(str(p) for p in inputs)
    by_path = {r["path"]: r for r in latest}
    for record in first:
        assert by_path[record["path"]]["status"] == "skipped"
        assert by_path[record["path"]]["reason"] == "already done"
        assert _stamp(Path(record["output"])) == stamps[record["output"]], "a done output was written again"
    assert sum(r["status"] == "ok" for r in latest) == len(inputs) - len(first)
    assert outputs_of(out) == sorted(p.name for p in inputs)

    # Nothing left: a third run does nothing and succeeds.
    again = run_veil(*command)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in records(out / MANIFEST)[-len(inputs):]} == {"skipped"}


def test_a_stopped_run_still_writes_its_report_and_plan_of_the_files_finished(shared_data, tmp_path):
    # A stopped run wrote neither its --report nor its --save-plan, and its stop line did not say so:
    # the files it finished were in no report, even after the rerun that completed the batch.
    inputs = photos(shared_data, tmp_path / "in", 12)
    out, report, plan = tmp_path / "out", tmp_path / "audit.json", tmp_path / "plan.json"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 2, "--report", report, "--save-plan", plan)
    wait_until(lambda: len(records(out / MANIFEST)) >= 3, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    done = sorted(r["path"] for r in records(out / MANIFEST))
    not_done = sorted(str(p) for p in inputs if str(p) not in done)
    assert 3 <= len(done) < len(inputs), "the interrupt came too late to leave anything undone"
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == (
        f"veil: stopped (SIGINT): {len(done)} file(s) finished, {len(not_done)} not done (the same command again does "
        f"them, given other names for the report and plan this run wrote); no partial output was left; the report of "
        f"the files finished ({len(not_done)} not "
        f"done, listed in it) is in {report} and {report.with_suffix('.html')}; the plan of the files finished is in "
        f"{plan}"), stderr

    audit = json.loads(report.read_text())
    assert audit["interrupted"]["signal"] == "SIGINT" and sorted(audit["interrupted"]["files_not_done"]) == not_done
    assert sorted(f["input"] for f in audit["files"]) == done
    assert all(f["output_sha256"] for f in audit["files"])
    assert sorted(n["path"] for n in audit["not_redacted"] if n["status"] == "not done") == not_done
    assert "Interrupted run: veil was stopped (SIGINT)" in report.with_suffix(".html").read_text()
    saved = json.loads(plan.read_text())
    assert sorted(m["path"] for m in saved["media"]) == done and saved["interrupted"] == audit["interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.html", "audit.json", "in", "out", "plan.json"]
    # As the stop line says (the same command was refused: its report and plan exist).
    rest = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 2, "--report", tmp_path / "rest.json",
                    "--save-plan", tmp_path / "rest-plan.json")
    assert rest.returncode == 0, rest.stderr
    assert sorted(m["path"] for m in json.loads((tmp_path / "rest-plan.json").read_text())["media"]) == not_done


def test_a_stopped_runs_json_answer_lists_the_files_it_finished(shared_data, tmp_path):
    # It gave the stop alone: a program driving veil could not tell which files were done.
    inputs = photos(shared_data, tmp_path / "in", 12)
    out = tmp_path / "out"
    report = tmp_path / "audit.json"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 2, "--json", "--report", report)
    wait_until(lambda: len(records(out / MANIFEST)) >= 3, process)
    report.write_text("{}")  # someone's file, there since the run began: never replaced, and said
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    answer = json.loads(stdout)
    assert answer["error"].startswith("stopped (SIGINT)") and answer["exit_code"] == 130
    done = sorted(r["path"] for r in records(out / MANIFEST) if r["status"] == "ok")
    assert 3 <= len(done) < len(inputs)
    assert sorted(r["input"] for r in answer["results"]) == done
    assert all(Path(r["output"]).is_file() and r["error"] is None for r in answer["results"])
    # and those it had not (a script was left to compare the inputs with the results).
    assert sorted(answer["files_not_done"]) == sorted(str(p) for p in inputs if str(p) not in done)
    # The report the stop could not write is in the answer, as a finished run's summary gives it.
    assert [(n["file"], n["path"]) for n in answer["not_written"]] == [("report", str(report))]
    assert report.read_text() == "{}"


def test_a_run_stopped_before_a_file_was_done_names_no_manifest_it_took_away(shared_data, tmp_path):
    """A video's run into a new folder, stopped mid-file: the manifest it made, holding no record of
    a file done, is taken away with the folder, and its report told the user to leave that
    manifest out when publishing the folder."""
    (tmp_path / "in").mkdir()
    shutil.copy(shared_data / "videos" / "with_audio" / "short_hamilton_clip.mp4", tmp_path / "in" / "clip.mp4")
    out, report = tmp_path / "out", tmp_path / "audit.json"
    process = start_veil(tmp_path / "in", "--output-dir", out, "--report", report)
    wait_until(lambda: (out / MANIFEST).exists() and b'"started"' in (out / MANIFEST).read_bytes(), process)
    process.send_signal(signal.SIGINT)  # a video is abandoned at the first stop
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130 and not out.exists(), stderr
    assert not any("manifest" in note for note in json.loads(report.read_text())["run_notes"]), stderr
    assert "leave it out when you publish" not in stderr


def test_a_run_stopped_before_its_files_says_no_report_was_written(shared_data, tmp_path):
    photos(shared_data, tmp_path / "in", 2)
    process = start_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--report", tmp_path / "audit.json",
                         "--json")
    # veil catches SIGTERM once it is up (Python's own handler catches SIGINT before that).
    wait_until(lambda: signal.SIGTERM in _signals_caught(process.pid), process)
    process.send_signal(signal.SIGINT)  # as veil starts: before any file
    stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "veil: stopped (SIGINT); no partial output was left; no report was written"
    assert json.loads(stdout) == {"error": "stopped (SIGINT); no report was written", "exit_code": 130}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("options", [[], ["--json"]])
def test_a_terminal_closed_mid_run_is_a_stop_and_its_exit_code_says_so(shared_data, tmp_path, options):
    # The terminal gone (SIGHUP), veil stopped as it should, but writing its stop line there failed
    # (EIO), and it exited 1, "files failed", instead of 129 (--json: its answer, on stdout).
    inputs = photos(shared_data, tmp_path / "in", 12)
    out = tmp_path / "out"
    pid, terminal = pty.fork()
    if pid == 0:  # veil, in a terminal of its own
        os.execve(sys.executable, veil_command(tmp_path / "in", "--output-dir", out, "--jobs", 2, *options),
                  environment())
    os.set_blocking(terminal, False)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(records(out / MANIFEST)) < 2 and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # nothing written yet
                os.read(terminal, 65536)  # what veil says meanwhile (a terminal's buffer fills)
            time.sleep(0.05)
    finally:
        os.close(terminal)  # the terminal window closed: SIGHUP, and every write there fails
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP
    done = records(out / MANIFEST)
    assert {r["status"] for r in done} == {"ok"} and len(done) < len(inputs)
    assert outputs_of(out) == sorted(Path(r["output"]).name for r in done)


def test_a_run_started_to_ignore_hangups_outlives_its_terminal(shared_data, tmp_path):
    # `nohup veil ... &`: veil took SIGHUP back, and stopped when its terminal closed.
    inputs = photos(shared_data, tmp_path / "in", 8)
    out = tmp_path / "out"
    process = subprocess.Popen(veil_command(tmp_path / "in", "--output-dir", out, "--jobs", 2), env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    wait_until(lambda: len(records(out / MANIFEST)) >= 2, process)
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, stderr
    assert len([r for r in records(out / MANIFEST) if r["status"] == "ok"]) == len(inputs)


def _signals_caught(pid: int) -> set[int]:
    """The signals a live process has handlers for, as /proc/<pid>/status states them."""
    mask = next(int(line.split()[1], 16) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("SigCgt:"))
    return {signum for signum in range(1, 65) if mask >> (signum - 1) & 1}


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


def test_a_corrupt_file_fails_alone_and_the_exit_code_says_so(shared_data, tmp_path):
    inputs = photos(shared_data, tmp_path / "in", 8)
    truncated = tmp_path / "in" / "truncated.jpg"
    truncated.write_bytes(inputs[0].read_bytes()[:300])
    (tmp_path / "in" / "not_a_photo.jpg").write_bytes(b"this is not a JPEG at all")
    out = tmp_path / "out"
    result = run_veil(tmp_path / "in", "--output-dir", out, "--cluster", "local:2")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert outputs_of(out) == sorted(p.name for p in inputs)
    by_name = {Path(r["path"]).name: r for r in records(out / MANIFEST)}
    assert len(by_name) == len(inputs) + 2
    for bad in ("truncated.jpg", "not_a_photo.jpg"):
        assert by_name[bad]["status"] == "failed" and by_name[bad]["reason"] and by_name[bad]["output"] is None
        assert f"{bad}: " in result.stderr
    assert all(by_name[p.name]["status"] == "ok" for p in inputs)


def test_new_settings_or_a_changed_output_mean_doing_it_again(shared_data, tmp_path):
    inputs = photos(shared_data, tmp_path / "in", 3)
    out = tmp_path / "out"
    assert run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1).returncode == 0
    (out / inputs[0].name).write_bytes(b"edited by hand")
    # An output that is no longer what veil wrote is someone's work: refused unless asked.
    refused = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1)
    assert refused.returncode == 1 and "use --overwrite" in refused.stderr, refused.stderr
    assert (out / inputs[0].name).read_bytes() == b"edited by hand"
    rerun = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1, "--overwrite")
    assert rerun.returncode == 0, rerun.stderr
    # Each run's outcomes are the last lines it appended (an earlier run's may have been compacted away).
    statuses = {Path(r["path"]).name: r["status"] for r in records(out / MANIFEST)[-3:]}
    assert statuses == {inputs[0].name: "ok", inputs[1].name: "skipped", inputs[2].name: "skipped"}
    assert (out / inputs[0].name).read_bytes() != b"edited by hand"

    pixelated = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1, "--mode", "pixelate", "--overwrite")
    assert pixelated.returncode == 0, pixelated.stderr
    assert [r["status"] for r in records(out / MANIFEST)[-3:]] == ["ok"] * 3


# Replaces a file atomically (as a review saves its plan) the moment another process has read it
# once: inotify's IN_CLOSE_NOWRITE on the file's name in its folder.
REPLACE_AFTER_FIRST_READ = """
import ctypes, os, struct, sys
path, replacement = sys.argv[1:3]
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, os.path.dirname(path).encode(), 0x10)
print("watching", flush=True)
while True:
    events, at, seen = os.read(fd, 4096), 0, False
    while at < len(events):
        length = struct.unpack_from("iIII", events, at)[3]
        seen |= events[at + 16:at + 16 + length].rstrip(b"\\0").decode() == os.path.basename(path)
        at += 16 + length
    if seen:
        break
os.replace(replacement, path)
"""


def test_a_plan_saved_again_while_it_is_rendered_is_not_taken_as_rendered(shared_data, tmp_path):
    """The manifest vouches for the plan's bytes the run read: a review's edit saved over the plan
    as the run starts (here a face it adds) must not make the rerun pass the output, made without
    that face, as already done."""
    from veil.plan import plan_checksum

    photo = photos(shared_data, tmp_path / "in", 1)[0]
    full, plan = tmp_path / "full.json", tmp_path / "plan.json"
    assert run_veil(photo, "--dry-run", "--save-plan", full).returncode == 0
    data = json.loads(full.read_text())
    data["media"][0]["regions"] = data["media"][0]["regions"][1:]  # a face the review has yet to add
    data["checksum"] = plan_checksum(data)
    plan.write_text(json.dumps(data))
    watcher = subprocess.Popen([sys.executable, "-c", REPLACE_AFTER_FIRST_READ, plan, full], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert watcher.stdout.readline() == "watching\n"
        first = run_veil("--plan", plan, "--output-dir", tmp_path / "out")
        assert first.returncode == 0, first.stderr
        assert watcher.wait(timeout=DEADLINE_S) == 0
    finally:
        watcher.kill()
    rerun = run_veil("--plan", plan, "--output-dir", tmp_path / "out")
    assert "already done" not in rerun.stderr, rerun.stderr
    assert rerun.returncode == 1 and "under other settings" in rerun.stderr, rerun.stderr


def test_a_rerun_after_an_input_changed_says_the_input_changed(shared_data, tmp_path):
    # The rerun said only "the output exists: use --overwrite", as for a stranger's file: the user
    # could not tell that veil knew the output as its own, made from the photo before its edit.
    first, second = photos(shared_data, tmp_path / "in", 2)
    assert run_veil(tmp_path / "in", "--output-dir", tmp_path / "out").returncode == 0
    output = tmp_path / "out" / first.name
    made = output.read_bytes()
    with Image.open(first) as image:
        image.rotate(3).save(first)  # (a new modification time and size: the output itself stands)
    rerun = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert rerun.returncode == 1, rerun.stderr
    assert "from this file as it was then, and the file has changed since" in rerun.stderr, rerun.stderr
    assert "1 already done" in rerun.stderr and output.read_bytes() == made
    again = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert output.read_bytes() != made
    stat = output.stat()
    with open(output, "r+b") as file:  # changed in place, its size and time kept: the input is as it was
        file.seek(stat.st_size // 2)
        file.write(bytes([file.read(1)[0] ^ 1]))
    os.utime(output, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert edited.returncode == 1, edited.stderr
    assert "was made by an earlier run from this file, and has been changed since" in edited.stderr, edited.stderr


# A watch folder's uploader: each finished file that appears in a folder (not a hidden one, nor the
# manifest) is moved on at once, into another.
MOVE_ON_AT_ONCE = """
import ctypes, os, struct, sys
folder, into, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, folder.encode(), 0x180)  # IN_MOVED_TO, IN_CREATE
print("watching", flush=True)
while count:
    events, at = os.read(fd, 4096), 0
    while at < len(events):
        length = struct.unpack_from("iIII", events, at)[3]
        name = events[at + 16:at + 16 + length].rstrip(b"\\0").decode()
        at += 16 + length
        if name and not name.startswith(".") and name != "veil-manifest.jsonl":
            os.rename(os.path.join(folder, name), os.path.join(into, name))
            count -= 1
"""


@pytest.mark.parametrize("count", [1, 2])
def test_an_output_taken_away_the_moment_it_is_written_is_done_once_and_recorded(shared_data, tmp_path, count):
    """An uploader moved each output on as it appeared: veil, reading it back by name to hash it,
    took a photo written (and published) for a failure, "a bug in veil" and no report or plan for
    one file, a worker's failure and a second copy written for a batch."""
    inputs = photos(shared_data, tmp_path / "in", count)
    out, moved = tmp_path / "out", tmp_path / "moved"
    out.mkdir()
    moved.mkdir()
    mover = subprocess.Popen([sys.executable, "-c", MOVE_ON_AT_ONCE, out, moved, str(count)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert mover.stdout.readline() == "watching\n"
        named = [tmp_path / "in"] if count > 1 else inputs
        run = run_veil(*named, "--output-dir", out, "--report", tmp_path / "report.json", "--save-plan",
                       tmp_path / "plan.json")
        assert mover.wait(timeout=DEADLINE_S) == 0
    finally:
        mover.kill()
    assert run.returncode == 0 and "bug in veil" not in run.stderr and ", 0 failed," in run.stderr, run.stderr
    assert sorted(p.name for p in moved.iterdir()) == sorted(p.name for p in inputs)  # each written once
    report = json.loads((tmp_path / "report.json").read_text())
    hashes = {Path(f["output"]).name: f["output_sha256"] for f in report["files"]}
    assert hashes == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in moved.iterdir()}
    assert all(f["output_changed_since_written"] for f in report["files"])  # taken away: the report says so
    assert (tmp_path / "plan.json").exists()
    if count > 1:
        assert sorted(r["status"] for r in records(out / MANIFEST)) == ["ok"] * count


def videos(shared_data: Path, folder: Path) -> list[Path]:
    """Two real clips, the longer first (files run in name order)."""
    folder.mkdir(parents=True)
    clips = [shared_data / "videos/wider_pan/17_Ceremony_Ceremony_17_234.mp4",
             shared_data / "videos/youtube_faces/Aaron_Guiel5.mp4"]
    return [Path(shutil.copy(path, folder / f"{letter}_{path.name}")) for letter, path in zip("ab", clips)]


def unfinished_output(out: Path, name: str) -> bool:
    """Whether the video named `name` is being written (its hidden temporary file exists)."""
    return out.is_dir() and any(p.name.startswith(f".{Path(name).stem}.") for p in out.iterdir())


# Loaded by every Python process of a test's veil (on PYTHONPATH): a worker that plans a photo
# named *CRASH* dies there, as in a decoder's crash, every time; other photos take half a second.
CRASHING_PHOTO = """
import importlib.util, os, signal, sys, time

class CrashOnPhoto:
    def find_spec(self, name, path=None, target=None):
        if name != "veil.photo":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            plan = module.plan_photo

            def plan_or_crash(source, *args, **kwargs):
                # Slow photos keep the same files in flight when the crashing one is tried again.
                time.sleep(0.1 if "CRASH" in str(source) else 0.5)
                if "CRASH" in str(source):
                    os.kill(os.getpid(), signal.SIGSEGV)
                return plan(source, *args, **kwargs)

            module.plan_photo = plan_or_crash

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, CrashOnPhoto())
"""


@pytest.mark.parametrize("jobs", [2, 1])
def test_a_photo_that_crashes_its_worker_fails_alone(shared_data, tmp_path, jobs):
    # A dead worker breaks the pool and every file in flight with it: those run again one at a
    # time, so the crash is pinned on its own file and the others are redacted. With --jobs 1
    # the photos ran in veil's own process, and the crash ended the batch there.
    inputs = photos(shared_data, tmp_path / "in", 9)
    crashing = inputs[3].rename(inputs[3].with_name("14_CRASH.jpg"))  # among the others in input order
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(CRASHING_PHOTO)
    env = {**environment(), "PYTHONPATH": os.pathsep.join([str(tmp_path / "hook"), environment()["PYTHONPATH"]])}
    out = tmp_path / "out"
    run = subprocess.run(veil_command(tmp_path / "in", "--output-dir", out, "--jobs", jobs), capture_output=True,
                         text=True, env=env, timeout=DEADLINE_S)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.count("ended abruptly") == 2  # its line, and its line in the list of failures
    assert "14_CRASH.jpg: the worker process redacting it ended abruptly" in run.stderr
    assert outputs_of(out) == sorted(p.name for p in inputs if p != inputs[3])
    status = {r["path"].rsplit("/", 1)[-1]: r["status"] for r in records(out / MANIFEST)}
    assert status.pop(crashing.name) == "failed" and set(status.values()) == {"ok"} and len(status) == 8


def test_a_video_whose_worker_dies_fails_alone_and_the_batch_goes_on(shared_data, tmp_path):
    # A crash inside FFmpeg or a model runtime ends the process it happens in: of several files,
    # a video runs in a worker process, so only that file fails, with its line, and nothing of
    # it is left: the unfinished output, and the copy of a URL's input staged in the temp folder,
    # are removed by the main process.
    first, second = videos(shared_data, tmp_path / "in")
    out, temp = tmp_path / "out", tmp_path / "temp"
    temp.mkdir()
    process = start_veil((tmp_path / "in").as_uri() + "/", "--output-dir", out, temp=temp)
    wait_until(lambda: unfinished_output(out, first.name) and worker_processes(process.pid), process)
    worker_processes(process.pid)[0].kill()  # SIGKILL: no clean-up of any kind in that process
    _, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert f"{first.name}: the worker process redacting it ended abruptly" in stderr
    assert outputs_of(out) == [second.name]  # no unfinished file of the first left
    assert list(temp.iterdir()) == []  # nor its staged copy
    status = {r["path"].rsplit("/", 1)[-1]: r["status"] for r in records(out / MANIFEST)}
    assert status == {first.name: "failed", second.name: "ok"}


def test_a_stop_abandons_the_video_in_progress(shared_data, tmp_path):
    # Photos in progress finish whole at a stop; a video, which may take an hour, is abandoned.
    first, _ = videos(shared_data, tmp_path / "in")
    out = tmp_path / "out"
    process = start_veil(tmp_path / "in", "--output-dir", out)
    wait_until(lambda: unfinished_output(out, first.name), process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopped (SIGINT)" in stderr
    assert not out.exists()  # nothing recorded: the folder made for the manifest goes with it


def test_a_run_refused_under_other_settings_does_not_undo_the_resume(shared_data, tmp_path):
    # A rerun by mistake under other settings is refused file by file (the outputs exist), and
    # those refusals are recorded: they must not hide the outputs that still stand.
    inputs = photos(shared_data, tmp_path / "in", 3)
    out = tmp_path / "out"
    assert run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1).returncode == 0
    mistaken = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1, "--mode", "pixelate")
    assert mistaken.returncode == 1
    assert mistaken.stderr.count("made by an earlier run under other settings") >= len(inputs)
    again = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in records(out / MANIFEST)[-len(inputs):]} == {"skipped"}


def test_an_upgraded_veil_or_model_redoes_what_the_manifest_lists_as_done(monkeypatch):
    # The settings a record vouches for include what made the output: a newer veil may find more.
    from veil import manifest
    before = manifest.settings_fingerprint("same options")
    monkeypatch.setattr(manifest, "__version__", "99.0")
    assert manifest.settings_fingerprint("same options") != before
    monkeypatch.undo()
    models = manifest.shipped_models_sha256()
    assert set(models) >= {"centerface.onnx", "retinaface_mnv2.onnx", "ppocrv6_det_small.onnx"}
    monkeypatch.setattr(manifest, "shipped_models_sha256", lambda: {**models, "centerface.onnx": "0" * 64})
    assert manifest.settings_fingerprint("same options") != before


def test_lines_of_a_manifest_that_are_not_records_are_ignored(tmp_path):
    from veil.manifest import read_manifest

    manifest = tmp_path / MANIFEST
    good = {"path": "/in/a.jpg", "status": "ok", "output": "/out/a.jpg", "settings": "s"}
    manifest.write_bytes(b"\n".join([
        json.dumps(good).encode(), b"[1, 2]", b'{"path": ["x"], "status": "ok", "output": "/out/x.jpg"}',
        b'{"path": "/in/b.jpg", "status": "ok", "output": "/out/\xff.jpg"}', b'{"path": "/in/c.jpg", "sta',
        json.dumps({"path": "/in/a.jpg", "status": "failed", "reason": "exists", "settings": "t"}).encode(),
        # Counts that are not whole numbers would end a resumed run's summary in an error.
        json.dumps({**good, "path": "/in/d.jpg", "regions_by_kind": {"face": None}}).encode(),
        json.dumps({**good, "path": "/in/e.jpg", "regions": "3"}).encode(),
        json.dumps({**good, "path": "/in/f.jpg", "regions_by_kind": [1]}).encode(),
        # Names no file can have: looking one up ended the run as "a bug in veil".
        json.dumps({**good, "path": "/in/g\0.jpg"}).encode(), json.dumps({**good, "output": "/out/\0.jpg"}).encode(),
        json.dumps({**good, "path": "/in/\ud800.jpg"}).encode(),
    ]))
    assert {path: record.status for path, record in read_manifest(manifest).items()} == {"/in/a.jpg": "ok"}


def test_a_manifest_line_nested_too_deeply_is_a_line_that_is_not_a_record(tmp_path):
    """A line nested deeper than Python reads back (a hand edit) ended the whole run as "unexpected
    RecursionError ... a bug in veil": one just below json's own limit did too, once names were
    looked for at every depth of a record."""
    from veil.manifest import ManifestWriter, read_manifest, started_outputs

    manifest = tmp_path / MANIFEST
    good = json.dumps({"path": "/in/a.jpg", "status": "ok", "output": "/out/a.jpg", "settings": "s"})
    deep = [f'{{"path": "/in/b.jpg", "status": "ok", "output": "/out/b.jpg", "x": {"[" * depth}{"]" * depth}}}'
            for depth in (600, 100_000)]
    manifest.write_text("\n".join([good] * 6 + deep) + "\n")
    assert list(read_manifest(manifest)) == ["/in/a.jpg"] and started_outputs(manifest, "s") == {}
    ManifestWriter(manifest).close()  # rewritten short: the lines that are not records stay
    assert manifest.read_text().splitlines() == [good, *deep]


def test_a_manifest_rewritten_short_reads_back_as_it_did_and_stays_locked(tmp_path):
    """Every rerun appended a record per file, and each run read the whole manifest back: it grew
    without end. Compacted, it keeps what a rerun reads (what vouches for each output, a killed
    run's "started" lines) and what last happened to each file, and stays locked against another run."""
    from veil.manifest import ManifestWriter, Record, read_manifest, started_outputs

    manifest = tmp_path / MANIFEST
    done = {name: Record(f"/in/{name}", "ok", "in", f"/out/{name}", "out", 1, {"face": 1}, 2.5, "host:1", None, "s")
            for name in ("a.jpg", "b.jpg")}
    written = []  # ten runs' records, as each run appended them
    for run in range(10):
        written.append(Record("/in/notes.txt", "skipped", reason="not a photo, video or sound file", settings="s"))
        if run == 0:
            written += [Record.started(Path(f"/in/{n}"), Path(f"/out/{n}"), "s") for n in (*done, "c.jpg")]
            written += done.values()
        else:
            written += [Record(r.path, "skipped", "in", r.output, "out", 1, {"face": 1}, reason="already done",
                               settings="s") for r in done.values()]
            written.append(Record.started(Path("/in/c.jpg"), Path("/out/c.jpg"), "s"))  # killed in every run
    manifest.write_text("".join(json.dumps(dataclasses.asdict(record)) + "\n" for record in written))
    before = (read_manifest(manifest), started_outputs(manifest, "s"), manifest.stat().st_mode)
    writer = ManifestWriter(manifest)
    try:
        # Another run opening it now finds it held, as it found the manifest before the rewrite.
        with open(manifest, "a") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        writer.close()
    assert (read_manifest(manifest), started_outputs(manifest, "s"), manifest.stat().st_mode) == before
    kept = [json.loads(line) for line in manifest.read_text().splitlines()]
    # The run that made each output is still named, beside the latest rerun's "already done".
    assert [(Path(r["path"]).name, r["status"], r["worker"]) for r in kept] == [
        ("a.jpg", "ok", "host:1"), ("b.jpg", "ok", "host:1"), ("notes.txt", "skipped", None),
        ("a.jpg", "skipped", None), ("b.jpg", "skipped", None), ("c.jpg", "started", None)]
    assert not [p for p in tmp_path.iterdir() if p.name != MANIFEST]  # no copy left beside it


def test_a_manifest_under_another_name_is_never_rewritten(tmp_path):
    """Rewritten by a rename, a manifest that is a link would become a file of its own beside its
    target (or its other name), which kept the old records; a device (--manifest /dev/full) would
    have been replaced by a file."""
    from veil.manifest import ManifestWriter, Record

    target = tmp_path / "records.jsonl"
    line = json.dumps(dataclasses.asdict(Record("/in/a.jpg", "skipped", output="/out/a.jpg", settings="s"))) + "\n"
    target.write_text(line * 10)
    (tmp_path / "link.jsonl").symlink_to(target)
    os.link(target, tmp_path / "other.jsonl")
    for name in ("link.jsonl", "other.jsonl"):
        ManifestWriter(tmp_path / name).close()
    assert (tmp_path / "link.jsonl").is_symlink() and (tmp_path / "other.jsonl").samefile(target)
    assert target.read_text() == line * 10


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
def test_a_manifest_rewritten_short_keeps_its_owner_and_group(tmp_path):
    """Rewritten by root (or by another user of its group), the manifest became that user's file:
    its owner's next run could no longer append to it ("cannot write the manifest")."""
    from veil.manifest import ManifestWriter, Record

    manifest = tmp_path / MANIFEST
    line = json.dumps(dataclasses.asdict(Record("/in/a.jpg", "skipped", output="/out/a.jpg", settings="s"))) + "\n"
    manifest.write_text(line * 10)
    os.chown(manifest, 1234, 4321)
    manifest.chmod(0o640)
    ManifestWriter(manifest).close()
    status = manifest.stat()
    assert (manifest.read_text(), status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (line, 1234, 4321, 0o640)


def test_reruns_of_one_command_keep_the_manifest_short(shared_data, tmp_path):
    photos(shared_data, tmp_path / "in", 2)
    out = tmp_path / "out"
    sizes = []
    for _ in range(5):
        result = run_veil(tmp_path / "in", "--output-dir", out, "--json")
        assert result.returncode == 0, result.stderr
        sizes.append(len((out / MANIFEST).read_text().splitlines()))
    assert json.loads(result.stdout)["already_done"] == 2
    assert max(sizes) <= 8, sizes  # the first run's 4 lines (started, ok), then 2 a rerun, halved as they pile up


def test_a_record_after_a_line_cut_short_is_kept(shared_data, tmp_path):
    """A manifest whose last line was cut short (a full disk, a power loss) had the next run's
    first record appended onto that line: read back as one broken line, that record was lost."""
    from veil.manifest import read_manifest

    inputs = photos(shared_data, tmp_path / "in", 2)
    out = tmp_path / "out"
    assert run_veil(tmp_path / "in", "--output-dir", out).returncode == 0
    manifest = out / MANIFEST
    whole = manifest.read_bytes()
    cut = whole[:-20]  # the last outcome's end never written: that file is done again
    redone = Path(json.loads(whole.splitlines()[-1])["path"]).name
    kept = ({p.name for p in inputs} - {redone}).pop()
    manifest.write_bytes(cut)
    again = run_veil(tmp_path / "in", "--output-dir", out, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["already_done"] == 1, again.stderr
    # Said, not silently redone: the cut line held the record of a file now done again.
    said = f"the last line of the manifest {manifest} was cut short"
    assert said in again.stderr and any(said in note for note in json.loads(again.stdout)["notes"])
    lines = manifest.read_bytes()[len(cut):].split(b"\n")
    # The cut line is ended, and each of this run's records (the done file's, the other's started
    # line and outcome) is a line of its own.
    assert lines[0] == b"" and lines[-1] == b""
    added = [json.loads(line) for line in lines[1:-1]]
    assert [(Path(r["path"]).name, r["status"]) for r in added] == [
        (kept, "skipped"), (redone, "started"), (redone, "ok")]
    # A record an earlier veil glued onto a cut line is read back all the same.
    manifest.write_bytes(cut + manifest.read_bytes().splitlines(keepends=True)[-1])
    assert {Path(path).name: record.status for path, record in read_manifest(manifest).items()} == {
        kept: "ok", redone: "ok"}
    manifest.write_bytes(cut + b"\n")  # a cut line already ended by a run: said by that run only
    assert "cut short" not in run_veil(tmp_path / "in", "--output-dir", out).stderr


def test_a_resumed_run_counts_each_kind_and_says_when_an_older_record_did_not(shared_data, tmp_path):
    """A file done by an earlier run is counted from its record: per kind where it says, and as
    unknown per kind (not as no faces) where an older veil's record holds only a total."""
    inputs = photos(shared_data, tmp_path / "in", 2)
    out = tmp_path / "out"
    first = run_veil(tmp_path / "in", "--output-dir", out, "--json")
    assert first.returncode == 0, first.stderr
    faces = json.loads(first.stdout)["faces"]
    assert faces >= 1
    again = json.loads(run_veil(tmp_path / "in", "--output-dir", out, "--json").stdout)
    assert again["already_done"] == 2 and again["faces"] == faces and again["regions_by_kind"] == {"face": faces}
    # This run hid none of them: said (it said "2 file(s) (2 already done by an earlier run), N region(s) hidden").
    assert again["regions_already_done"] == again["regions"] == faces
    said = run_veil(tmp_path / "in", "--output-dir", out, "--report", tmp_path / "again.json").stderr
    assert f"(2 already done by an earlier run, which hid {faces} of these regions), {faces} region(s) hidden" in said
    # Nor does its report describe a redaction (it gave "Voices: ... NOT protected" for two photos).
    page = (tmp_path / "again.html").read_text()
    assert "(no file was redacted in this run)" in page and "NOT protected" not in page, page
    assert "made by hand" not in page and "none recorded: no file was redacted in this run" in page
    lines = (out / MANIFEST).read_text().splitlines()
    older = [json.dumps({k: v for k, v in json.loads(line).items() if k != "regions_by_kind"}) for line in lines]
    (out / MANIFEST).write_text("\n".join(older) + "\n")
    third = json.loads(run_veil(tmp_path / "in", "--output-dir", out, "--json").stdout)
    assert third["already_done"] == 2 and third["regions"] == faces
    assert third["faces"] is None and third["regions_by_kind"] is None
    assert [r["regions_by_kind"] for r in third["results"]] == [None, None]
    assert all(r["output"] for r in third["results"]) and len(inputs) == 2


def test_a_manifest_that_cannot_be_written_stops_the_run_before_any_output(shared_data, tmp_path):
    """A full disk under the manifest stops the run at the first records, each file's "started"
    line, before any output is written: none is left that no record names. (Were the disk to fill
    later, the files then written but in no record are each named: `unrecorded`.) The disk is
    full for the manifest's first line: no file of the run may grow past 150 bytes (a device, such
    as /dev/full, is refused as a manifest)."""
    def full_past_150_bytes() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) rather than killing veil
        resource.setrlimit(resource.RLIMIT_FSIZE, (150, 150))

    photos(shared_data, tmp_path / "in", 4)
    manifest = tmp_path / "records.jsonl"
    result = subprocess.run(veil_command(tmp_path / "in", "--output-dir", tmp_path / "out", "--manifest", manifest,
                                         "--jobs", 2), capture_output=True, text=True, env=environment(),
                            timeout=DEADLINE_S, preexec_fn=full_past_150_bytes)
    assert result.returncode != 0
    assert f"cannot write the manifest {manifest} (File too large): the run stopped; no output was written" in \
        result.stderr, result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert "Traceback" not in result.stderr


def test_a_manifest_path_naming_a_file_that_is_not_one_is_refused_and_left_alone(shared_data, tmp_path):
    # --manifest naming a photo (or notes) appended JSON lines to it, exit 0, without a word.
    inputs = photos(shared_data, tmp_path / "in", 2)
    before = inputs[0].read_bytes()
    result = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--manifest", inputs[0])
    assert result.returncode != 0 and "is not a veil manifest" in result.stderr, result.stderr
    assert inputs[0].read_bytes() == before
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert "Traceback" not in result.stderr


def test_a_loop_of_symbolic_links_in_a_folder_is_skipped_and_the_run_goes_on(shared_data, tmp_path):
    # Python (before 3.13) raises on a link loop where a path is resolved: the whole batch ended
    # before any file, "unexpected RuntimeError ... this is a bug in veil".
    photos(shared_data, tmp_path / "in", 1)
    os.symlink("self", tmp_path / "in" / "self")
    os.symlink("y", tmp_path / "in" / "x")
    os.symlink("x", tmp_path / "in" / "y")
    result = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["files"] == 1 and summary["failed"] == 0 and summary["skipped"] == 3
    assert sorted(Path(entry["path"]).name for entry in summary["skipped_files"]) == ["self", "x", "y"]
    named = run_veil(tmp_path / "in" / "self", "-o", tmp_path / "self.jpg")
    assert named.returncode == 1 and "a symbolic link that leads nowhere (or in a loop)" in named.stderr, named.stderr


def test_an_output_moved_into_place_but_never_recorded_is_redone(shared_data, tmp_path):
    """A run killed outright (SIGKILL) just after a worker moved an output into place, before its
    record, left a finished output that no record named: the rerun refused it as someone else's
    file ("exists: use --overwrite"). Each file's "started" line says the output is veil's own."""
    inputs = photos(shared_data, tmp_path / "in", 2)
    assert run_veil(tmp_path / "in", "--output-dir", tmp_path / "out").returncode == 0
    manifest = tmp_path / "out" / MANIFEST
    lines = manifest.read_text().splitlines()
    started = [line for line in lines if json.loads(line)["status"] == "started"]
    assert len(started) == 2 and lines[:2] == started  # written before any work
    # As the kill left it: the started lines, one file's outcome, and both outputs.
    outcome = next(line for line in lines[2:] if inputs[0].name in json.loads(line)["path"])
    manifest.write_text("\n".join([*started, outcome]) + "\n")
    result = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["already_done"] == 1 and summary["failed"] == 0
    # Replaced, said: a file put there by hand since would otherwise be lost in silence.
    assert f"veil: {tmp_path / 'out' / inputs[1].name} will be replaced as the file is redone: the manifest " \
        "records that a stopped run started making it there" in result.stderr, result.stderr
    assert any("will be replaced" in note for note in summary["notes"])
    # Someone else's file at an output's place is still refused.
    manifest.unlink()
    (tmp_path / "out" / inputs[1].name).write_bytes(b"not veil's")
    result = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert result.returncode == 1 and "exists: use --overwrite" in result.stderr


def _held(manifest: Path):
    """`manifest` locked as a veil run writing to it locks it (flock, exclusive); closing releases it."""
    file = open(manifest, "a")  # noqa: SIM115 - the caller closes it
    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return file


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file in `folder`: its bytes and what a replacement would change (inode, mtime)."""
    return {p.name: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_run_into_a_manifest_another_run_is_writing_to_is_refused_and_writes_nothing(shared_data, tmp_path):
    """Two runs into one --output-dir at once: the second took the first's "started" records for a
    crashed run's and replaced each output the live run wrote, both exiting 0 with every file
    recorded twice. A run holds its manifest locked while it writes to it; another is refused."""
    photos(shared_data, tmp_path / "in", 2)
    out = tmp_path / "out"
    assert run_veil(tmp_path / "in", "--output-dir", out).returncode == 0
    before = _snapshot(out)
    with _held(out / MANIFEST):
        for extra in ([], ["--overwrite"], ["--mode", "blur"]):
            refused = run_veil(tmp_path / "in", "--output-dir", out, *extra)
            assert refused.returncode == 2, refused.stderr
            assert refused.stderr.splitlines() == [
                f"veil: another veil run (pid {os.getpid()}) is writing to {out / MANIFEST}: wait for it to end, "
                "or use another --output-dir (or --manifest)"]
            assert _snapshot(out) == before
        # The same for a manifest named with --manifest: the output folder is not even made.
        chosen = tmp_path / "chosen.jsonl"
        with _held(chosen):
            refused = run_veil(tmp_path / "in", "--output-dir", tmp_path / "other", "--manifest", chosen)
            assert refused.returncode == 2 and "is writing to" in refused.stderr, refused.stderr
            assert not (tmp_path / "other").exists() and chosen.read_bytes() == b""
    # Released (as the system releases it when a run ends, killed or not): the next run goes on.
    again = run_veil(tmp_path / "in", "--output-dir", out)
    assert again.returncode == 0 and "(2 already done by an earlier run, which hid" in again.stderr, again.stderr


def test_two_real_runs_into_one_folder_one_refused_while_the_other_works(shared_data, tmp_path):
    inputs = photos(shared_data, tmp_path / "in", 3)
    out = tmp_path / "out"
    first = start_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1, "--mode", "blur")
    started = lambda: out.joinpath(MANIFEST).exists() and '"started"' in out.joinpath(MANIFEST).read_text()  # noqa: E731
    wait_until(started, first)
    first.send_signal(signal.SIGSTOP)  # still at work, for as long as the second takes to start
    try:
        second = run_veil(tmp_path / "in", "--output-dir", out, "--jobs", 1, "--mode", "blur")
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=DEADLINE_S)
    assert first.returncode == 0, stderr
    assert second.returncode == 2 and f"another veil run (pid {first.pid}) is writing to" in second.stderr, \
        second.stderr
    # The first run's record alone, and true: each output has the hash recorded for it.
    done = records(out / MANIFEST)
    assert sorted(r["path"] for r in done) == sorted(str(p) for p in inputs) and {r["status"] for r in done} == {"ok"}
    for record in done:
        assert hashlib.sha256(Path(record["output"]).read_bytes()).hexdigest() == record["output_sha256"]


def test_a_manifest_kept_in_the_output_folder_is_said_to_stay_out_of_what_is_published(shared_data, tmp_path):
    # The folder of redacted copies is the one users publish; the manifest veil keeps there by
    # default names their folders, the files passed over and the machine, and nothing said so.
    photos(shared_data, tmp_path / "in", 2)
    run = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert f"leave it out when you publish {tmp_path / 'out'}" in run.stderr
    as_json = run_veil(tmp_path / "in", "--output-dir", tmp_path / "again", "--json")
    assert any("leave it out when you publish" in note for note in json.loads(as_json.stdout)["notes"])
    elsewhere = run_veil(tmp_path / "in", "--output-dir", tmp_path / "apart", "--manifest", tmp_path / "m.jsonl")
    assert elsewhere.returncode == 0 and "publish" not in elsewhere.stderr, elsewhere.stderr
    # The report and the plan name the inputs' paths and the originals' hashes too: written into the
    # folder to publish, they were not said to stay out of it.
    inside = run_veil(tmp_path / "in", "--output-dir", tmp_path / "third", "--manifest", tmp_path / "m3.jsonl",
                      "--report", tmp_path / "third" / "audit.json", "--save-plan", tmp_path / "third" / "plan.json")
    assert inside.returncode == 0, inside.stderr
    for what in ("report", "plan"):
        assert f"the {what} {tmp_path / 'third' / what.replace('report', 'audit')}.json names every input's path " \
            f"and the original's SHA-256: leave it out when you publish {tmp_path / 'third'}" in inside.stderr, \
            inside.stderr


def test_outputs_named_after_the_moment_of_capture_are_said_to_keep_it(shared_data, tmp_path):
    # veil takes the capture time out of a photo's metadata; a phone's file name (IMG_20210506_070809)
    # holds the same time, and the outputs kept it unsaid.
    (plain,) = photos(shared_data, tmp_path / "in", 1)
    phone = plain.rename(plain.with_name("IMG_20210506_070809.jpg"))
    run = run_veil(phone)
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stderr.split())
    assert "1 output(s) keep a name that holds a date, as cameras, phones, messengers and people name what they " \
           "record (IMG_20210506_070809.redacted.jpg)" in said, said
    assert said.index("1 file(s)") < said.index("keep a name")  # advice on the outputs, after the summary
    quiet = run_veil(phone, "--overwrite", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    as_json = run_veil(phone, "--overwrite", "--json")
    assert any("keep a name that holds a date" in note for note in json.loads(as_json.stdout)["notes"])
    other = run_veil(phone, "-o", tmp_path / "crowd.jpg")
    assert other.returncode == 0 and "holds a date" not in other.stderr, other.stderr
    # A messenger's name holds the day alone; a data set's numbers are no date.
    assert holds_capture_time("IMG-20210506-WA0001.jpg") and holds_capture_time("20210506070809.jpg")
    assert not holds_capture_time("0_Parade_Parade_0_502.jpg") and not holds_capture_time("IMG_1234_20211301.jpg")
    # Milliseconds since 1970, as WeChat and Facebook name a saved photo.
    assert holds_capture_time("mmexport1620284889123.jpg") and holds_capture_time("FB_IMG_1620284889123.jpg")
    assert not holds_capture_time("scan_12345678901234.jpg") and not holds_capture_time("IMG_1234.jpg")
    # Named by hand: the day first, or the month first with the year last; not a version or an address.
    assert all(map(holds_capture_time, ["Photo 06.05.21.jpg", "06-05-2021.jpg", "05-06-2021", "31_12_1999 (2).jpg"]))
    assert not any(map(holds_capture_time, ["v1.2.3.jpg", "06.13.21.jpg", "192.168.10.12.jpg", "06-05_21.jpg"]))
    # A folder of the day, mirrored into the output folder, publishes the date with every file in it.
    (tmp_path / "dated" / "06.05.2021").mkdir(parents=True)
    (tmp_path / "crowd.jpg").rename(tmp_path / "dated" / "06.05.2021" / "crowd.jpg")
    folder = run_veil(tmp_path / "dated" / "06.05.2021", "--output-dir", tmp_path / "06.05.2021 out")
    assert folder.returncode == 0 and "holds a date" not in folder.stderr, folder.stderr  # the folder is not mirrored
    # Every such name is said (the first five), not the first alone: which to rename is the user's to know.
    shutil.copy(phone, tmp_path / "dated" / "IMG-20210506-WA0001.jpg")
    mirrored = run_veil(tmp_path / "dated", "--output-dir", tmp_path / "out")
    said = " ".join(mirrored.stderr.split())
    listed = re.search(r"2 output\(s\) keep a name that holds a date, [^(]*\(([^)]*)\)", said)
    assert mirrored.returncode == 0 and listed, mirrored.stderr
    assert sorted(listed[1].split(", ")) == ["06.05.2021/crowd.jpg", "IMG-20210506-WA0001.jpg"], listed[1]


def test_a_folder_of_one_photo_is_resumed_like_any_folder(shared_data, tmp_path):
    # It wrote no manifest (one file has nothing to resume), so its rerun was refused as "exists"
    # instead of finding the photo already done.
    photos(shared_data, tmp_path / "in", 1)
    first = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert first.returncode == 0 and (tmp_path / "out" / MANIFEST).is_file(), first.stderr
    again = run_veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["already_done"] == 1, again.stderr


def test_a_folder_with_nothing_to_work_on_lists_what_it_passed_over_in_json(tmp_path):
    # README: what is neither photo nor video is listed by name as skipped, also in --json. A folder
    # of nothing else was refused with {"error", "exit_code"} alone: the names were on stderr only.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.txt").write_text("the meeting's address\n")
    # Half a picture format to Pillow (an XBM's "#define"), and a raw camera file's start (a TIFF's):
    # not named as photos, passed over as before (a damaged photo is refused only by its name).
    (folder / "config.h").write_text('#define VERSION 2\n#define NAME "x"\n')
    (folder / "IMG_0001.dng").write_bytes(b"II*\0" + bytes(64))
    result = run_veil(folder, "--json")
    assert result.returncode == 2, result.stderr
    answer = json.loads(result.stdout)
    assert answer["exit_code"] == 2 and answer["error"].startswith("no photos or videos found")
    assert sorted((Path(entry["path"]).name, entry["reason"]) for entry in answer["skipped_files"]) == [
        (name, "not a photo, video or sound file veil can read") for name in ("IMG_0001.dng", "config.h", "notes.txt")]


def test_files_made_from_a_private_photo_are_private_too(shared_data, tmp_path):
    """A photo only its owner may read (0600) got an output, plan, report and manifest readable by
    every user of the machine (0644 under the usual umask): an unreviewed output may still show a
    face, and the plan, report and manifest name the photo and its hash. Each output keeps its own
    input's reading; a file naming both inputs keeps the stricter."""
    private, public = photos(shared_data, tmp_path / "in", 2)
    private.chmod(0o600)
    public.chmod(0o644)
    out, plan, report = tmp_path / "out", tmp_path / "plan.json", tmp_path / "report.json"
    umask = os.umask(0o022)
    try:
        result = run_veil(tmp_path / "in", "--output-dir", out, "--save-plan", plan, "--report", report)
    finally:
        os.umask(umask)
    assert result.returncode == 0, result.stderr
    modes = {path.name: stat.S_IMODE(path.stat().st_mode)
             for path in (out / private.name, out / public.name, plan, report, report.with_suffix(".html"),
                          out / MANIFEST)}
    assert modes == {private.name: 0o600, public.name: 0o644, "plan.json": 0o600, "report.json": 0o600,
                     "report.html": 0o600, MANIFEST: 0o600}
