"""veil works offline and leaves nothing behind: every process is run under strace.

A photo job, a video job and a review session each run with HOME (and every XDG folder) in an
empty folder and the temp dir in a folder of its own. The tests fail if HOME is not empty
afterwards, if any file outside the job's own folder and temp dir was created, opened for
writing, renamed or removed, or if any process tried the network: a connect, send or bind to an
address other than loopback, or any DNS attempt (port 53, or the nscd / systemd-resolved sockets,
whatever the address: systemd's stub resolver listens on 127.0.0.53). Reading /etc/resolv.conf
is not counted: reading a file sends nothing. The review server's own 127.0.0.1 socket is the
one allowed listener.
"""

from __future__ import annotations

import codecs
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed (.ci/run installs it: apt-get install strace)")

PHOTO = "metadata/metadata-extractor-images/jpg/Samsung GT-I9000 (Galaxy S).jpg"  # a face, GPS, a name with spaces
VIDEO = "videos/intel_walking_and_headpose/head-pose-face-detection-female.mp4"  # 23 frames: short under strace
LIMIT_S = 900  # a generous bound for a hung process, not a speed requirement
# onnxruntime's telemetry looks its server up once a process has run 10 s: the review session
# stays up longer than that, so a regression of that kind is seen.
REVIEW_LIFETIME_S = 12
# Name-service sockets: a connect to one is a DNS lookup done by another process on our behalf.
RESOLVER_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve")
# Kernel pseudo-files a process may write to without leaving anything behind.
DEVICE_FILES = ("/dev/null", "/dev/shm/", "/proc/self/", "/proc/thread-self/")

QUOTED = r'"((?:[^"\\]|\\.)*)"'
DIRFD = r"((?:AT_FDCWD|\d+)(?:<[^>]*>)?)"  # with -y: AT_FDCWD</cwd>, 6</some/dir>
# "PID call(args" of a call's first line; a "<... call resumed>" line carries no arguments.
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)$")
OPEN_FLAGS = re.compile(r"^(?:" + DIRFD + r", )?" + QUOTED + r", ([A-Z0-9_|]+)")
PATH_ARG = re.compile(r"(?:" + DIRFD + r", )?" + QUOTED)
WRITE_CALLS = {"creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir",
               "link", "linkat", "symlink", "symlinkat", "truncate", "mknod", "mknodat",
               "chmod", "fchmodat", "chown", "lchown", "fchownat"}
SOCKADDR = re.compile(r"sa_family=(AF_\w+)(.*?)\}")
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')
SUN_PATH = re.compile(r'sun_path=(@?)"((?:[^"\\]|\\.)*)"')


@dataclass
class Traced:
    """A command run under strace in an isolated HOME and temp dir."""

    home: Path
    tmp: Path
    work: Path
    log: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        # -y prints the path behind each fd, so openat(dirfd, "name") resolves to a full path.
        return [STRACE, "-f", "-y", "-qq", "-e", "trace=%file,%network", "-o", str(self.log),
                sys.executable, "-m", "veil", *args]


def isolated(root: Path) -> Traced:
    home, tmp, work = root / "home", root / "tmp", root / "work"
    for folder in (home, tmp, work):
        folder.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("XDG_")}
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_STATE_HOME=str(home / ".local/state"), XDG_RUNTIME_DIR=str(home / "run"),
               # The interpreter's bytecode cache beside the code is Python's, not veil's.
               PYTHONDONTWRITEBYTECODE="1")
    return Traced(home, tmp, work, root / "strace.log", env)


def unescape(text: str) -> str:
    return codecs.escape_decode(text.encode())[0].decode("utf-8", "replace")


def resolve(dirfd: str | None, path: str, cwd: Path) -> str:
    """An absolute path for a path argument, using the dir fd's path strace printed with -y."""
    if path.startswith("/"):
        return path
    if dirfd and "<" in dirfd:
        return dirfd[dirfd.index("<") + 1 : -1] + "/" + path
    return str(cwd / path)


def written_paths(log: Path, cwd: Path, calls: set[str] | None = None) -> list[str]:
    """Every path a traced process created, opened for writing, renamed or removed (tried or done);
    or only those that `calls` (mkdir, say) made."""
    paths = []
    for line in log.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        call, args = match.group(2), match.group(3)
        if calls is not None and call not in calls:
            continue
        if call in ("open", "openat", "openat2"):
            opened = OPEN_FLAGS.match(args)
            if opened and re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", opened.group(3)):
                paths.append(resolve(opened.group(1), unescape(opened.group(2)), cwd))
        elif call in WRITE_CALLS:
            paths += [resolve(dirfd, unescape(path), cwd) for dirfd, path in PATH_ARG.findall(args)]
    return paths


