"""Inputs and outputs named by fsspec URLs (s3://bucket/in/, memory://, file://...).

A URL is anything written `protocol://...`; the protocol is served by whichever fsspec
backend is installed (s3fs, gcsfs, adlfs are the user's to install). veil never decodes or
encodes over the network: the worker that takes a file fetches it into a private temporary
folder, the unchanged pipeline redacts that copy, and the finished output is uploaded
(veil.pipeline). fsspec is imported only by runs that name a URL, so local runs pay nothing.

Backends raise their own exception types (botocore's, aiohttp's...): every call into fsspec
turns whatever it raises into a RemoteError, one line naming the URL and the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from veil.interrupt import listed_temporary
from veil.names import URL_PATTERN, partial_affixes, real_path, shown

# Object stores make an upload visible only once it is complete (S3, GCS and Azure commit it at
# the end), and a "rename" there is a second full copy: one put is the atomic write.
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}
# Protocols that carry the files (and often the password) in the clear: refused, since anyone on
# the path would see the unredacted media.
PLAIN_TEXT = {"ftp", "http"}
# Protocols naming this machine's own files: file:///x/a.jpg is the path /x/a.jpg.
LOCAL = {"file", "local"}
# An https server that sends nothing for this long (its answer, or the next bytes of a file) fails
# that file, with the reason: aiohttp waits on a stalled server for five minutes in all, and would
# cut a download that takes longer than that short just the same.
STALLED_AFTER_S = 60
# What an OSError that names only its file (FileNotFoundError(url)) means.
OS_ERROR_REASONS: dict[type[OSError], str] = {
    FileNotFoundError: "not found", PermissionError: "permission denied", IsADirectoryError: "a folder, not a file",
    NotADirectoryError: "not a folder"}
# Bytes fetched per read: a file's kind needs its headers (and an MP4's index, often at the
# end), not all of it.
BLOCK = 1 << 20


class RemoteError(ValueError):
    """A URL that cannot be reached, listed, read or written; the message names it and says why,
    and `reason` says why alone (for a line that names the URL already)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def is_url(text: str) -> bool:
    return URL_PATTERN.match(text) is not None


# fsspec backends whose URLs name a repository and a revision as org:repo@ref, not a password.
REPOSITORY_PROTOCOLS = {"github", "git"}
# fsspec backends whose URLs name a container or bucket before the "@" (adlfs's
# abfs://container@account.dfs.core.windows.net/, ocifs's oci://bucket@namespace/): no user and
# no secret, unless a password follows it.
CONTAINER_PROTOCOLS = {"abfs", "abfss", "az", "oci"}
# Where a URL is recorded (a plan's, a report's and an output folder's manifest's record of its
# input or output, the outputs' names), secrets in it would go with it.
RECORDED = "which veil records with it (in the plan, the report and the output folder's manifest)"
# Where credentials go instead: every backend reads its options from fsspec's configuration
# (FSSPEC_HTTPS='{"headers": {"Authorization": "Bearer ..."}}', FSSPEC_SFTP_USERNAME=...).
CREDENTIALS_ELSEWHERE = ("give credentials to the backend instead: fsspec's FSSPEC_<PROTOCOL>_<OPTION> environment "
                         "variables or ~/.config/fsspec, or the backend's own configuration")


def _refuse_secrets(protocol: str, rest: str) -> None:
    """A URL holding a user part (user@host, user:password@host: a bare user is how GitHub and
    GitLab tokens are given), or a query string or fragment (https://host/a.jpg?... or #..., where
    a signed URL carries its signature and webhdfs its delegation token), refused, said without them."""
    kind = protocol.lower()
    authority = re.split("[/?#]", rest, maxsplit=1)[0]  # (RFC 3986: a query or fragment ends it too)
    user, at, host = authority.rpartition("@")
    names_a_place = kind in REPOSITORY_PROTOCOLS or (kind in CONTAINER_PROTOCOLS and ":" not in user)
    path = re.split("[?#]", rest[len(authority):], maxsplit=1)[0]
    said = f"{protocol}://{'***@' if at and not names_a_place else user + at}{host}{path}"
    if at and not names_a_place:
        raise RemoteError(f"{shown(said)}: a user name, token or password in a URL is a secret {RECORDED}: "
                          f"{CREDENTIALS_ELSEWHERE}")
    # A local file's name may hold "?" or "#": no server reads it.
    if kind not in LOCAL and (mark := re.search("[?#]", rest)):
        raise RemoteError(f"{shown(said)}{mark[0]}...: a URL's query string or fragment often holds a signature or "
                          f"token, {RECORDED}, and would name its output: {CREDENTIALS_ELSEWHERE}, or download "
                          "the file first and name it by its path")


