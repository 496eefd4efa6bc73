"""Inputs and outputs named by fsspec URLs: memory:// in this process (--jobs 1), file:// for the
worker processes and the Dask LocalCluster (a memory:// store is private to each process).

Real photos, the real detector, real fsspec filesystems; an output is checked against the
same file redacted from a local path, and its faces against the plan.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import http.server
import io
import importlib.util
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import fsspec
import fsspec.config
import numpy as np
import pytest
from PIL import Image

from veil.outputs import Input, Skipped, collect_inputs
from veil.remote import RemoteError, Url

from test_batch import DEADLINE_S, environment, photos, records, run_veil, veil_command, wait_until
from photo_support import KIT_WITH_ROSE, TWO_PEOPLE, copy_in, face_slice, planned_faces, share_near, veil


@pytest.fixture()
def memory():
    """A clean memory:// store (fsspec keeps one per process)."""
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


@pytest.fixture()
def private_temp(tmp_path, monkeypatch) -> Path:
    """The system temp folder of this process, to see that nothing is left in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def rgb_of_bytes(data: bytes, tmp_path: Path) -> np.ndarray:
    path = tmp_path / "decoded"
    path.write_bytes(data)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_memory_folder_is_redacted_into_a_memory_folder_and_resumed(shared_data, tmp_path, memory, private_temp):
    local = tmp_path / "local"
    two, kit = copy_in(shared_data, TWO_PEOPLE, local), copy_in(shared_data, KIT_WITH_ROSE, local)
    memory.pipe({"/in/two_people.jpg": two.read_bytes(), "/in/sub/kit_with_rose.jpg": kit.read_bytes(),
                 "/in/notes.txt": b"not a photo", "/in/.hidden.jpg": two.read_bytes(),
                 "/in/old.redacted.jpg": two.read_bytes()})
    manifest, plan = tmp_path / "manifest.jsonl", tmp_path / "plan.json"
    command = ("memory://in/", "--output-dir", "memory://out", "--jobs", 1, "--manifest", manifest)

    result = veil(*command, "--save-plan", plan, "--report", tmp_path / "report.json", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {s["path"]: s["reason"] for s in summary["skipped_files"]} == {
        "memory://in/.hidden.jpg": "hidden file", "memory://in/notes.txt": "not a photo, video or sound file veil can read",
        "memory://in/old.redacted.jpg": "named as an output of veil (.redacted), with no file beside it that it was made from"}
    # Nothing but the finished outputs on the remote, nothing left in the temp folder.
    assert sorted(memory.find("/out")) == ["/out/sub/kit_with_rose.jpg", "/out/two_people.jpg"]
    assert list(private_temp.iterdir()) == []

    # The same bytes as from a local path; the faces of the plan are black.
    assert veil(two, "-o", tmp_path / "two.jpg").exit_code == 0
    written = memory.cat("/out/two_people.jpg")
    assert written == (tmp_path / "two.jpg").read_bytes() != two.read_bytes()
    media = {m["path"]: m for m in json.loads(plan.read_text())["media"]}
    assert set(media) == {"memory://in/sub/kit_with_rose.jpg", "memory://in/two_people.jpg"}
    single = tmp_path / "two_people_plan.json"
    single.write_text(json.dumps({**json.loads(plan.read_text()), "media": [media["memory://in/two_people.jpg"]]}))
    faces = planned_faces(single)
    assert len(faces) >= 2
    pixels = rgb_of_bytes(written, tmp_path)
    for face in faces:
        assert share_near(pixels[face_slice(face)], (0, 0, 0), 24) >= 0.95, "face not hidden"

    # The manifest and the report name the URLs, with the SHA-256 of what was read and written.
    first = records(manifest)
    by_path = {r["path"]: r for r in first}
    passed_over = {s["path"]: s["reason"] for s in summary["skipped_files"]}  # none of them veil's own
    assert set(by_path) == {"memory://in/two_people.jpg", "memory://in/sub/kit_with_rose.jpg", *passed_over}
    assert {path: (by_path[path]["status"], by_path[path]["reason"]) for path in passed_over} == {
        path: ("skipped", reason) for path, reason in passed_over.items()}
    done = by_path["memory://in/two_people.jpg"]
    assert done["status"] == "ok" and done["output"] == "memory://out/two_people.jpg"
    assert done["input_sha256"] == sha256(two.read_bytes())
    assert done["output_sha256"] == sha256(written)
    report = {f["input"]: f for f in json.loads((tmp_path / "report.json").read_text())["files"]}
    entry = report["memory://in/two_people.jpg"]
    assert entry["input_matches_plan"] and entry["output_sha256"] == done["output_sha256"]

    # Running again does nothing: every file is already done.
    again = veil(*command)
    assert again.exit_code == 0, again.stderr
    assert [r["status"] for r in records(manifest)[-(2 + len(passed_over)):]] == ["skipped"] * (2 + len(passed_over))
    assert memory.cat("/out/two_people.jpg") == written

    # Without the manifest's word, an existing remote output is someone's: refused unless asked.
    memory.pipe("/out/two_people.jpg", b"edited by hand")
    refused = veil(*command)
    assert refused.exit_code == 1 and "memory://out/two_people.jpg exists: use --overwrite" in refused.stderr
    assert memory.cat("/out/two_people.jpg") == b"edited by hand"
    assert veil(*command, "--overwrite").exit_code == 0
    assert memory.cat("/out/two_people.jpg") == written
    assert list(private_temp.iterdir()) == []

    # A plan file from elsewhere names URLs: veil reaches no server the command itself does not name.
    from_plan = veil("--plan", plan, "--output-dir", tmp_path / "again")
    assert from_plan.exit_code == 2 and "the plan names files by URL (memory://in/" in from_plan.stderr
    named = veil("memory://in/two_people.jpg", "--plan", plan, "-o", tmp_path / "again.jpg")
    assert named.exit_code == 0, named.stderr
    assert (tmp_path / "again.jpg").read_bytes() == written


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_one_file_to_one_url(shared_data, tmp_path, memory, private_temp):
    two = copy_in(shared_data, TWO_PEOPLE, tmp_path / "local")
    memory.pipe("/in/photo", two.read_bytes())  # no suffix: a JPEG by its content
    result = veil("memory://in/photo", "-o", "memory://out/redacted.jpg")
    assert result.exit_code == 0, result.stderr
    assert veil(two, "-o", tmp_path / "two.jpg").exit_code == 0
    assert memory.cat("/out/redacted.jpg") == (tmp_path / "two.jpg").read_bytes()
    # Beside its input when no output is named, as for a local file.
    assert veil("memory://in/photo").exit_code == 0
    assert memory.cat("/in/photo.redacted.jpg") == (tmp_path / "two.jpg").read_bytes()
    # A local file to a URL.
    assert veil(two, "-o", "memory://out/from_local.jpg").exit_code == 0
    assert memory.cat("/out/from_local.jpg") == (tmp_path / "two.jpg").read_bytes()
    assert list(private_temp.iterdir()) == []


def url_of(path: Path) -> str:
    return f"file://{path}"


@pytest.mark.parametrize("workers", [["--jobs", "2"], ["--cluster", "local:2"]], ids=["pool", "local-cluster"])
def test_file_urls_in_worker_processes(shared_data, tmp_path, monkeypatch, workers):
    inputs = photos(shared_data, tmp_path / "in", 4)
    local = run_veil(tmp_path / "in", "--output-dir", tmp_path / "local", "--jobs", 1)
    assert local.returncode == 0, local.stderr
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # for the veil processes and their workers
    out = tmp_path / "out"
    manifest = tmp_path / "manifest.jsonl"
    command = (url_of(tmp_path / "in"), "--output-dir", url_of(out), "--manifest", manifest, *workers)
    result = run_veil(*command)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in inputs)  # no partial file left
    for path in inputs:
        assert (out / path.name).read_bytes() == (tmp_path / "local" / path.name).read_bytes(), path.name
    done = records(manifest)
    assert sorted(r["path"] for r in done) == sorted(url_of(p) for p in inputs)
    assert {r["status"] for r in done} == {"ok"}
    assert all(r["output"] == url_of(out / Path(r["path"]).name) for r in done)
    assert not [p for p in temp.iterdir() if p.name.startswith("veil-")], "a temporary copy was left"

    again = run_veil(*command)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in records(manifest)[-len(inputs):]} == {"skipped"}
    # Named by path, they are the same files: done already (the manifest took them for others).
    by_path = run_veil(tmp_path / "in", "--output-dir", out, "--manifest", manifest, *workers)
    assert by_path.returncode == 0, by_path.stderr
    assert [r["status"] for r in records(manifest)[-len(inputs):]] == ["skipped"] * len(inputs)


def test_an_output_url_with_a_name_near_the_longest_is_written(shared_data, tmp_path):
    # Its unfinished copy's name, longer than the output's, was past what the file system takes:
    # the upload failed after all the work.
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    long = source.rename(source.with_name("n" * 240 + ".jpg"))
    result = run_veil(long, "-o", url_of(tmp_path / "out" / long.name))
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [long.name]


@pytest.mark.parametrize("jobs, signum, times", [(1, signal.SIGTERM, 1), (2, signal.SIGTERM, 1), (2, signal.SIGHUP, 1),
                                                 (2, signal.SIGINT, 2)])
def test_an_interrupted_url_run_leaves_no_copy_and_no_partial_output(shared_data, tmp_path, monkeypatch, jobs, signum,
                                                                     times):
    """A stop to veil's whole process group, workers included (as a service manager, a closed
    terminal or an impatient double Ctrl-C sends it): the workers' copies and partial outputs go
    too, and no process of the group prints a traceback."""
    inputs = photos(shared_data, tmp_path / "in", 12)
    temp, out, manifest = tmp_path / "tmp", tmp_path / "out", tmp_path / "manifest.jsonl"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    process = subprocess.Popen(veil_command(url_of(tmp_path / "in"), "--output-dir", url_of(out), "--manifest", manifest,
                                            "--jobs", jobs),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                               start_new_session=True)
    wait_until(lambda: len(records(manifest)) >= 2, process)
    for _ in range(times):
        os.killpg(process.pid, signum)
        time.sleep(0.2)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and f"stopped ({signum.name})" in stderr
    written = {p.name for p in out.iterdir()}
    assert not [name for name in written if name.startswith(".")], "a partial output was left"
    assert {Path(r["output"]).name for r in records(manifest)} <= written and len(written) < len(inputs)
    assert list(temp.iterdir()) == [], "a temporary copy was left"


def test_the_copies_a_run_killed_outright_left_are_removed_by_the_next_run(shared_data, tmp_path, monkeypatch):
    """A run killed outright (the kernel's out-of-memory killer sends SIGKILL) runs no clean-up: the
    staged, unredacted copy of its input stays in the temp folder. The next run removes it and
    says so; a folder some live process still holds stays, whatever its name's process id says
    (a run in another container sharing the temp folder)."""
    inputs = photos(shared_data, tmp_path / "in", 12)
    temp, out = tmp_path / "tmp", tmp_path / "out"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    process = subprocess.Popen(veil_command(url_of(tmp_path / "in"), "--output-dir", out, "--jobs", 1),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                               start_new_session=True)
    wait_until(lambda: any(temp.glob("veil-*/input/*.jpg")), process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=DEADLINE_S)
    assert list(temp.glob("veil-*/input/*.jpg")), "the kill left no copy: nothing to see removed"
    killed = len(list(temp.iterdir()))

    # A folder some process still holds stays, whatever its name's process id says (a run of another
    # container sharing the temp folder); one named like veil's but not marked as veil's (a user's own
    # "veil-2024-holidays") stays; a marked one whose number is no process id at all goes, like the copy.
    held, theirs, odd = temp / "veil-1-abcdefgh", temp / "veil-2024-holidays", temp / "veil-99999999999999999999-abcdefgh"
    for folder in (held, theirs, odd):
        folder.mkdir()
    for folder in (held, odd):
        (folder / ".veil-temporary").touch()
    holder = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holder, fcntl.LOCK_SH)
    try:
        again = run_veil(inputs[0], "-o", tmp_path / "again.jpg", "--json")
    finally:
        os.close(holder)
    assert again.returncode == 0, again.stderr
    assert sorted(temp.iterdir()) == sorted([held, theirs]), "the killed run's copy is still there"
    said = f"removed {killed + 1} temporary folder(s) left by veil runs that ended without cleaning up"
    assert said in again.stderr, again.stderr
    # A program reading the answer learns it too, not only a person reading the terminal.
    assert [said in note for note in json.loads(again.stdout)["notes"]] == [True], again.stdout


def one_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert len([line for line in lines if line.startswith(("veil: ", "Error: "))]) == 1, result.stderr
    return result.stderr


def test_a_bad_url_is_one_clear_line(tmp_path, memory):
    assert "nosuch://bucket/in: no installed fsspec backend serves nosuch://" in one_error(
        veil("nosuch://bucket/in", "--output-dir", tmp_path / "out"))
    assert "nosuch://bucket/out" in one_error(veil(tmp_path, "--output-dir", "nosuch://bucket/out"))
    assert "file:///no/such/folder/a.jpg: no such file" in one_error(veil("file:///no/such/folder/a.jpg"))
    assert "plans, reports and manifests are local files" in one_error(
        veil("memory://in/a.jpg", "--report", "memory://out/report.json"))
    for url in ("ftp://example.org/in/a.jpg", "simplecache::http://example.org/a.jpg"):  # refused before any lookup
        assert "over the network unencrypted" in one_error(veil(url, "--output-dir", tmp_path / "out"))
    assert "over the network unencrypted" in one_error(veil(tmp_path, "--output-dir", "ftp://example.org/out"))
    # From the command line a memory:// store would die with the process, and what was written there with it.
    command = subprocess.run(veil_command(tmp_path, "--output-dir", "memory://out"), capture_output=True, text=True,
                             env=environment(), timeout=60)
    assert command.returncode == 2 and "memory:// is a store inside one Python process" in command.stderr
    if importlib.util.find_spec("s3fs") is None:
        assert "s3://bucket/in: Install s3fs" in one_error(veil("s3://bucket/in/", "--output-dir", "s3://bucket/out/"))


def test_a_url_holding_a_password_or_a_query_is_refused_without_saying_them(tmp_path):
    """A URL's password, and a signed URL's signature or token, were written with it into the plan,
    the report and the output folder's manifest (which go with the outputs), and a query string
    named the output ("b.jpg?X-Amz-Signature=....jpg")."""
    for url, secret in (("https://alice:S3cretPW@127.0.0.1:9/a.jpg", "S3cretPW"),
                        ("https://127.0.0.1:9/b.jpg?X-Amz-Signature=SIGabc&token=TOKxyz", "SIGabc"),
                        ("s3://AKIAKEY:S3cretKEY@bucket/in/", "S3cretKEY"),
                        ("zip://a.jpg::sftp://jane:S3cretZIP@127.0.0.1:9/a.zip", "S3cretZIP")):
        for command in ((url, "--output-dir", tmp_path / "out", "--report", tmp_path / "r.json"),
                        (tmp_path, "--output-dir", url)):
            result = run_veil(*command)
            assert result.returncode == 2 and secret not in result.stderr, result.stderr
            assert "password in a URL is a secret" in result.stderr or "query string" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.json").exists()
    # A repository's org:repo@revision is no password (fsspec's github:// form), nor an Azure container.
    for url in ("github://fsspec:filesystem_spec@master/a.jpg", "abfs://photos@account.dfs.core.windows.net/a.jpg"):
        assert "password" not in run_veil(url, "-o", tmp_path / "a.jpg").stderr


def test_a_url_holding_a_token_as_its_user_in_its_query_or_in_its_fragment_is_refused_and_never_recorded(
        shared_data, tmp_path, memory):
    """A bare user part is how GitHub and GitLab tokens are given (https://ghp_...@host/...), webhdfs
    takes a delegation token in its query, and a fragment may hold one: such a URL was taken, and the
    token written into --json, the report, the plan and the output folder's manifest. The memory://
    one is there to be read: it was redacted, its token recorded everywhere."""
    local = tmp_path / "local"
    photo = photos(shared_data, local, 1)[0]
    memory.pipe("/TOKmem@in/photo.jpg", photo.read_bytes())
    out, report, plan = tmp_path / "out", tmp_path / "report.json", tmp_path / "plan.json"
    for url, secret in (("memory://TOKmem@in/photo.jpg", "TOKmem"),
                        ("https://ghp_TOKgh123@127.0.0.1:9/in/a.jpg", "TOKgh123"),
                        ("webhdfs://127.0.0.1:9/in/a.jpg?delegation=TOKhdfs", "TOKhdfs"),
                        ("https://127.0.0.1:9/in/a.jpg#access_token=TOKfrag", "TOKfrag"),
                        ("sftp://TOKsftp@127.0.0.1:9/in/a.jpg", "TOKsftp"),
                        ("file://TOKfile@/in/a.jpg", "TOKfile")):
        for command in ((url, "--output-dir", out), (local, "--output-dir", url)):
            result = veil(*command, "--jobs", 1, "--report", report, "--save-plan", plan, "--json")
            said = result.stdout + result.stderr
            assert result.exit_code == 2 and secret not in said, said
            assert "in a URL is a secret" in result.stderr or "query string or fragment" in result.stderr, said
            assert "FSSPEC_<PROTOCOL>_<OPTION>" in result.stderr, said  # where credentials go instead
    assert not out.exists() and not report.exists() and not plan.exists()
    assert sorted(memory.find("/")) == ["/TOKmem@in/photo.jpg"]


def reads_refused(path: Path) -> bool:
    """Whether `path` is a file (of some bytes, by its size) that every read of fails."""
    try:
        path.read_bytes()
    except OSError:
        return path.is_file() and path.stat().st_size > 0
    return False


def test_a_file_whose_read_fails_while_its_kind_is_looked_at_fails_with_its_reason(shared_data, tmp_path):
    """Pillow and FFmpeg take a read that fails (a connection reset, a disk's I/O error) for bytes
    they do not recognise: a photo without a suffix was passed over as "not a photo, video or sound
    file", the run's exit 0, and a .jpg failed with that false reason. A real read error: sysfs's
    files for the loopback's speed and duplex are files of 4096 bytes that every read refuses."""
    speed, duplex = Path("/sys/class/net/lo/speed"), Path("/sys/class/net/lo/duplex")
    if not (reads_refused(speed) and reads_refused(duplex)):
        pytest.skip("no sysfs file here that refuses every read")
    folder = tmp_path / "in"
    photos(shared_data, folder, 1)
    (folder / "IMG_0002").symlink_to(speed)
    (folder / "b.jpg").symlink_to(duplex)
    for n, (named, reason) in enumerate(((folder, "cannot be read (Invalid argument)"),
                                         (url_of(folder), "Invalid argument"))):
        out = tmp_path / f"out{n}"
        result = veil(named, "--output-dir", out, "--jobs", 1, "--json")
        summary = json.loads(result.stdout)
        assert result.exit_code == 1 and summary["skipped_files"] == [], result.stdout
        failed = {Path(str(r["input"])).name: r["error"] for r in summary["results"] if r["error"]}
        assert sorted(failed) == ["IMG_0002", "b.jpg"] and all(reason in e for e in failed.values()), failed
        assert sorted(r["status"] for r in records(out / "veil-manifest.jsonl")) == ["failed", "failed", "ok"]
    # Named alone, too.
    alone = veil(folder / "IMG_0002", "-o", tmp_path / "alone.jpg")
    assert alone.exit_code == 1 and "cannot be read (Invalid argument)" in alone.stderr, alone.stderr
    alone = veil(url_of(folder / "IMG_0002"), "-o", tmp_path / "alone.jpg")
    assert alone.exit_code == 2 and f"cannot read {url_of(folder / 'IMG_0002')}: " in alone.stderr, alone.stderr
    assert not (tmp_path / "alone.jpg").exists()


def test_a_file_missing_at_a_url_is_said_not_found_not_named_twice(memory):
    """fsspec's HTTPS and memory backends raise FileNotFoundError(url) for a 404 or a missing key: a
    file an HTTPS folder's listing named and its server answered with a 404 failed as "cannot read
    URL: URL", no reason. (aiohttp, which https:// needs, is not among veil's dependencies: the
    memory backend raises the same.)"""
    with pytest.raises(RemoteError) as raised, Url.parse("memory://in/gone.jpg").open():
        pass
    assert str(raised.value) == "cannot read memory://in/gone.jpg: not found"
    assert raised.value.reason == "not found"


def listed_without_opening(named: Path | Url, pipe: Path) -> tuple[list[Input], list[Skipped]]:
    """collect_inputs([named]) in a thread, watched: should it open `pipe` to read it (a pipe's open
    waits for a writer for ever), the pipe is opened for writing to let it go, and the test fails."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    listing = pool.submit(collect_inputs, [named])
    pool.shutdown(wait=False)
    deadline = time.monotonic() + DEADLINE_S  # (a guard against another hang, not a timing)
    while not listing.done() and time.monotonic() < deadline:
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))  # opens only while a reader has the pipe open
        except OSError:  # ENXIO: no reader
            concurrent.futures.wait([listing], timeout=0.05)
            continue
        concurrent.futures.wait([listing], timeout=DEADLINE_S)
        pytest.fail(f"listing {named} opened the pipe {pipe} to read it")
    return listing.result(timeout=0)


def test_a_pipe_in_a_folder_at_a_url_is_skipped_never_opened(shared_data, tmp_path, monkeypatch):
    """A pipe (a FIFO) in a folder named by file:// URL, or by any protocol whose backend lists it,
    was opened to read its kind: the open waits for a writer, and veil waited for ever (by path it was
    skipped). fsspec's DirFileSystem (dir://) is a backend veil knows nothing of, over local files."""
    folder = tmp_path / "in"
    copy_in(shared_data, TWO_PEOPLE, folder)
    os.mkfifo(folder / "pipe.jpg")
    monkeypatch.setitem(fsspec.config.conf, "dir", {"path": str(tmp_path), "target_protocol": "file"})
    for named in (folder, Url.parse(url_of(folder)), Url.parse("dir://in")):
        inputs, skipped = listed_without_opening(named, folder / "pipe.jpg")
        assert [i.source.name for i in inputs] == ["two_people.jpg"], named
        assert [(s.path.name, s.reason, s.unreadable) for s in skipped] == [("pipe.jpg", "not a regular file", False)]


def test_a_file_url_folder_is_listed_as_its_path_is(shared_data, tmp_path):
    """Listed through fsspec, a link to a folder in a file:// folder was taken for a file and failed
    ("Is a directory", exit 1), where by path a folder is searched once through its link and a loop is
    said; a link that leads nowhere failed, where by path it is skipped."""
    folder = tmp_path / "in"
    copy_in(shared_data, TWO_PEOPLE, folder)
    copy_in(shared_data, KIT_WITH_ROSE, tmp_path / "elsewhere")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")
    (folder / "elsewhere").symlink_to(tmp_path / "elsewhere")
    (folder / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
    runs = []
    for n, named in enumerate((str(folder), url_of(folder))):
        result = veil(named, "--output-dir", tmp_path / f"out{n}", "--jobs", 1, "--json")
        summary = json.loads(result.stdout)
        assert result.exit_code == 0, result.stdout
        runs.append((sorted((s["path"].removeprefix(named), s["reason"]) for s in summary["skipped_files"]),
                     sorted(str(r["input"]).removeprefix(named) for r in summary["results"]),
                     sorted(str(p.relative_to(tmp_path / f"out{n}")) for p in (tmp_path / f"out{n}").rglob("*.jpg"))))
    loop = "a folder already searched (reached again through a symbolic link)"
    assert runs[0] == runs[1] == (
        [("/gone.jpg", "not a regular file"), ("/sub/up", loop)],
        ["/elsewhere/kit_with_rose.jpg", "/two_people.jpg"], ["elsewhere/kit_with_rose.jpg", "two_people.jpg"]), runs

def test_a_url_through_an_fsspec_cache_is_refused_before_anything_is_copied(shared_data, tmp_path, monkeypatch):
    """fsspec's caches (simplecache::, filecache::, blockcache::) keep their copies of the files in
    a folder of their own in the temp folder: a killed run left its unredacted inputs there, and no
    later run removed or mentioned them. Such a URL, input or output, is refused before any file is
    read or written."""
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    temp, out = tmp_path / "tmp", tmp_path / "out"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    for cache, command in (("simplecache", (f"simplecache::{url_of(tmp_path / 'in')}", "--output-dir", out)),
                           ("filecache", (f"filecache::{url_of(source)}", "-o", out / "a.jpg")),
                           ("blockcache", (tmp_path / "in", "--output-dir", f"blockcache::{url_of(out)}")),
                           ("cached", (source, "-o", f"cached::{url_of(out / 'a.jpg')}")),
                           # (further along a chain: it was let through, its cache made)
                           ("simplecache", (f"zip://a.jpg::simplecache::{url_of(tmp_path / 'in.zip')}", "-o", out / "a.jpg"))):
        result = run_veil(*command)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert f"{cache}::file://" in lines[0] and f"name the URL without {cache}::" in lines[0]
    assert not out.exists() and list(temp.iterdir()) == []


def test_a_file_url_s_host_is_this_machine_or_refused_and_chains_are_refused(shared_data, tmp_path, monkeypatch):
    """file://localhost/abs/out.jpg was written to ./localhost/abs/out.jpg, and file://otherhost/...
    under the current folder too, exit 0; a zip member's output was named after its archive."""
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out" / "a.jpg"
    assert veil(f"file://localhost{source}", "-o", f"file://LOCALHOST{out}").exit_code == 0
    assert out.is_file() and not (tmp_path / "localhost").exists() and not (tmp_path / "LOCALHOST").exists()
    for named, refused in (((source, "-o", f"file://otherhost{tmp_path}/b.jpg"), f"file://otherhost{tmp_path}/b.jpg"),
                           ((f"local://otherhost{source}", "-o", tmp_path / "b.jpg"), "local:// names a host"),
                           ((f"zip://a.jpg::{url_of(tmp_path / 'in.zip')}", "-o", tmp_path / "b.jpg"),
                            "chained URLs (an archive's member, zip://a.jpg::...) are not taken"),
                           (("file://localhost",), "file://localhost: names no path")):
        result = run_veil(*named)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and refused in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    # A name holding "::" is no chain (fsspec cannot reach it by URL either: its path is named).
    odd = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in", "a::b.jpg")
    said = veil(f"file://{odd}", "-o", tmp_path / "out" / "odd.jpg").output
    assert "chained" not in said and f"file://{odd}: no such file" in said, said


def test_an_output_folder_inside_the_input_is_passed_over_however_it_is_spelled(shared_data, tmp_path):
    copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    for source, output in ((tmp_path / "in", url_of(tmp_path / "in" / "out1")),
                           (url_of(tmp_path / "in"), tmp_path / "in" / "out2")):
        for _ in range(2):  # the second run finds the first one's outputs inside its input folder
            result = veil(source, "--output-dir", output, "--jobs", 1, "--manifest", tmp_path / f"{output}"[-4:])
            assert result.exit_code == 0, result.stderr
        assert "veil's output folder" in result.stderr and "already done" in result.stderr
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["out1", "out2", "two_people.jpg"]
    assert not (tmp_path / "in" / "out1" / "out1").exists() and not (tmp_path / "in" / "out2" / "out2").exists()


def test_a_heic_without_its_primary_image_at_a_url_is_refused_as_a_damaged_photo(shared_data, tmp_path, memory):
    """Read in blocks from a URL, a HEIC whose primary item is missing was taken for a video (its
    brand was read from where Pillow had left the file), written as one to `-o x.mp4`."""
    from test_photo_cli import _damaged_avif_and_tiff

    heic = next(p for p in _damaged_avif_and_tiff(shared_data, tmp_path / "made") if p.suffix == ".heic")
    memory.pipe({"/in/no_item.heic": heic.read_bytes()})
    for output in ("memory://out/x.mp4", "memory://out/x.jpg"):
        result = veil("memory://in/no_item.heic", "-o", output)
        assert result.exit_code == 1 and "video" not in result.stderr, result.stderr
    assert not memory.exists("/out")


def test_a_memory_folder_of_photos_videos_and_sound_is_redacted_in_this_process(shared_data, tmp_path, memory):
    """memory:// is a store that only this process sees: a video or a sound file in it, sent to a
    worker process like any other, was not found there."""
    two = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    clip = shared_data / "videos" / "youtube_faces" / "Aaron_Guiel5.mp4"
    speech = next((shared_data / "speech" / "librispeech_test-other").rglob("*.flac"))
    memory.pipe({"/in/two_people.jpg": two.read_bytes(), "/in/clip.mp4": clip.read_bytes(),
                 "/in/speech.flac": speech.read_bytes()})
    result = veil("memory://in/", "--output-dir", "memory://out", "--jobs", 1, "--voice", "mute",
                  "--manifest", tmp_path / "manifest.jsonl", "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(memory.find("/out")) == ["/out/clip.mp4", "/out/speech.flac", "/out/two_people.jpg"]
    with av.open(io.BytesIO(memory.cat("/out/clip.mp4"))) as written:
        assert sum(1 for _ in written.decode(video=0)) == 132


class StallingServer(http.server.ThreadingHTTPServer):
    """An https server of one folder whose answers to a read of a file past its first byte (an
    MP4's index at its end, read as its kind is looked at) send their headers, then nothing."""

    daemon_threads = True

    def __init__(self, folder: Path, certificate: Path, key: Path):
        super().__init__(("127.0.0.1", 0), StallingHandler)
        self.folder = folder
        self.stalled = threading.Event()  # a read is stalled
        self.released = threading.Event()  # the test is over
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)


class StallingHandler(http.server.BaseHTTPRequestHandler):
    server: StallingServer

    def do_HEAD(self) -> None:
        self.answer(self.server.folder.joinpath(self.path.lstrip("/")).read_bytes(), body=False)

    def do_GET(self) -> None:
        data = self.server.folder.joinpath(self.path.lstrip("/")).read_bytes()
        if self.path.startswith("/cut_") and "Range" not in self.headers:
            # An answer of no stated length, ended at half by closing the connection (HTTP/1.0's way).
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            return
        start, _, end = self.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        part = data[int(start):int(end) + 1 if end else None]
        if int(start) == 0:
            self.answer(part, status=206 if end else 200, start=0, size=len(data))
            return
        self.answer(part, body=False, status=206, start=int(start), size=len(data))
        self.server.stalled.set()
        self.server.released.wait()

    def answer(self, data: bytes, body: bool = True, status: int = 200, start: int = 0, size: int = 0) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(data) - 1}/{size}")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def stalling_https(shared_data, tmp_path) -> Iterator[tuple[StallingServer, dict[str, str]]]:
    """A `StallingServer` of a video whose index is at its end, and the environment in which veil
    trusts it. fsspec's https:// needs aiohttp, which veil's own dependencies leave out (its test
    extras install it)."""
    pytest.importorskip("aiohttp")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: it makes the server's certificate")
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(shared_data / "videos" / "youtube_faces" / "Alek_Wek1.mp4", folder / "moov_last.mp4")
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = StallingServer(folder, certificate, key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server, {"SSL_CERT_FILE": str(certificate), "TMPDIR": str(temp)}
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()


def test_a_stop_while_a_stalled_server_is_read_ends_veil_in_one_line(stalling_https, tmp_path):
    """A Ctrl-C that landed while an https:// video's kind was looked at, FFmpeg waiting on a server
    that had stalled, was lost in PyAV's read callback: tracebacks without end, and veil never
    ended. It ends as any first stop does: its one line, 130, nothing left behind."""
    server, env = stalling_https
    url = f"https://127.0.0.1:{server.server_address[1]}/moov_last.mp4"
    process = subprocess.Popen(veil_command(url, "-o", tmp_path / "out.mp4"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**environment(), **env})
    try:
        wait_until(server.stalled.is_set, process)  # (veil reads nothing else meanwhile)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=DEADLINE_S)  # (before: never)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGINT, err
    assert len(err.splitlines()) == 1 and err.startswith("veil: stopped (SIGINT); no partial output was left"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem", "served", "tmp"]
    assert list(Path(env["TMPDIR"]).iterdir()) == []


def test_a_server_that_stalls_fails_its_file_with_the_reason(stalling_https, tmp_path):
    """A server that stalled mid-file held veil for five minutes (aiohttp's deadline on a whole
    request, which would also cut short a download that takes longer), then failed it as
    "FSTimeoutError". A server that sends nothing for a minute fails the file, saying so."""
    from veil.remote import STALLED_AFTER_S

    server, env = stalling_https
    url = f"https://127.0.0.1:{server.server_address[1]}/moov_last.mp4"
    result = subprocess.run(veil_command(url, "-o", tmp_path / "out.mp4"), capture_output=True, text=True,
                            env={**environment(), **env}, timeout=DEADLINE_S)
    assert result.returncode == 2 and result.stderr == (
        f"veil: cannot read {url}: the server sent nothing for {STALLED_AFTER_S} s\n"), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem", "served", "tmp"]
    assert list(Path(env["TMPDIR"]).iterdir()) == []


def test_a_download_cut_short_without_a_word_fails_its_file(stalling_https, tmp_path):
    """A server that ends an answer of no stated length at half: an MP3 of constant bit rate (no
    header stating its length) was redacted as one half as long, "ok", exit 0, its report's
    input_sha256 that of the half."""
    server, env = stalling_https
    recording = server.folder / "cut_talk.mp3"
    with av.open(str(recording), "w", options={"write_xing": "0"}) as out:
        sound = out.add_stream("libmp3lame", rate=44100, layout="mono")
        for index in range(200):  # 5.2 s
            frame = av.AudioFrame.from_ndarray(np.full((1, 1152), 0.1 * (-1) ** (index // 8), np.float32),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, index * 1152
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    url = f"https://127.0.0.1:{server.server_address[1]}/cut_talk.mp3"
    result = subprocess.run(veil_command(url, "-o", tmp_path / "out.mp3", "--voice", "mute-all"), capture_output=True,
                            text=True, env={**environment(), **env}, timeout=DEADLINE_S)
    size = recording.stat().st_size
    assert result.returncode != 0 and f"the download ended after {size // 2} of the {size} bytes the server states" \
        in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem", "served", "tmp"]