def outside(paths: list[str], allowed: list[Path]) -> list[str]:
    roots = [str(folder.resolve()) + "/" for folder in allowed]
    return sorted({p for p in paths
                   if not any((p + "/").startswith(root) for root in roots)
                   and not any(p == d or p.startswith(d) for d in DEVICE_FILES)})


def network_attempts(log: Path, server_port: int | None = None) -> list[str]:
    """Each connect/send/bind to anything but loopback, and each DNS attempt, as its strace line."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if not match or match.group(2) not in (
                "connect", "sendto", "sendmsg", "sendmmsg", "bind"):
            continue
        if any(not allowed_address(family, rest, match.group(2), server_port)
               for family, rest in SOCKADDR.findall(match.group(3))):
            found.append(line)
    return found


def allowed_address(family: str, sockaddr: str, call: str, server_port: int | None) -> bool:
    if family == "AF_UNIX":
        path = SUN_PATH.search(sockaddr)
        return path is None or unescape(path.group(2)) not in RESOLVER_SOCKETS
    if family == "AF_NETLINK":  # the kernel itself (interface lists), not the network
        return True
    if family not in ("AF_INET", "AF_INET6"):
        return False
    port, address = PORT.search(sockaddr), ADDRESS.search(sockaddr)
    if port is None or address is None or int(port.group(1)) == 53:
        return False
    if not ipaddress.ip_address(address.group(1) or address.group(2)).is_loopback:
        return False
    # On loopback, only the review server's own socket: nothing else should be listening for veil.
    return call == "bind" or (server_port is not None and int(port.group(1)) == server_port)


def assert_clean(run: Traced, server_port: int | None = None) -> None:
    """All three checks at once, so one failure does not hide another."""
    problems = []
    leftovers = sorted(str(p.relative_to(run.home)) for p in run.home.rglob("*"))
    if leftovers:
        problems.append(f"files left in HOME: {leftovers}")
    stray = outside(written_paths(run.log, run.work), [run.work, run.tmp])
    if stray:
        problems.append(f"written outside the job's folder and temp dir: {stray}")
    problems += [f"network or DNS attempt: {line}" for line in network_attempts(run.log, server_port)]
    assert not problems, "\n".join(problems)


def run_traced(run: Traced, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(run.command(*args), env=run.env, cwd=run.work, capture_output=True, text=True,
                            timeout=LIMIT_S)
    assert result.returncode == 0, result.stderr
    return result


def test_photo_job_stays_offline_and_leaves_nothing_behind(shared_data: Path, tmp_path: Path) -> None:
    run = isolated(tmp_path)
    output = run.work / "out" / "public.jpg"
    output.parent.mkdir()
    run_traced(run, str(shared_data / PHOTO), "-o", str(output), "--save-plan", str(run.work / "plan.json"),
               "--report", str(run.work / "report.json"))
    assert output.is_file() and (run.work / "report.json").is_file()
    assert_clean(run)


def test_video_job_stays_offline_and_leaves_nothing_behind(shared_data: Path, tmp_path: Path) -> None:
    run = isolated(tmp_path)
    output = run.work / "public.mp4"
    run_traced(run, str(shared_data / VIDEO), "-o", str(output))
    assert output.is_file()
    assert_clean(run)


def test_a_local_cluster_makes_no_folder_in_the_temp_folder_but_veils(shared_data: Path, tmp_path: Path) -> None:
    # Given the run's TLS key in memory, Dask wrote it into a new tmpXXXXXXXX folder in the temp
    # folder at each connection: a process stopped meanwhile left that folder, key and all, where
    # no run looks (veil's own are veil-*, marked, removed by the next run when one is left).
    run = isolated(tmp_path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copyfile(shared_data / PHOTO, run.work / name)
    run_traced(run, str(run.work), "--output-dir", str(run.work / "out"), "--cluster", "local:2")
    made = {Path(path).relative_to(run.tmp).parts[0] for path in written_paths(run.log, run.work, {"mkdir", "mkdirat"})
            if Path(path).is_relative_to(run.tmp) and Path(path) != run.tmp}
    assert made and all(name.startswith("veil-") for name in made), made
    assert list(run.tmp.iterdir()) == [] and list(run.home.rglob("*")) == []


def test_review_session_serves_only_loopback_and_leaves_nothing_behind(shared_data: Path, tmp_path: Path) -> None:
    run = isolated(tmp_path)
    photo = run.work / "photo.jpg"
    shutil.copyfile(shared_data / PHOTO, photo)
    started = time.monotonic()
    process = subprocess.Popen(run.command("review", str(photo), "--no-browser"), env=run.env, cwd=run.work,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url = read_review_url(process)
        page = fetch(url)
        assert b"<html" in page.lower()
        time.sleep(max(0.0, REVIEW_LIFETIME_S - (time.monotonic() - started)))
        stop_traced_child(process)
        process.wait(timeout=LIMIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    port = int(re.search(r"127\.0\.0\.1:(\d+)/", url).group(1))
    assert_clean(run, server_port=port)


def read_review_url(process: subprocess.Popen) -> str:
    """The address the server prints once it is ready (detection runs first)."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        match = re.search(r"review page[^:]*: (http://127\.0\.0\.1:\d+/\S*)", line)
        if match:
            return match.group(1)
    raise AssertionError("the review server exited without printing its address:\n" + "".join(lines))


def stop_traced_child(process: subprocess.Popen) -> None:
    """Ctrl+C for the server itself (strace's child), so it shuts down as a user would stop it."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert children, "strace has no child process"
    os.kill(int(children[0]), signal.SIGINT)


def fetch(url: str) -> bytes:
    """The page at `url`, and on to the page it leads to (a meta refresh) as a browser goes, retried
    while the server that printed its address is not yet accepting."""
    # No proxy: the page must come straight from the local server. Cookies: the server moves the
    # code from the address into a cookie, on a page that leads on to the review's.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor())
    deadline = time.monotonic() + LIMIT_S
    page = b""
    while url:
        while True:
            try:
                with opener.open(url, timeout=LIMIT_S) as response:
                    page = response.read()
                    break
            except urllib.error.URLError as error:
                if not isinstance(error.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        refresh = re.search(rb'http-equiv="refresh" content="0;url=([^"]+)"', page)
        url = urllib.parse.urljoin(url, refresh[1].decode()) if refresh else ""
    return page


def test_checker_catches_what_onnxruntime_telemetry_did(tmp_path: Path) -> None:
    """The strace parsing on lines recorded from onnxruntime 1.32 without ORT_DISABLE_TELEMETRY."""
    log = tmp_path / "strace.log"
    log.write_text(
        '15916 mkdir("/home/u/.cache/Microsoft", 0700) = 0\n'
        '15916 openat(AT_FDCWD</work>, "/home/u/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db",'
        ' O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0644) = 3</home/u/x.db>\n'
        '15916 openat(6</home/u/.cache/Microsoft/DeveloperTools/.onnxruntime>, "deviceid.tmp.96466338",'
        ' O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600 <unfinished ...>\n'
        '15916 openat(AT_FDCWD</work>, "/work/photo.jpg", O_RDONLY|O_CLOEXEC) = 3</work/photo.jpg>\n'
        '15916 openat(AT_FDCWD</work>, "out.jpg", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</work/out.jpg>\n'
        '15977 connect(8<socket:[1]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110 <unfinished ...>\n'
        '15978 connect(9<socket:[2]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0\n'
        '15979 connect(9<socket:[3]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0),'
        ' inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = 0\n'
        '15980 bind(3<socket:[4]>, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        '15981 connect(5<socket:[5]>, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
    )
    written = outside(written_paths(log, Path("/work")), [Path("/work")])
    assert written == ["/home/u/.cache/Microsoft", "/home/u/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid.tmp.96466338",
                       "/home/u/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db"]
    attempts = [line.split()[0] for line in network_attempts(log, server_port=9000)]
    assert attempts == ["15977", "15978", "15979", "15981"]
    assert [line.split()[0] for line in network_attempts(log, server_port=8000)] == ["15977", "15978", "15979"]


def test_no_dependency_exports_telemetry_where_the_environment_asks() -> None:
    """FastAPI configures OpenTelemetry exporters by itself where the environment asks for them
    (FASTAPI_OTEL_AUTO_CONFIGURE, OTEL_EXPORTER_OTLP_ENDPOINT): the review server's requests would
    go to a host the user never named to veil. Importing veil turns that off, and any OTel SDK."""
    env = {**os.environ, "FASTAPI_OTEL_AUTO_CONFIGURE": "true", "OTEL_SDK_DISABLED": "false",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    probe = ("import os, veil.review.app\nfrom fastapi import FastAPI\n"
             "print(getattr(FastAPI(), '_telemetry', {}).get('auto_configure', False), os.environ['OTEL_SDK_DISABLED'])")
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.split() == ["False", "true"], run.stderr


def test_onnxruntime_imported_before_veil_is_warned_of() -> None:
    """A library caller that imported onnxruntime first has its telemetry on for good (it reads the
    environment once): veil's offline promise does not hold there, and it said nothing."""
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    for first, warned in (("import onnxruntime, veil", True), ("import veil, onnxruntime", False)):
        run = subprocess.run([sys.executable, "-W", "always", "-c", first], env=env, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0 and ("onnxruntime was imported before veil" in run.stderr) == warned, run.stderr