@dataclass(frozen=True)
class Url:
    """A file or folder named by URL, named like a path: `name`, `parent`, `/`, `relative_to`."""

    protocol: str
    path: PurePosixPath  # what follows "://" (a bucket and key, or /an/absolute/path)

    @classmethod
    def parse(cls, text: str) -> Url:
        """The URL `text`, refused at once when no installed backend serves its protocol."""
        protocol, _, rest = text.partition("://")
        # Every URL and protocol of a chain, wherever it stands (zip://a.jpg::simplecache::s3://b/a.zip)
        pieces = text.split("::")
        for piece in pieces:
            if "://" in piece:
                _refuse_secrets(*piece.split("://", 1))
        chained = [piece.partition("://")[0] for piece in pieces]
        if plain := next((p for p in chained if p.lower() in PLAIN_TEXT), None):
            raise RemoteError(f"{shown(text)}: {plain}:// sends the media over the network unencrypted "
                              "(use sftp:// or https://, or a local copy)")
        if cache := caching_protocol("::".join(chained)):
            raise RemoteError(f"{shown(text)}: {cache}:: keeps copies of the files, unredacted inputs among them, in "
                              "a cache folder of fsspec's that a killed run leaves behind and no veil run removes "
                              "(veil fetches each file into a temporary folder of its own anyway): name the URL "
                              f"without {cache}::")
        if any("://" in piece for piece in pieces[1:]):
            # A chain's path is read as one path: outputs were named after the archive (two of its
            # members one output) and written where no one asked.
            raise RemoteError(f"{shown(text)}: chained URLs (an archive's member, zip://a.jpg::...) are not taken: "
                              "extract the files first")
        if protocol.lower() in LOCAL:
            host = rest.partition("/")[0]
            if host.lower() == "localhost":  # RFC 8089: file://localhost/path is file:///path
                rest = rest[len(host):]
            elif host:  # taken as a folder of that name here, it wrote under the current folder
                raise RemoteError(f"{shown(text)}: {protocol}:// names a host ({shown(host)}): veil reads and "
                                  f"writes this machine's files only: write {protocol}:///path (three slashes) or the "
                                  "path itself")
            if not rest.startswith("/"):  # (file://localhost alone read the current folder)
                raise RemoteError(f"{shown(text)}: names no path: write {protocol}:///path (three slashes) or the "
                                  "path itself")
        url = cls(protocol, PurePosixPath(rest))
        url.filesystem()
        return url

    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def suffix(self) -> str:
        return self.path.suffix

    @property
    def parent(self) -> Url:
        return Url(self.protocol, self.path.parent)

    def __truediv__(self, part: str | PurePosixPath) -> Url:
        return Url(self.protocol, self.path / part)

    def with_name(self, name: str) -> Url:
        return Url(self.protocol, self.path.with_name(name))

    def is_relative_to(self, other: Url) -> bool:
        return self.protocol == other.protocol and self.path.is_relative_to(other.path)

    def relative_to(self, other: Url) -> PurePosixPath:
        return self.path.relative_to(other.path)

    def filesystem(self) -> tuple[Any, str]:
        """fsspec's filesystem for this URL (instances are cached by fsspec) and the path on it."""
        import fsspec.core

        with self.failures("cannot use"):
            return fsspec.core.url_to_fs(str(self), **backend_options(self.protocol))

    @contextlib.contextmanager
    def failures(self, doing: str) -> Iterator[None]:
        """Whatever fsspec or its backend raises within, as a RemoteError naming this URL."""
        try:
            yield
        except RemoteError:
            raise
        except ImportError as error:  # fsspec's "Install s3fs to access S3"
            raise RemoteError(f"cannot use {shown(self)}: {shown(str(error))}") from None
        except Exception as error:  # whatever the backend raises: see the module's docstring
            reason = str(error) or type(error).__name__
            if isinstance(error, TimeoutError) and _deadline_is_veils(self.protocol):  # (fsspec's has no words)
                reason = f"the server sent nothing for {STALLED_AFTER_S} s"
            if "Protocol not known" in reason:
                reason = f"no installed fsspec backend serves {self.protocol}://"
            elif isinstance(error, OSError) and self._names_only(reason):
                # fsspec's HTTP, memory and other backends raise FileNotFoundError(url) for a 404 or
                # a missing key: the line said the name twice and no reason.
                reason = OS_ERROR_REASONS.get(type(error), type(error).__name__)
            raise RemoteError(f"{doing} {shown(self)}: {shown(reason)}", shown(reason)) from None

    def _names_only(self, reason: str) -> bool:
        """Whether `reason` says nothing but this URL's name (or its path, as the backend spells it)."""
        left = reason.replace(str(self), "").replace(str(self.path), "")
        return not any(character.isalnum() for character in left)

    def is_file(self) -> bool:
        fs, path = self.filesystem()
        with self.failures("cannot reach"):
            return bool(fs.isfile(path))

    def is_dir(self) -> bool:
        fs, path = self.filesystem()
        with self.failures("cannot reach"):
            return bool(fs.isdir(path))

    def exists(self) -> bool:
        fs, path = self.filesystem()
        with self.failures("cannot reach"):
            return bool(fs.exists(path))

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The file for reading, fetched in blocks as it is read (for its headers, its hash)."""
        fs, path = self.filesystem()
        with self.failures("cannot read"), fs.open(path, "rb", block_size=BLOCK) as file:
            yield file

    def sha256(self) -> str:
        """SHA-256 of the file's bytes, read through (a backend's own checksum is not SHA-256)."""
        digest = hashlib.sha256()
        with self.open() as file:
            for chunk in iter(lambda: file.read(BLOCK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def walk(self, unlisted: Callable[[Url, RemoteError], None]) -> Iterator[tuple[Url, list[str], dict[str, str]]]:
        """Like os.walk, top down: each folder, its subfolders (prune them in place) and its other
        entries, each with its type as the backend gives it ("file"; "link", a symbolic link, to be
        read through; "other": a pipe, a socket, a device), sorted. A folder that cannot be listed
        is handed to `unlisted` and the walk goes on, as os.walk's onerror: one folder's failure is
        not the run's (fsspec's own walk passes over a subfolder it cannot list as an empty one,
        its files never seen nor said)."""
        fs, root = self.filesystem()
        pending: list[tuple[Url, str]] = [(self, root)]
        while pending:
            folder, path = pending.pop()
            try:
                with folder.failures("cannot list"):
                    listing = fs.ls(path, detail=True)
            except RemoteError as error:
                unlisted(folder, error)
                continue
            paths: dict[str, str] = {}
            entries: dict[str, str] = {}
            for info in listing:
                if info["name"].rstrip("/") == path.rstrip("/"):  # a backend's listing of the folder itself
                    continue
                name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                if info["type"] == "directory":
                    paths[name] = info["name"]
                else:  # (fsspec's local backend calls a link "other", as it calls a pipe)
                    entries[name] = "link" if info.get("islink") else info["type"]
            subfolders = sorted(paths)
            yield folder, subfolders, dict(sorted(entries.items()))
            pending += [(folder / name, paths[name]) for name in reversed(subfolders)]  # taken in order

    def fetch(self, local: Path) -> None:
        """Copy the file to `local`, all of it. A server that ends an answer of no stated length
        early (closing the connection) left a cut file: an MP3 cut at half read as a whole one
        half as long, redacted "ok", with the hash of bytes no copy of the original has."""
        fs, path = self.filesystem()
        with self.failures("cannot fetch"):
            fs.get_file(path, str(local))
            stated = fs.info(path).get("size")
        if stated is not None and (got := local.stat().st_size) < stated:
            reason = f"the download ended after {got} of the {stated} bytes the server states the file has"
            raise RemoteError(f"cannot fetch {shown(self)}: {reason}", reason)

    def upload(self, local: Path, overwrite: bool) -> None:
        """Put the finished file `local` here; never a partial file under this name.

        Where renaming is cheap and atomic (local and network file systems, memory), the file is
        put under a hidden temporary name beside its place and moved there; on an object store
        it is put once, which the store makes visible only when complete. Without `overwrite`,
        an object found here is not replaced (checked just before: object stores have no
        portable create-only put).
        """
        fs, path = self.filesystem()
        with self.failures("cannot upload to"):
            if not overwrite and fs.exists(path):
                raise RemoteError(f"{shown(self)} appeared while veil was writing it: use --overwrite to replace it")
            protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
            if protocols & OBJECT_STORES:
                fs.put_file(str(local), path)
                return
            prefix, suffix = partial_affixes(PurePosixPath(path))  # short enough for the file system's names
            temp = str(PurePosixPath(path).with_name(f"{prefix}{uuid.uuid4().hex[:8]}{suffix}"))
            fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)

            def remove_temp() -> None:  # gone already when the move succeeded
                if fs.exists(temp):
                    fs.rm(temp)

            with listed_temporary(f"{self.protocol}://{temp}", remove_temp):
                fs.put_file(str(local), temp)
                fs.mv(temp, path)


def backend_options(protocol: str) -> dict[str, Any]:
    """What veil adds to the options fsspec's configuration gives the backend of `protocol`: for
    https://, aiohttp's deadlines (`STALLED_AFTER_S` on each read, none on the whole), unless that
    configuration sets its own. (Other backends keep their own deadlines.)"""
    if not _deadline_is_veils(protocol):
        return {}
    try:
        import aiohttp
    except ImportError:  # fsspec says that it is needed
        return {}
    timeout = aiohttp.ClientTimeout(sock_connect=STALLED_AFTER_S, sock_read=STALLED_AFTER_S)
    return {"client_kwargs": {**_configured_client(), "timeout": timeout}}


def _configured_client() -> dict[str, Any]:
    """The options fsspec's configuration gives https://'s aiohttp session (they are fsspec's http backend's)."""
    import fsspec.config

    configured = {**fsspec.config.conf.get("http", {}), **fsspec.config.conf.get("https", {})}
    return dict(configured.get("client_kwargs") or {})


def _deadline_is_veils(protocol: str) -> bool:
    # (aiohttp refuses its old options beside `timeout`)
    return protocol.lower() == "https" and not _configured_client().keys() & {"timeout", "read_timeout", "conn_timeout"}


def caching_protocol(protocol: str) -> str | None:
    """The first of a chain's protocols (simplecache::s3) that is one of fsspec's caches (simplecache,
    filecache, blockcache, by any name fsspec registers them under), known by its class before any
    instance is made: making one already makes its folder in the system temp folder."""
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.registry import get_filesystem_class

    for name in protocol.lower().split("::"):
        with contextlib.suppress(ValueError, ImportError):  # no backend: `filesystem` says so
            if issubclass(get_filesystem_class(name), CachingFileSystem):
                return name
    return None


def location(text: str) -> Path | Url:
    """A command-line name: a URL when written protocol://..., else a local path, as ever."""
    return Url.parse(text) if is_url(text) else Path(text)


