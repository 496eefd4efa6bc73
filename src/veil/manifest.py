"""The run manifest: one JSON line per input, appended as each file finishes.

A run over many files can be killed at any moment; appending and flushing one record per
finished file means a crash loses at most the files still in flight. Rerunning the same
command reads the manifest back and skips every input whose record says it is done, as
long as the input and its output still hash to what the record says and the settings are
the same, as are veil's version and models (a rerun with another --mode, or an upgraded veil,
must redo everything).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import IO, Literal

from veil import __version__
from veil.batch import BatchError
from veil.models import shipped_models_sha256
from veil.names import (MANIFEST_NAME, can_name_a_file, exact_names, partial_affixes, readable_anywhere, real_path,
                        shown)
from veil.outputs import (Input, OutputError, Skipped, mode_kept_from, output_path, published_media,
                          remove_partial_outputs)
from veil.photo import file_sha256
from veil.pipeline import FileResult
from veil.remote import Url, as_local, is_url, location_key

ALREADY_DONE = "already done"

# "started": written for every file before the work begins, so that a run killed outright (SIGKILL,
# power loss) after a worker moved an output into place, but before its record, leaves the output
# known as veil's own: a rerun redoes it rather than refusing it as someone else's file.
Status = Literal["ok", "failed", "skipped", "started"]


def recorded_name(where: Path | Url) -> str:
    """A file as a record names it: a URL as written (file:// too), a path resolved. Records are
    matched by `location_key`, so a file named both ways is one file."""
    return str(where) if isinstance(where, Url) else location_key(where)


@dataclass(frozen=True)
class Record:
    """What happened to one input in one run."""

    path: str
    status: Status
    input_sha256: str | None = None
    output: str | None = None
    output_sha256: str | None = None
    regions: int = 0
    regions_by_kind: dict[str, int] | None = None  # None in records of an older veil
    seconds: float = 0.0
    worker: str | None = None
    reason: str | None = None
    settings: str | None = None  # fingerprint of the settings the output was made with
    # The output's modification time and size then: one changed since (an original copied over it)
    # differs; an output folder's file of no size recorded is no output (veil.outputs.unrecorded_media).
    output_mtime_ns: int | None = None
    output_bytes: int | None = None

    @classmethod
    def of(cls, result: FileResult, settings: str) -> Record:
        status: Status = "failed" if result.error else "skipped" if result.already_done else "ok"
        return cls(
            path=recorded_name(result.source), status=status,
            input_sha256=result.input_sha256,
            output=recorded_name(result.output) if result.output else None, output_sha256=result.output_sha256,
            output_mtime_ns=_stat(result.output, "st_mtime_ns"), output_bytes=_stat(result.output, "st_size"),
            regions=result.regions, regions_by_kind=result.by_kind, seconds=round(result.seconds, 3),
            worker=result.worker,
            reason=ALREADY_DONE if result.already_done else result.error, settings=settings,
        )

    @classmethod
    def passed_over(cls, skip: Skipped, settings: str) -> Record:
        """A file the run chose not to redact (not media, the same file twice), and why. Named as
        the run found it, not resolved: resolved, a link to an input named that input as skipped
        (beside its own "ok"), and a dangling link a path that is nowhere."""
        where = skip.path if isinstance(skip.path, Url) else skip.path.absolute()
        return cls(path=str(where), status="skipped", reason=skip.reason, settings=settings)

    @classmethod
    def started(cls, source: Path | Url, target: Path | Url, settings: str) -> Record:
        return cls(path=recorded_name(source), status="started", output=recorded_name(target), settings=settings)

    @property
    def done(self) -> bool:
        """Whether this record vouches for an output (made now, or found made by an earlier run)."""
        return self.status in ("ok", "skipped") and self.output is not None


def default_manifest(output: Path | Url | None, output_dir: Path | Url | None, first_input: Path | Url) -> Path:
    """Where a run keeps its manifest unless told: in --output-dir, else beside the (first) output.

    A manifest is appended to line by line, which object stores cannot do: for outputs named
    by URL it is kept in the current folder.
    """
    place = output_dir if output_dir is not None else (output or first_input).parent
    return Path(MANIFEST_NAME) if isinstance(place, Url) else place / MANIFEST_NAME


RECORD_START = b'{"path": '  # how json.dumps writes a record: its fields in order, `path` first
RECORD_FIELDS = {field.name for field in fields(Record)}


def appendable(path: Path) -> bool:
    """Whether records may be appended to `path`: nothing is there, an empty file, or a manifest
    (a file that starts as every record does, even one cut short by a crash)."""
    if not path.is_file():
        return True  # nothing there, or not a file (a folder, a device): opening it to append says what
    try:
        with open(path, "rb") as file:
            start = file.read(len(RECORD_START))
    except OSError:
        return True  # unreadable: opening it to append says why
    return start in (b"", RECORD_START)


def _ends_mid_line(path: Path) -> bool:
    """Whether the file's last line has no newline: a record cut short (a full disk, a power loss)."""
    try:
        with open(path, "rb") as file:
            file.seek(-1, os.SEEK_END)  # an empty file cannot: it ends no line
            return file.read(1) != b"\n"
    except OSError:
        return False


def read_manifest(path: Path) -> dict[str, Record]:
    """The latest record of each input that vouches for an output. A failure is not one: it
    wrote nothing (an output refused as existing, under other settings, say), so it must not hide
    an output that still stands. A missing file is an empty manifest; a line cut short by a
    crash, or one that is not a record, is ignored (that file is simply done again)."""
    return {key: record for key, record in _records(path) if record.done}


def placed_as_made(inputs: list[Input], made: dict[str, Record], output_dir: Path,
                   started: dict[str, str] | None = None) -> list[Input]:
    """The inputs, each whose output in `output_dir` the manifest records (`made`: `read_manifest`)
    and still stands there (`_still_stands`), mirrored as the run or review export that made it
    mirrored it, so that a later run keeps to the output an input already has there. A run over
    photos/ whose files all lie in photos/day1/ wrote out/day1/a.jpg, while its plan's files share
    photos/day1/ (`outputs.mirrored_bases`); a review of a.jpg alone names it out/a.jpg. Rendered
    again from the plan, or by a run, a.jpg must land on the output there (and be refused unasked),
    not beside it, where the one without a reviewer's corrections would be published with the
    other. A placed input is `recorded`: its output is claimed first, and another input whose name
    is the same is refused (a second output of the first would otherwise be written, and with
    --overwrite the reviewed one replaced). Nothing is placed on an output recorded for two inputs.
    `started`: `started_outputs`, a killed run's outputs moved into place and never recorded done,
    veil's own made from those inputs (one that is there is redone in place)."""
    folder = real_path(output_dir)
    outputs = {key: _recorded_output(record) for key, record in made.items()}  # each resolved once
    # The killed run's own, where it is there: else the input's done record stands.
    unfinished = {key: Path(output) for key, output in (started or {}).items()
                  if not is_url(output) and Path(output).is_file()}
    # How many inputs each output is recorded for (an input's done and killed outputs, if one, once).
    recorded = collections.Counter(output for key in {*outputs, *unfinished}
                                   for output in {outputs.get(key), unfinished.get(key)} if output is not None)
    if not any(output is not None and output.is_relative_to(folder) for output in recorded):
        return inputs  # a first run into the folder, say: nothing to look up
    placed = []
    for item in inputs:
        key = location_key(item.source)
        record, output = made.get(key), outputs.get(key)
        # The killed run's output first (its record is the last), then the done record's; each
        # checked to stand only once it is the name (hashing an output that changed is slow).
        kept = [*([(unfinished[key], True)] if key in unfinished else []),
                *([(output, False)] if output is not None else [])]
        for output, unrecorded in kept:
            if isinstance(item.source, Path) and output.is_relative_to(folder) and recorded[output] == 1 \
                    and (found := _placed_on(item, item.source, output, folder, output_dir)) is not None \
                    and (unrecorded or _still_stands(output, record)):
                item = found
                break
        placed.append(item)
    return placed


def _placed_on(item: Input, given: Path, output: Path, folder: Path, output_dir: Path) -> Input | None:
    """`item` (its source the path `given`) named so that its output is `output` (resolved, inside
    `folder`, the output folder resolved), as `recorded`; None where no spelling of it gives that name."""
    mirrored = output.relative_to(folder).parent.parts
    # Named as given where that name holds the folders to mirror (`in/day1/a.jpg`), else absolute
    # (`a.jpg`, named in in/day1/), else as its folder really is (a link to day1/), else as the file
    # it links to is named (a link of another name to in/day1/a.jpg).
    for source in (given, given.absolute(), real_path(given.parent) / given.name, real_path(given)):
        parents = source.parent.parts
        if len(mirrored) < len(parents) and parents[len(parents) - len(mirrored):] == mirrored:
            candidate = replace(item, source=source, base=Path(*parents[:len(parents) - len(mirrored)]),
                                recorded=True)
            if _named(candidate, output_dir) == output:
                return candidate
    return None


def _named(item: Input, output_dir: Path) -> Path | None:
    """The output an input's name gives it under `output_dir`, resolved (None: a URL's)."""
    if not isinstance(item.source, Path):
        return None
    try:
        return real_path(output_path(item.source, item.base, None, output_dir, item.kind or "image"))
    except (OutputError, OSError):  # no output can have that name, or its folder may not be looked in:
        return None  # said when the run names the output


def _recorded_output(record: Record) -> Path | None:
    """A record's output, resolved (an older veil's records were not), where it names a local file."""
    if record.output is None or is_url(record.output):
        return None
    return real_path(record.output)


def _still_stands(output: Path, record: Record) -> bool:
    """Whether the output a record names is still the one it made: its size and modification time
    as recorded, or else its SHA-256."""
    try:
        now = output.stat()
        if not output.is_file():
            return False
        if (now.st_size, now.st_mtime_ns) == (record.output_bytes, record.output_mtime_ns):
            return True
        return record.output_sha256 == file_sha256(output)
    except OSError:
        return False


def started_outputs(path: Path, settings: str) -> dict[str, str]:
    """Input -> output (as keys) of the files whose last record is "started" under these settings:
    the run that wrote it ended before the file's outcome, so an output there is veil's own, made
    from that input (each output is moved into place whole), never a file of someone else's."""
    last: dict[str, Record] = {}
    for key, record in _records(path):
        if record.status != "skipped" or record.output is not None:  # a file passed over is another name's
            last[key] = record
    return {key: location_key(record.output) for key, record in last.items()
            if record.status == "started" and record.settings == settings and record.output is not None}


def unrecorded_media(folders: Iterable[Path], manifests: Iterable[Path],
                     written: Iterable[Path]) -> tuple[dict[Path, list[Path]], list[Path]]:
    """Per output folder, the photo, video and sound files in it (and below it) that are not veil's
    outputs as a manifest records them, nor this run's to write: the user's own files, perhaps
    originals, left where the redacted copies are published. veil never redacts its output
    folders' files (they are its outputs), so these must be said.

    An output is known by the SHA-256 a manifest records, wherever it lies now (the folder moved,
    renamed). A file still at its recorded name with its recorded modification time is not hashed
    again; one changed since (an original copied over it) is, if an output of its size is recorded.
    The manifests read: those found in the folders, and `manifests` (one kept elsewhere). Also
    returned: the folders below them that could not be listed (what they hold went unseen)."""
    found: dict[Path, list[Path]] = {}
    seen: set[Path] = set()
    unlisted: list[OSError] = []
    manifests = list(manifests)
    for folder in folders:
        files = found.setdefault(folder, [])
        # Hidden folders too (a thumbnail cache is published with the folder), and names veil passes
        # over as its outputs' (only a manifest's hash tells an output from a user's file).
        for here, subfolders, names in os.walk(folder, onerror=unlisted.append):
            subfolders.sort()
            for name in sorted(names):
                file = Path(here, name)
                if name == MANIFEST_NAME:
                    manifests.append(file)
                elif published_media(file) and (where := real_path(file)) not in seen:
                    seen.add(where)
                    files.append(file)
    this_run = {location_key(path) for path in written}
    recorded: dict[str, int | None] = {}  # an output's name: its modification time when recorded
    hashes: set[str] = set()
    sizes: set[int | None] = set()  # None among them: a record of an older veil, which kept no size
    for manifest in manifests:
        with contextlib.suppress(OSError):
            for _, record in _records(manifest):
                if record.output is not None and record.output_sha256 is not None:
                    recorded[location_key(record.output)] = record.output_mtime_ns
                    hashes.add(record.output_sha256)
                    sizes.add(record.output_bytes)

    def veils(file: Path) -> bool:
        key = location_key(file)
        try:
            info = file.stat()
            if key in this_run or recorded.get(key) == info.st_mtime_ns:
                return True
            # Hashed only where a recorded output has its size: a folder of others' files is not read.
            return (info.st_size in sizes or None in sizes) and _sha256(file) in hashes
        except OSError:  # gone, or unreadable: not known as veil's
            return False

    return ({folder: unrecorded for folder, files in found.items() if (unrecorded := [f for f in files if not veils(f)])},
            [Path(error.filename) for error in unlisted])


def _records(path: Path) -> Iterator[tuple[str, Record]]:
    """The manifest's records in order, each with its input as this run spells it (an older veil's too)."""
    for _, record in _lines(path):
        if record is not None:
            yield location_key(record.path), record


def _lines(path: Path) -> Iterator[tuple[bytes, Record | None]]:
    """Each line of the manifest as it is, with the record it holds (None: none)."""
    if not path.is_file():
        return
    with open(path, "rb") as file:
        for line in file:
            record = _record(line)
            if record is None and line.rfind(RECORD_START) > 0:
                # A whole record after a line cut short: an earlier veil appended the next run's
                # first record onto such a line without ending it.
                record = _record(line[line.rfind(RECORD_START):])
            yield line, record


def _roles(record: Record) -> tuple[str, ...]:
    """What a record may be the latest of for its input, each a record that a rerun reads or that
    says what happened to the file: its latest record of any kind (what the last run did), the
    latest that vouches for an output (`read_manifest`), the latest that is not a file passed over
    (`started_outputs`), and the latest of the run that made an output (its worker and time)."""
    return ("latest",
            *(("vouches",) if record.done else ()),
            *(("outcome",) if record.status != "skipped" or record.output is not None else ()),
            *(("made",) if record.status == "ok" else ()))


def _lines_kept(path: Path) -> tuple[set[int], int]:
    """The lines a compacted manifest keeps (by number): every record that is the latest of one of
    its roles for its input, and every line that holds no record (kept as it is, a last line cut
    short too); and how many lines there are. Inputs are told apart by their names as recorded, not
    as this run resolves them: a rerun that resolves two of them to one file reads the same latest
    records, and one that resolves them apart (a link since removed) still finds each its own."""
    latest: dict[tuple[str, str], int] = {}
    kept: set[int] = set()
    count = 0
    for count, (_, record) in enumerate(_lines(path), start=1):
        if record is None:
            kept.add(count - 1)
            continue
        for role in _roles(record):
            latest[record.path, role] = count - 1
    return kept | set(latest.values()), count


def _record(line: bytes) -> Record | None:
    """The record a line holds, or None where it holds none (cut short, or not a record)."""
    try:
        data = exact_names(json.loads(line.decode("utf-8")))
        record = Record(**{k: v for k, v in data.items() if k in RECORD_FIELDS})
    except (ValueError, TypeError, AttributeError, RecursionError):
        # Not UTF-8, not JSON, not an object of records' fields, or nested too deeply to read back (a
        # line edited by hand): read, it ended the whole run as "a bug in veil".
        return None
    if _name(record.path) and (record.output is None or _name(record.output)) \
            and _count(record.regions) and _counts(record.regions_by_kind):
        return record
    return None


def _name(value: object) -> bool:
    return isinstance(value, str) and can_name_a_file(value)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _counts(value: object) -> bool:
    """A record's regions per kind: kind -> count, or None (unknown: an older veil's record)."""
    return value is None or isinstance(value, dict) and all(
        isinstance(kind, str) and _count(count) for kind, count in value.items())


def settings_fingerprint(*settings: object) -> str:
    """Same settings, same veil and models, same fingerprint: a rerun skips a done file only if
    it would be made the same way (an upgraded veil or model may find what the earlier one missed)."""
    made_by = (__version__, shipped_models_sha256())
    return hashlib.sha256(repr((made_by, settings)).encode()).hexdigest()[:16]


def still_done(record: Record | None, source: Path | Url, target: Path | Url, settings: str) -> Record | None:
    """The earlier run's record for `source` if its output can stand: same settings, same input
    bytes, and the output still there with the bytes that run wrote (a URL's read through again)."""
    if (record is not None and record.done and record.settings == settings
            and record.output is not None and location_key(record.output) == location_key(target) and target.is_file()
            and record.input_sha256 == _sha256(source) and record.output_sha256 == _sha256(target)):
        return record
    return None


# The reason a record of `veil review`'s export gives (veil.review.session): its output holds a
# reviewer's corrections, which a run redoing it would not.
REVIEWED = "exported by veil review"


def made_otherwise(record: Record | None, source: Path | Url, target: Path | Url, settings: str) -> str | None:
    """How the output there, one an earlier run made from this input, is not as this run would
    make it (None where that is not known): made under other settings or by another veil or model,
    from the input as it was before it changed, or changed itself since. Asked where the record did
    not let the output stand (`still_done`): the reason a rerun refuses it, which "exists" alone
    would not tell. A URL's input is not read again to tell which of the last two it is."""
    if not (record is not None and record.done and record.output is not None
            and location_key(record.output) == location_key(target) and target.is_file()):
        return None
    if record.settings != settings:
        return "was made by an earlier run under other settings, or by another veil or model"
    local = as_local(source)
    if not isinstance(local, Path):
        return None
    try:
        changed = file_sha256(local) != record.input_sha256
    except OSError:
        return None
    return ("was made by an earlier run from this file as it was then, and the file has changed since" if changed
            else "was made by an earlier run from this file, and has been changed since")


def output_owners(made: dict[str, Record]) -> dict[str, list[str]]:
    """Each output the records `made` name, with the inputs whose records name it."""
    owners: dict[str, list[str]] = {}
    for key, record in made.items():
        if record.output is not None:
            owners.setdefault(location_key(record.output), []).append(key)
    return owners


def another_inputs_output(made: dict[str, Record], owners: dict[str, list[str]], source: Path | Url,
                          target: Path | Url) -> Record | None:
    """The done record of another input than `source` whose output the file `target` is, still as
    that run made it (`owners`: `output_owners(made)`): a run of `source` would replace it. Not
    another input: one that held `source`'s bytes (the same photo moved since, or a copy of it)."""
    target = as_local(target)
    if not isinstance(target, Path):
        return None  # (an object store's outputs are not looked at: hashing them means reading them)
    standing = [made[key] for key in owners.get(location_key(target), [])
                if key != location_key(source) and _still_stands(target, made[key])]
    if not standing or not _regular(source):  # (a pipe or a device is refused as its file: reading one never ends)
        return None
    held = _sha256(source)
    return next((record for record in standing if record.input_sha256 != held), None)


def another_inputs_refusal(other: Record, target: Path | Url, overwrite: bool) -> str | None:
    """Why this input's output may not replace `target`, the output `other` records for another
    input (`another_inputs_output`): never a review's export; another's only on --overwrite."""
    if other.reason == REVIEWED:
        return (f"{shown(target)} is the output of {shown(other.path)}, exported by veil review (the manifest says): "
                "this file's output would replace it and the reviewer's corrections with it, --overwrite or not: "
                "move it away, or write this file's output elsewhere")
    if not overwrite:
        return (f"{shown(target)} is the output of {shown(other.path)} (the manifest says): use --overwrite to "
                "replace it with this file's, or write this file's output elsewhere")
    return None


def another_inputs_replaced(other: Record, target: Path | Url, source: Path | Url) -> str:
    """The line that says `target`, the output `other` records for another input, is replaced."""
    return (f"{shown(target)}, the output of {shown(other.path)} (the manifest says), will be replaced by the "
            f"output of {shown(source)} (--overwrite)")


def _stat(output: Path | Url | None, field: str) -> int | None:
    try:
        return getattr(output.stat(), field) if isinstance(output, Path) else None
    except OSError:
        return None


def _regular(where: Path | Url) -> bool:
    """Whether `where` is a regular file (a URL's object is taken to be one)."""
    try:
        return not isinstance(where, Path) or stat.S_ISREG(where.stat().st_mode)
    except OSError:
        return False


def _sha256(where: Path | Url) -> str:
    return where.sha256() if isinstance(where, Url) else file_sha256(where)


class ManifestWriter:
    """Appends records to a manifest, each flushed to disk before the next file is reported.

    A writer holds an exclusive lock on the manifest from its opening to its close: a rerun takes
    the `started` records of a run that ended before their outcome for a crashed run's, and
    replaces their outputs, so a second run into the same manifest while the first still works
    would replace the first's outputs unseen. The lock is flock(2) on the manifest itself, not a
    lock file beside it: nothing more is left in the output folder, and the system releases it
    when the process ends however it ends (SIGKILL, power loss), so a crashed run never blocks
    the next (nor do veil's workers hold it: they are spawned, and inherit no open file).
    """

    def __init__(self, path: Path, stopped: str = "the run stopped",
                 elsewhere: str = "use another --output-dir (or --manifest)"):
        self.path = path
        # Said when a record cannot be written (what stopped), and when another run holds the
        # manifest (where else to write): a review's export is not a run, nor does it take --manifest.
        self.stopped, self.elsewhere = stopped, elsewhere
        # Opened at once, so that a manifest that cannot be written stops the run before any work;
        # what this made is removed at the close if nothing was recorded (a run refused, say).
        self.made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
        self.records = 0
        self.removed = False  # `close` took away the file it made, holding no record
        self.unlocked: str | None = None  # why the manifest could not be locked, where it could not
        if not appendable(path):
            # Records appended to someone's photo or notes would change a file veil was not asked
            # to write.
            raise BatchError(f"{shown(path)} is not a veil manifest (its first line is not a record): "
                             "name a new file, or an earlier run's manifest, for --manifest")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made_file, self.file = self._open_locked()
        except OSError as error:
            raise self._failed(error) from None
        if self.unlocked is None:  # rewritten only where no other run can be reading or writing it
            self._compact()
        # The next record goes on a line of its own: appended onto a line cut short, it would be
        # read as part of that line, and lost with it. (Judged once the lock is held: no other run
        # is writing the last line now.)
        self.mid_line = _ends_mid_line(path)

    def _open_locked(self) -> tuple[bool, IO[str]]:
        """The manifest opened to append, locked; and whether this made it."""
        while True:
            made = not self.path.exists()
            file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held until close()
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(file)
                file.close()
                raise BatchError(f"another veil run{f' (pid {holder})' if holder else ''} is writing to "
                                 f"{shown(self.path)}: wait for it to end, or {self.elsewhere}") from None
            except OSError as error:  # a file system without locks: the run goes on, and says so
                self.unlocked = error.strerror or str(error)
                return made, file
            if _same_file(file, self.path):
                return made, file
            # The run that held it removed it meanwhile (it recorded nothing): lock the one there now.
            file.close()

    def _compact(self) -> None:
        """Rewrite the manifest with only the records a rerun reads or that say what last happened
        to each input (`_lines_kept`), where that at least halves it: every rerun appends a record
        per file, and a manifest that each run reads whole grew without end. The rewrite is a new
        file, locked before it is moved into place (a run opening the manifest meanwhile finds it
        held), so a crash leaves the old manifest whole, and its unfinished copy for the next
        compaction to remove. A manifest that cannot be rewritten is left as it is, all its records
        standing."""
        held = os.fstat(self.file.fileno())
        if not stat.S_ISREG(held.st_mode) or held.st_nlink != 1 or self.path.is_symlink():
            # Moved over, a device (--manifest /dev/full) would be replaced by a file; a link, or a
            # file with another name, would part from the name that kept the old records.
            return
        remove_partial_outputs(self.path)
        kept, count = _lines_kept(self.path)
        if not count or len(kept) * 2 > count:
            return
        prefix, suffix = partial_affixes(self.path)
        replacement: IO[str] | None = None
        try:
            handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=self.path.parent)
        except OSError:
            return
        try:
            with open(handle, "wb") as compacted:
                compacted.writelines(line for number, (line, _) in enumerate(_lines(self.path)) if number in kept)
                # Its owner's and group's still, as its mode: one run as root (or by another of its
                # group) would leave the manifest a file its owner's next run cannot append to. A
                # manifest whose owner this run cannot give (another user's) is left as it is.
                os.fchown(compacted.fileno(), held.st_uid, held.st_gid)
                os.fchmod(compacted.fileno(), stat.S_IMODE(held.st_mode))
                compacted.flush()
                os.fsync(compacted.fileno())
            replacement = open(temporary, "a", encoding="utf-8")  # noqa: SIM115 - held until close()
            fcntl.flock(replacement, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(temporary, self.path)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if replacement is not None:
                replacement.close()
            if isinstance(error, OSError):
                return
            raise
        _sync_folder(self.path.parent)
        self.file.close()  # the old manifest's lock: the new one is held already
        self.file = replacement

    def append(self, *records: Record) -> None:
        """The records, on disk before this returns."""
        self.records += sum(record.status != "started" for record in records)  # files' outcomes
        lines = "".join(json.dumps(readable_anywhere(asdict(record))) + "\n" for record in records)
        try:
            if os.fstat(self.file.fileno()).st_nlink == 0:
                # Removed (its output folder deleted mid-run): records kept in a file no name leads
                # to are lost with the run, and a rerun took its outputs for the user's own files.
                raise OSError(errno.ENOENT, "it was removed during the run")
            if not _same_file(self.file, self.path):
                # Moved (its output folder renamed, the manifest taken out to publish the folder):
                # the rest would be recorded in a file the folder no longer holds, its outputs
                # written into a folder made afresh, and its lock guard the file moved, not the folder.
                raise OSError(errno.ENOENT, "it was moved during the run")
            self._narrow_mode(records)
            self.file.write("\n" + lines if self.mid_line else lines)
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as error:
            raise self._failed(error) from None
        self.mid_line = False

    def _narrow_mode(self, records: Sequence[Record]) -> None:
        """Readable by no more users than each recorded input is (`mode_kept_from`), before the
        record naming it and its hash is written: a run of private photos among public ones, or a
        later run's, must not be listed for every user of the machine."""
        held = stat.S_IMODE(os.fstat(self.file.fileno()).st_mode)
        narrowed = held & (mode_kept_from(record.path for record in records) | 0o7111)
        if narrowed != held:
            os.fchmod(self.file.fileno(), narrowed)

    def _failed(self, error: OSError) -> BatchError:
        # Without its record a finished file would be done again by a rerun, and the run could not
        # say what it did: it stops (outputs already written are whole, each written atomically).
        written = ("outputs already written are complete" if self.records else
                   "no output was written")
        return BatchError(f"cannot write the manifest {shown(self.path)} ({error.strerror or error}): "
                          f"{self.stopped}; {written}")

    def close(self) -> None:
        # What this made is removed while still locked: a run that opened it meanwhile finds it
        # gone once it has the lock, and makes its own (`_open_locked`).
        with contextlib.suppress(OSError):
            if not self.records and self.made_file:
                self.path.unlink()
                self.removed = True
                for folder in self.made:  # deepest first
                    folder.rmdir()
        # Every record was flushed as it was appended, and a failure raised there: what a close
        # could still fail on is the line that already failed. Closing releases the lock.
        with contextlib.suppress(OSError):
            self.file.close()


def _sync_folder(folder: Path) -> None:
    """The folder's entries on disk (a rename is in the folder, not in the file)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _same_file(file: IO[str], path: Path) -> bool:
    """Whether the open `file` is still the one at `path`."""
    try:
        return os.path.samestat(os.fstat(file.fileno()), os.stat(path))
    except OSError:  # removed
        return False


def _lock_holder(file: IO[str]) -> int | None:
    """The process holding the flock on `file`, where the system says (Linux lists each lock,
    with its process and file, in /proc/locks); None elsewhere."""
    status = os.fstat(file.fileno())
    locked = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:  # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146761 0 EOF" (a waiter's has "->")
                words = line.split()
                if "FLOCK" in words and "->" not in words and locked in words:
                    return int(words[words.index(locked) - 1])
    except (OSError, ValueError):
        pass
    return None


# What each of a run's own files says of the originals, which the folder of redacted copies must not.
NAMED_IN = {"manifest": "every input's path, the machine that redacted it and the original's SHA-256",
            "report": "every input's path and the original's SHA-256",
            "plan": "every input's path and the original's SHA-256"}


def leave_out_note(kind: str, path: Path, folder: Path, elsewhere: str) -> str:
    """Advice where a run's `kind` of file (NAMED_IN) lies in `folder`, the folder of redacted
    copies, the one to publish. `elsewhere`: how to keep it out."""
    return (f"the {kind} {shown(path)} names {NAMED_IN[kind]}: leave it out when you publish {shown(folder)} "
            f"({elsewhere})")