def location_key(where: Path | Url | str) -> str:
    """How the manifest names a file: a URL as written, a path resolved (however a run spells it:
    `in/a.jpg`, `../x/in/a.jpg`, file:///x/in/a.jpg, a link to its folder). A string is a key as a
    manifest recorded it."""
    if isinstance(where, str):
        protocol, _, rest = where.partition("://")
        where = Url(protocol, PurePosixPath(rest)) if is_url(where) else Path(where)
    where = as_local(where)
    return str(where) if isinstance(where, Url) else str(real_path(where))


def as_local(where: Path | Url) -> Path | Url:
    """A file:// (or local://) URL as the path it names; anything else as it is."""
    return Path(str(where.path)) if isinstance(where, Url) and where.protocol.lower() in LOCAL else where


def same_file(one: Path | Url, other: Path | Url) -> bool:
    """Whether `one` and `other` name one file however each is spelled: a file:// URL as its path,
    a path by where its links lead (where it exists), a URL by the store and path its backend takes
    it for (memory://b/x.jpg and memory:///b/x.jpg are one file)."""
    one, other = as_local(one), as_local(other)
    if isinstance(one, Path) and isinstance(other, Path):
        if not one.exists():
            return False
        # A second hard link to the file is the file too (by its device and inode).
        with contextlib.suppress(OSError):
            if os.path.samefile(one, other):
                return True
        return real_path(one) == real_path(other)
    if not (isinstance(one, Url) and isinstance(other, Url)):
        return False
    # Each store is opened by the run anyway (the input read, the output written); fsspec keeps one.
    return one == other or one.filesystem() == other.filesystem()
