"""The `veil` command: media in -> detect (+ track) -> plan -> render -> media out, + report.

`veil review PATH...` starts the review application instead (veil.review). The command starts in
veil.cli, which readies the process before this module's imports.

Everything that can be refused without looking at pixels is refused before any detection
runs: an existing output, plan or report (unless --overwrite), a place that cannot be
written, a container that cannot hold the media. No Python traceback reaches the user: an
unexpected error is one line naming the file, and the exit code is 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from veil import __version__
from veil.batch import BatchError, Task, Workers, run_all
from veil.detect import PROFILES
from veil.manifest import (REVIEWED, ManifestWriter, Record, another_inputs_output, another_inputs_refusal,
                           another_inputs_replaced, default_manifest, made_otherwise, output_owners, placed_as_made,
                           leave_out_note, read_manifest, settings_fingerprint, started_outputs, still_done,
                           unrecorded_media)
from veil.models import usable_cores
from veil.interrupt import (STOP_SIGNALS, Stopped, answer_stops_in_json, ignore_stops, remove_leftovers, said_at_stop,
                            say_at_stop, say_what_dead_runs_left, unusable_temp_folder)
from veil.kinds import counted
from veil.names import MANIFEST_NAME, dated_names_note, published_name, readable_anywhere, real_path, shown
from veil.options import (AccurateOption, BlocksOption, CodecOption, ColorOption, CrfOption, HideOption,
                          KeepIccOption, KeepSubtitlesOption, Mode, ModeOption, OverwriteOption, PresetOption,
                          SalvageOption, ShapeOpt, ShapeOption, VoiceChoice, VoiceOption, encoding_asked,
                          faces_left_visible, file_seconds, local_path, named_input, options_acting_on_nothing,
                          parse_color, parse_hide_option, with_options_given)
from veil.outputs import (EARLIER_OUTPUT_FOLDER, Input, MediaKind, OutputClaims, OutputError, RunFileClash, Skipped,
                          check_writable, claim_key, collect_inputs, mirrored_bases, output_path, partial_outputs)
from veil.pipeline import Analysis, FileResult, FileTask, one_line, preflight, unexpected_error
from veil.plan import PIXELATE_BLOCKS, Encoding, MediaPlan, Plan, PlanError, RenderSettings
from veil.plan_lock import PlanLock, PlanLocked, held
from veil.remote import RemoteError, Url, as_local, location, location_key
from veil.report import Written, report_paths, write_report
from veil.terminal import err

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class Refused(Exception):
    """The run cannot start (an unreachable URL, an output that may not be written, nothing to
    work on...): one line, exit code 2, nothing written. `skipped_files`: what was passed over in
    the folders named (nothing to work on), for --json as its summary gives them."""

    def __init__(self, message: str, skipped_files: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.skipped_files = skipped_files


def answering_refusals(command: Callable[..., None]) -> Callable[..., None]:
    """The command, ending a refused run as `tell_refusal` says (also under typer's test runner)."""
    @functools.wraps(command)
    def run(*args: Any, **options: Any) -> None:
        try:
            command(*args, **options)
        except Refused as refusal:
            tell_refusal(str(refusal), 2, options.get("as_json", False), refusal.skipped_files)
            raise typer.Exit(2)
    return run


def tell_refusal(message: str, exit_code: int, as_json: bool,
                 skipped_files: list[dict[str, str]] | None = None, command: str = "veil") -> None:
    """Why a run did no work: the line on stderr and, for --json, as the one JSON object on stdout."""
    err.print(f"{command}: {message}")
    if as_json:
        print_json_error(message, exit_code, skipped_files=skipped_files)


def print_json(answer: dict, indent: int | None = None) -> bool:
    """--json's answer on stdout, a name that is not UTF-8 given as `readable_anywhere` says. A
    reader that closed the pipe, or a terminal that closed (EIO), must change neither the exit code
    (which says how the files went) nor turn the exit into a traceback (typer's own guard turns it
    into exit code 1). An answer lost otherwise (a full disk, /dev/full) is said, and False."""
    return write_stdout(json.dumps(readable_anywhere(answer), indent=indent), "the --json answer")


def write_stdout(text: str, what: str) -> bool:
    """`text` on stdout; where it could not be written for a reason other than its reader being
    gone, `what` is said on stderr as not written, and False."""
    if sys.stdout is None:  # started with stdout closed (`>&-`): print() would write nothing, unsaid
        err.print(f"veil: {what} could not be written to standard output: it is closed")
        return False
    try:
        print(text, flush=True)
    except OSError as error:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout again at exit
        if not isinstance(error, BrokenPipeError) and error.errno != errno.EIO:
            err.print(f"veil: {what} could not be written to standard output: {error.strerror or error}")
            return False
    return True


def skipped_json(skipped: list[Skipped]) -> list[dict[str, str]]:
    """What a run passed over, as --json gives it."""
    return [{"path": str(s.path), "reason": s.reason} for s in skipped]


def print_json_error(message: str, exit_code: int, finished: list[dict] | None = None,
                     not_written: list[dict[str, str]] | None = None,
                     skipped_files: list[dict[str, str]] | None = None,
                     files_not_done: list[str] | None = None) -> None:
    """--json's answer for a run that ended without a summary; `finished`: the files a stopped run
    had settled (done, failed or already done), each as the summary gives it; `not_written`: the
    plan or report it could not write (`write_run_files`); `skipped_files`: what a run with nothing
    to work on passed over; `files_not_done`: those a stopped run had not finished."""
    print_json({"error": message, "exit_code": exit_code, **({"results": finished} if finished is not None else {}),
                **({"files_not_done": files_not_done} if files_not_done is not None else {}),
                **({"not_written": not_written} if not_written is not None else {}),
                **({"skipped_files": skipped_files} if skipped_files is not None else {})})


def how_far(finished: list[dict] | None, not_done: list[str] | None, wrote: list[str]) -> str:
    """What a stop's line says of the files: how many were settled, how many not done and how to do
    them (the same command again, which refuses to replace the report or plan `wrote`: it would
    lose the record of the files finished, which the next run passes over as done)."""
    if finished is None or not_done is None:  # stopped before its files were listed
        return ""
    names = f", given other names for the {' and '.join(wrote)} this run wrote" if wrote else ""
    rest = f", {len(not_done)} not done (the same command again does them{names})" if not_done else ""
    return f": {len(finished)} file(s) finished{rest}"


def show_version(value: bool) -> None:
    if value:
        raise typer.Exit(0 if write_stdout(f"veil {__version__}", "the version") else 1)


@app.command(context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Check and correct every redaction in a local web page before export: veil review --help.")
@answering_refusals
def redact(
    ctx: typer.Context,
    paths: Annotated[Optional[list[str]], typer.Argument(parser=named_input, help="Photos, videos or folders (searched recursively), paths or fsspec URLs (s3://bucket/in/); with --plan, default: the plan's files.")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file or URL (one input only).")] = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", help="Write outputs here (a folder or a URL), mirroring input folders.")] = None,
    overwrite: OverwriteOption = False,
    accurate: AccurateOption = False,
    hide: HideOption = None,
    mode: ModeOption = Mode.fill,
    color: ColorOption = "black",
    shape: ShapeOpt = ShapeOption.ellipse,
    blocks: BlocksOption = PIXELATE_BLOCKS,
    save_plan: Annotated[Optional[Path], typer.Option("--save-plan", parser=local_path, help="Write the redaction plan (JSON) here.")] = None,
    plan_file: Annotated[Optional[Path], typer.Option("--plan", parser=local_path, help="Render this (edited) plan instead of detecting.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", parser=local_path, help="Write the audit report (JSON, and HTML beside it).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Detect and plan only; write no media.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors, and warnings of what was left as it was.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")] = False,
    crf: CrfOption = None,
    codec: CodecOption = None,
    preset: PresetOption = None,
    start: Annotated[Optional[float], typer.Option(callback=file_seconds, help="Video: analyse from this second; frames before it are not checked and fully covered (see --only-range).")] = None,
    end: Annotated[Optional[float], typer.Option(callback=file_seconds, help="Video: analyse up to this second; frames after it are not checked and fully covered (see --only-range).")] = None,
    only_range: Annotated[bool, typer.Option("--only-range", help="Video: leave frames outside --start/--end unredacted.")] = False,
    salvage: SalvageOption = False,
    keep_subtitles: KeepSubtitlesOption = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Photos redacted at once, each in its own process (default: every usable core); videos run one at a time on every core.")] = None,
    cluster: Annotated[Optional[str], typer.Option("--cluster", help="Run each file as a task on the Dask scheduler at this address (tcp://host:8786), or local:N for N worker processes here. Every worker must see the same paths.")] = None,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", parser=local_path, help="Record of every input (JSON Lines); running again skips the files it lists as done. Default for a folder or several files given (folders' files, unreadable and passed-over ones included), or --output-dir: veil-manifest.jsonl in --output-dir, else beside the first output (in the current folder when that is a URL).")] = None,
    voice: VoiceOption = VoiceChoice.keep,
    keep_icc: KeepIccOption = False,
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Find every face in photos and videos and hide it irreversibly; strip identifying metadata."""
    started = time.monotonic()
    if output is not None and output_dir is not None:
        raise typer.BadParameter("use either -o or --output-dir, not both")
    if jobs is not None and cluster is not None:  # a cluster's workers are its own: --jobs was passed by unsaid
        raise typer.BadParameter("use either --jobs or --cluster, not both (a cluster runs as many files at once as "
                                 "it has workers)")
    if "" in (output, output_dir):  # Path("") is the current folder: never meant
        raise typer.BadParameter(f"{'-o' if output == '' else '--output-dir'} names nothing (an empty name)")
    if not paths and plan_file is None:
        raise typer.BadParameter("name the photos, videos or folders to redact (or a --plan)")
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter(f"--start ({start:g}) must come before --end ({end:g})")
    try:
        named = [location(text) for text in paths or []]
        target = location(output) if output is not None else None
        target_dir = location(output_dir) if output_dir is not None else None
    except RemoteError as error:
        raise Refused(str(error))
    if isinstance(target_dir, Path) and (refused := output_dir_among_inputs(target_dir, named)):
        raise Refused(refused)
    render = RenderSettings(mode=mode.value, color=parse_color(color), blocks=blocks, voice=voice.value)
    encoding = encoding_asked(crf, codec, preset, keep_subtitles, keep_icc)
    analysis = Analysis(PROFILES["accurate" if accurate else "fast"], shape.value, start, end, only_range,
                        parse_hide_option(hide), salvage)
    if plan_file is not None:
        plan = load_plan(plan_file, render, encoding, ctx)
    else:
        plan = Plan(render=render, encoding=encoding)

    if (unusable := unusable_temp_folder()) is not None:
        raise Refused(unusable)
    run_notes = say_what_dead_runs_left(err.print)
    for note in plan.provenance_notes() if plan_file is not None else []:  # the audit's to know: said unless -q
        run_notes.append(f"the plan {shown(plan_file)}: {note}")
        if not quiet:
            err.print(f"veil: {run_notes[-1]}")
    if plan_file is not None and held(real_path(plan_file)):  # a warning: what it renders may not be the last word
        run_notes.append(f"the plan {shown(plan_file)} is being reviewed by veil review: rendered as it was saved "
                         "when this run read it; what the review changes from now on is not in these outputs")
        err.print(f"veil: {run_notes[-1]}")
    # Each by what it is, not by its name: a report named like the plan (--save-plan q.json
    # --report q.html) must clash with it, not pass as the plan claimed twice.
    owned = [*([(save_plan, "the plan")] if save_plan is not None else []),
             *((path, "the report") for path in (report_paths(report) if report else ()))]
    written = [path for path, _ in owned]
    audit = AuditFiles(save_plan, report)
    say_at_stop(audit.said())
    run_files = [*written, *([manifest] if manifest is not None else [])]
    try:
        inputs, skipped = find_inputs(named, plan, plan_file, [*run_files, *([target_dir] if target_dir else [])])
        if not named:  # the whole plan rendered: what it lacks is this run's to say
            skipped += never_planned(plan)
    except RemoteError as error:
        raise Refused(str(error))
    if target is not None and len(inputs) != 1:
        raise typer.BadParameter("-o names one output file; use --output-dir for several inputs")
    if not inputs:
        for skip in skipped:
            err.print(f"veil: {'' if skip.unreadable else 'skipped '}{shown(skip.path)}: {skip.reason}")
        raise Refused("no photos or videos found in " + ", ".join(shown(p) for p in named), skipped_json(skipped))
    # What could not be read was not chosen away: it fails, by name, like a file that could not be redacted.
    unread = [FileResult(s.path, error=s.reason) for s in skipped if s.unreadable]
    skipped = [s for s in skipped if not s.unreadable]
    for result in unread:
        err.print(f"veil: {shown(result.source)}: {result.error}")
    faces_left = None if plan_file is not None else faces_left_visible(analysis.hide, {i.kind for i in inputs})
    for line in [*options_acting_on_nothing(ctx, plan, {i.kind for i in inputs}), *filter(None, [faces_left])]:
        run_notes.append(line)
        err.print(f"veil: {line}")

    # One file named has nothing to resume; a folder or several files (unreadable and passed-over ones
    # too) are listed: the user's files, not veil's own outputs and manifest found beside them.
    theirs = [s for s in skipped if not s.veils_own]
    publish_note: str | None = None  # advice on the outputs: see below
    batch = len(inputs) + len(unread) + len(theirs) > 1 or any(isinstance(p, Path) and p.is_dir() for p in named)
    # A file written into an output folder is recorded too: the folder's next run knows it as veil's
    # (veil never redacts an output folder's files, and warns of those it has no record of).
    if manifest is None and not dry_run and (batch or isinstance(target_dir, Path)):
        manifest = default_manifest(target, target_dir, inputs[0].source)
        if isinstance(target_dir, Path) and manifest.parent == target_dir:
            # The folder of redacted copies is the one to publish, and this file there is not.
            publish_note = leave_out_note("manifest", manifest, target_dir, "--manifest keeps it elsewhere")
    claims = OutputClaims(i.source for i in inputs)
    try:
        # The plan rendered is read by this run as its files are: a report written over it would lose
        # the review it records, and name as the plan rendered a file that holds the report. (Saved
        # again in place by --save-plan, it stays a plan.)
        if plan_file is not None and (save_plan is None or claim_key(save_plan) != claim_key(plan_file)):
            claims.claim(plan_file, "the plan rendered (--plan)", run_file=True)
        for path, what in owned:  # the manifest is claimed below, as itself
            claims.claim(path, what, run_file=True)
            check_writable(path, overwrite, what, run_file=True)
        if manifest is not None:  # appended to, never replaced: it is the run's memory
            claims.claim(manifest, "the manifest", run_file=True)
            check_writable(manifest, True, "the manifest", appended=True)
    except OutputError as error:
        raise Refused(str(error))
    # Said at once, not after the work: a review of the plan (or one still detecting, the plan not
    # yet saved) holds it. A review begun during the run is met as the plan is saved (`save_held`).
    if save_plan is not None and held(real_path(save_plan)):
        raise Refused(f"{shown(real_path(save_plan))}: {UNDER_REVIEW}; stop the review first (Ctrl+C in its "
                      "terminal), or choose another --save-plan")

    finished: list[FileResult] = []  # as each file finishes, those of a stopped run too
    stop: Stopped | None = None
    # The plan's bytes as read, not as they are now: one saved again meanwhile (a review's edit)
    # would have the manifest vouch for outputs made without that edit, and a rerun pass them as done.
    fingerprint = settings_fingerprint(analysis, plan.render, plan.encoding, plan.loaded_sha256)
    try:
        # Locked before it is read: another run's "started" records are a live run's, not a crashed one's.
        writer = ManifestWriter(manifest) if manifest is not None else None
    except BatchError as error:
        raise Refused(str(error))
    if writer is not None and writer.unlocked:
        err.print(f"veil: cannot lock the manifest {shown(manifest)} ({writer.unlocked}): "
                  "another run into it at the same time would go unnoticed")
    try:
        done = read_manifest(manifest) if manifest is not None else {}
        unfinished = started_outputs(manifest, fingerprint) if manifest is not None else {}
        # A single file's run keeps no manifest, and one into a file:// folder keeps it in the current
        # folder: the manifest where the outputs lie still names whose outputs they are.
        recorded = done
        if (folder := outputs_folder(target, target_dir)) is not None and (
                manifest is None or location_key(manifest.parent) != location_key(folder)):
            with contextlib.suppress(OSError):  # unreadable: the run goes on as without it
                recorded = {**read_manifest(folder / MANIFEST_NAME), **done}
        owners = output_owners(recorded)
        if isinstance(target_dir, Path) and not dry_run:  # (a dry run names no output)
            inputs = placed_as_made(inputs, done, target_dir, unfinished)
        if writer is not None and writer.mid_line:  # said once: this run ends that line
            run_notes.append(f"the last line of the manifest {shown(manifest)} was cut short (a run killed as it "
                             "wrote it, or a full disk): what it recorded is lost, and a file it recorded as done is "
                             "done again")
            err.print(f"veil: {run_notes[-1]}")

        @functools.cache  # asked by the task and by its note: an output is hashed once
        def another_inputs(source: Path | Url, output: Path | Url) -> Record | None:
            return another_inputs_output(recorded, owners, source, output)

        tasks, results = make_tasks(inputs, plan, claims, analysis, target, target_dir, dry_run, overwrite,
                                    lambda source, output: still_done(done.get(location_key(source)), source, output,
                                                                      fingerprint),
                                    lambda source, output: killed_runs_own(unfinished, owners, location_key(source),
                                                                           location_key(output)),
                                    lambda source, output: made_otherwise(done.get(location_key(source)), source,
                                                                          output, fingerprint),
                                    # Rendered from a plan (the review's, say), the corrections are in it.
                                    lambda source: plan_file is None and getattr(done.get(location_key(source)),
                                                                                 "reason", None) == REVIEWED,
                                    another_inputs)
        this_runs = [*(t.target for t in tasks), *(r.output for r in results if r.already_done)]
        for line in [*unrecorded_media_notes(skipped, target_dir, manifest, [o for o in this_runs if o is not None]),
                     *stopped_runs_outputs_replaced(tasks, overwrite),
                     *other_inputs_outputs_replaced(tasks, another_inputs)]:
            run_notes.append(line)
            err.print(f"veil: {line}")
        if stale := partial_outputs(*(t.target for t in tasks if isinstance(t.target, Path))):
            # Left by a run that was killed outright (SIGKILL, power loss): redacted, but unfinished.
            err.print(f"veil: {len(stale)} unfinished output(s) of an interrupted run lie beside this run's outputs, "
                      f"e.g. {shown(stale[0])}: remove them")
        show = not (quiet or as_json)
        try:
            run_tasks(tasks, [*results, *unread], theirs, Workers(jobs or usable_cores(), cluster), writer,
                      fingerprint, show, finished)
        except Stopped as stopped:  # the files finished are recorded: their plan and report are still written
            stop = stopped
    except BatchError as error:
        raise Refused(str(error))
    finally:
        if writer is not None:
            writer.close()
            if writer.removed:  # a stopped run's, before any file was done: no manifest to leave out
                publish_note = None
    results += finished
    order = {item.source: n for n, item in enumerate(inputs)}
    results.sort(key=lambda r: order[r.source])
    results += unread
    if plan_file is None:
        plan.media = [r.media for r in results if r.media is not None]
    else:  # as the workers left them (speech searched for a plan made before veil looked for it)
        done = {location_key(r.media.path): r.media for r in results if r.media is not None}
        plan.media = [done.get(location_key(m.path), m) for m in plan.media]

    interrupted = None if stop is None else stopped_before(stop, inputs, results)
    # Said after the summary, where the user turns to the outputs; in --json's notes and the report.
    advice = [note for note in (publish_note, *run_files_to_leave_out(target_dir, report, save_plan),
                                None if dry_run else capture_time_note(results, target_dir))
              if note is not None]
    not_written = write_run_files(plan, results, skipped, audit, overwrite, dry_run, interrupted,
                                  [*run_notes, *advice])
    if stop is not None:
        stop.finished = [result_json(r) for r in results]  # for --json's answer, as the stop is told
        stop.not_written = not_written
        stop.not_done = interrupted["files_not_done"] if interrupted else []
        stop.wrote = [what for what in ("report", "plan") if what in audit.written]
        raise stop
    run_notes += advice
    answered = print_summary(results, skipped, not_written, run_notes, time.monotonic() - started, quiet, as_json,
                             dry_run)
    for note in advice if not (quiet or as_json) else ():  # advice, not a warning: --quiet runs stay silent
        err.print(f"veil: {note}")
    if not_written or any(r.error for r in results) or not answered:
        raise typer.Exit(2 if any(r.unexpected for r in results) else 1)


def output_dir_among_inputs(target_dir: Path, named: list[Path | Url]) -> str | None:
    """Why an output folder that is, or holds, a folder being redacted (or a file named's) is
    refused: there each output would be its input's own name (every file failed, and a manifest
    was left among the originals); above it, the originals lie in the folder to publish, and an
    output mirrored there could take the name of another original, replaced under --overwrite."""
    folder = real_path(target_dir)
    for path in (p for p in named if isinstance(p, Path)):
        is_folder = path.is_dir()
        holding = real_path(path if is_folder else path.parent)
        what = f"the folder {shown(path)}" if is_folder else f"the folder of {shown(path)}"
        if holding == folder:
            return (f"--output-dir {shown(target_dir)} is {what} being redacted: choose another (a folder inside it "
                    "is passed over)")
        if holding.is_relative_to(folder):
            return (f"--output-dir {shown(target_dir)} holds {what} being redacted: the originals would lie in the "
                    "folder to publish, and an output could take another original's name there: choose a folder "
                    "outside it (a folder inside the one redacted is passed over)")
    return None


def run_files_to_leave_out(target_dir: Path | Url | None, report: Path | None, save_plan: Path | None) -> list[str]:
    """Advice where the report or the plan is written into the output folder, the one to publish:
    each names every input's path and the original's SHA-256, as the manifest does."""
    if not isinstance(target_dir, Path):
        return []
    folder = real_path(target_dir)
    return [leave_out_note(kind, path, target_dir, "or write it elsewhere")
            for kind, path in (("report", report), ("plan", save_plan))
            if path is not None and real_path(path).is_relative_to(folder)]


def capture_time_note(results: list[FileResult], output_dir: Path | Url | None) -> str | None:
    """`dated_names_note` on the outputs written, named as the output folder publishes them."""
    folder = output_dir if isinstance(output_dir, Path) else None
    return dated_names_note([published_name(r.output, folder) if isinstance(r.output, Path) else r.output.name
                             for r in results if r.output is not None and not r.error])


def load_plan(plan_file: Path, render: RenderSettings, encoding: Encoding, ctx: typer.Context) -> Plan:
    """A saved plan to re-render: its own render and encoding settings, unless options override them."""
    try:
        plan = Plan.load(plan_file)
    except PlanError as error:
        raise Refused(f"{shown(plan_file)}: {error}")
    if not plan.media:  # a run where every file failed saves one: rendering it would detect afresh
        raise Refused(f"{shown(plan_file)}: the plan lists no files")
    try:
        with_options_given(plan, render, encoding, ctx)
    except ValueError as error:
        raise Refused(f"{shown(plan_file)}: {error}")
    return plan


def find_inputs(paths: list[Path | Url], plan: Plan, plan_file: Path | None,
                exclude: list[Path | Url]) -> tuple[list[Input], list[Skipped]]:
    """The files to work on: those named (folders searched), or a loaded plan's."""
    if plan_file is not None and not paths:
        planned = [location(m.path) for m in plan.media]
        if remote := [where for where in planned if isinstance(where, Url)]:
            # A plan file from elsewhere must not make veil reach a server the command never named.
            raise RemoteError(f"the plan names files by URL ({shown(remote[0])}{', ...' if len(remote) > 1 else ''}): "
                              "name them on the command line to fetch them")
        return [Input(where, base, m.kind) for where, base, m in zip(planned, mirrored_bases(planned), plan.media)], []
    return collect_inputs(paths, exclude)


def outputs_folder(target: Path | Url | None, target_dir: Path | Url | None) -> Path | None:
    """The local folder the outputs are written in (-o's, or --output-dir, by path or file:// URL);
    None for an object store's, or outputs beside their inputs."""
    place = target_dir if target_dir is not None else target.parent if target is not None else None
    place = as_local(place) if place is not None else None
    return place if isinstance(place, Path) else None


def killed_runs_own(unfinished: dict[str, str], owners: dict[str, list[str]], source: str, output: str) -> bool:
    """Whether the file `output` is what a killed run was making from `source` (`unfinished`: its
    last record "started" there), to redo in place: not where another input's done record names
    it (`owners`: output -> inputs), made there since by a run of that input, and not to replace unasked."""
    return unfinished.get(source) == output and set(owners.get(output, [])) <= {source}


def never_planned(plan: Plan) -> list[Skipped]:
    """The files that the stopped run which saved a loaded plan was given and never planned:
    rendering the plan leaves them as they are, which must not go unsaid (the run would count only
    the files planned, all done)."""
    return [Skipped(location(path), "in no plan: the run that saved the plan was stopped before it (redact it "
                                    "in a run of its own)")
            for path in plan.never_planned]


def stopped_runs_outputs_replaced(tasks: list[FileTask], overwrite: bool) -> list[str]:
    """What this run will replace without --overwrite, as a stopped run's unfinished outputs: never
    unsaid, for a file put there since (by hand) would be lost in silence."""
    return [f"{shown(task.target)} will be replaced as the file is redone: the manifest records that a stopped "
            "run started making it there and never finished" for task in tasks
            if task.overwrite and not overwrite and isinstance(task.target, Path) and task.target.exists()]


def other_inputs_outputs_replaced(tasks: list[FileTask],
                                  another_inputs: Callable[[Path | Url, Path | Url], Record | None]) -> list[str]:
    """What this run will replace, on --overwrite, that the manifest records as another input's
    output: asked for, but never unsaid (that input's output is then gone)."""
    return [another_inputs_replaced(other, task.target, task.source) for task in tasks
            if task.target is not None and (other := another_inputs(task.source, task.target)) is not None]


def unrecorded_media_notes(skipped: list[Skipped], output_dir: Path | Url | None, manifest: Path | None,
                           targets: list[Path | Url]) -> list[str]:
    """A warning for each output folder (--output-dir, and an earlier run's passed over) holding
    files that are not veil's outputs (`targets`: this run's): they are not redacted, and are
    published with it."""
    folders = [s.path for s in skipped if s.reason == EARLIER_OUTPUT_FOLDER and isinstance(s.path, Path)]
    if isinstance(output_dir, Path) and output_dir.is_dir():
        folders.insert(0, output_dir)
    found, unlisted = unrecorded_media(folders, [manifest] if manifest is not None else [],
                                       [t for t in targets if isinstance(t, Path)])
    return [*(f"the output folder {shown(folder)} holds {len(files)} photo, video or sound file(s) that no manifest "
              f"records as veil's output (by SHA-256): {', '.join(shown(f) for f in files[:3])}"
              f"{', ...' if len(files) > 3 else ''}: veil never redacts its output folders' files, so if any is an "
              "original, it is not redacted: move it out before you publish the folder" for folder, files in found.items()),
            *(f"{shown(folder)}, in an output folder, cannot be listed: what it holds was not checked, and veil never "
              "redacts its output folders' files; if it holds originals, they are not redacted" for folder in unlisted)]


def make_tasks(inputs: list[Input], plan: Plan, claims: OutputClaims, analysis: Analysis, output: Path | Url | None,
               output_dir: Path | Url | None, dry_run: bool, overwrite: bool,
               already_done: Callable[[Path | Url, Path | Url], Record | None],
               ours: Callable[[Path | Url, Path | Url], bool] = lambda source, target: False,
               made_otherwise: Callable[[Path | Url, Path | Url], str | None] = lambda source, target: None,
               reviewed: Callable[[Path | Url], bool] = lambda source: False,
               another_inputs: Callable[[Path | Url, Path | Url], Record | None] = lambda source, target: None,
               ) -> tuple[list[FileTask], list[FileResult]]:
    """A task per input, each checked before any detection; what fails its checks, or what an
    earlier run already did (the manifest), is a result already. `ours`: whether an output that
    exists is one an earlier run of these settings was making from that input (its outcome never
    recorded): replaced, as --overwrite would. `made_otherwise`: how an output that exists, one an
    earlier run made from that input, was made otherwise (other settings, the input since changed):
    refused, saying so; `reviewed`: whether
    the manifest's output of that input was exported by `veil review` (refused, saying what is at stake);
    `another_inputs`: the record of another input whose output the file there is (`another_inputs_output`):
    refused where a review exported it, --overwrite or not, and otherwise named."""
    tasks: list[FileTask] = []
    failed: list[FileResult] = []  # and already done
    planned: dict[str, MediaPlan] = {}
    for media in plan.media:
        key = location_key(media.path)
        if key in planned:  # by a link and its target, say: one entry's regions would be dropped
            raise Refused(f"the plan lists one file twice, as {shown(planned[key].path)} and {shown(media.path)}: "
                          "its regions must be in one entry")
        planned[key] = media

    def target_of(item: Input) -> tuple[MediaPlan | None, MediaKind | None, Path | Url | None]:
        """The input's plan entry, kind and output (None in a dry run)."""
        media = planned.get(location_key(item.source))
        kind = media.kind if media is not None else item.kind
        target = None if dry_run else output_path(item.source, item.base, output, output_dir, kind or "image")
        return media, kind, target

    for item in inputs:  # outputs where the manifest records them first: no other input takes their names
        if item.recorded:
            with contextlib.suppress(ValueError, OSError):  # said when its own turn comes
                if (target := target_of(item)[2]) is not None:
                    claims.claim(target, item.owner)
    for item in inputs:
        try:
            media, kind, target = target_of(item)
            if plan.media and media is None:
                raise OutputError("not in the plan")
            if target is not None:
                claims.claim(target, item.owner)
                record = already_done(item.source, target)
                if record is not None:
                    failed.append(FileResult(item.source, output=target, regions=record.regions,
                                             by_kind=record.regions_by_kind, already_done=True,
                                             input_sha256=record.input_sha256, output_sha256=record.output_sha256))
                    continue
            other = another_inputs(item.source, target) if target is not None else None
            if other is not None and (refusal := another_inputs_refusal(other, target, overwrite)) is not None:
                raise OutputError(refusal)
            replace = overwrite or (target is not None and ours(item.source, target))
            if target is not None and not replace and (how := made_otherwise(item.source, target)):
                if reviewed(item.source):
                    raise OutputError(f"the output {shown(target)} was exported by veil review (the manifest says): "
                                      "--overwrite would replace it with one made without the reviewer's corrections")
                raise OutputError(f"the output {shown(target)} {how} (the manifest says): use --overwrite to redo it")
            task = FileTask(item.source, kind, target, plan.render, plan.encoding, analysis, replace, media)
            preflight(task)  # (which refuses a file at the target, unless it is to be replaced)
            tasks.append(dataclasses.replace(task, new_target=isinstance(target, Path) and not replace))
        except RunFileClash as error:  # an output named as the report, say: the command contradicts itself
            raise Refused(str(error)) from None
        except (ValueError, OSError) as error:  # OutputError, InputError, VideoError...
            failed.append(FileResult(item.source, error=one_line(error)))
            err.print(f"veil: {shown(item.source)}: {failed[-1].error}")
        except Exception as error:  # unforeseen: this file fails, named, and the run says it is a bug
            failed.append(FileResult(item.source, error=unexpected_error(error), unexpected=True))
            err.print(f"veil: {shown(item.source)}: {failed[-1].error}")
    return tasks, failed


def run_tasks(tasks: list[FileTask], settled: list[FileResult], passed_over: list[Skipped], workers: Workers,
              writer: ManifestWriter | None, fingerprint: str, show_progress: bool, results: list[FileResult]) -> None:
    """Run every task (in worker processes or on a cluster where asked), recording each file in
    the manifest as it finishes, the settled ones (refused, unreadable, already done) and those
    passed over (not media) first: the manifest lists every input the run was given. Each file's
    result is added to `results` as it finishes: a stopped run still has those of the files done."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, disable=not show_progress or len(tasks) < 2 or not err.is_terminal,
                  transient=True) as progress:
        bar = progress.add_task("redacting", total=len(tasks))
        manifest_failed = False

        def finish(_: int, result: FileResult) -> None:
            nonlocal manifest_failed
            if result.error:
                err.print(f"veil: {shown(result.source)}: {result.error}")
            if writer is not None and not manifest_failed:
                try:
                    writer.append(Record.of(result, fingerprint))
                except BatchError:
                    # The run stops; this file and those still in flight (which finish whole) are
                    # written but in no record: each is named, since a rerun will not know them.
                    manifest_failed = True
                    unrecorded(result)
                    raise
            elif manifest_failed:
                unrecorded(result)
            results.append(result)
            progress.advance(bar)

        if writer is not None:
            writer.append(*(Record.of(result, fingerprint) for result in settled),
                          *(Record.passed_over(skip, fingerprint) for skip in passed_over))
            writer.append(*(Record.started(task.source, task.target, fingerprint) for task in tasks
                            if task.target is not None))
        run_all([Task(n, task, show_progress) for n, task in enumerate(tasks)], workers, finish)


def unrecorded(result: FileResult) -> None:
    if result.output is not None and not result.error and not result.already_done:
        err.print(f"veil: {shown(result.source)}: written to {shown(result.output)}, but not recorded in the manifest")


@dataclass
class AuditFiles:
    """The plan and the report asked for (--save-plan, --report), and which of them are written:
    a stop's line says what became of them (`say_at_stop`), since a user who stopped the run could
    otherwise take an earlier run's report, left where this one's would be, for this run's."""

    plan: Path | None
    report: Path | None
    written: dict[str, str] = field(default_factory=dict)  # "plan", "report" -> where, as the stop line says it

    def wrote(self, what: str, where: str) -> None:
        self.written[what] = where
        say_at_stop(self.said())

    def said(self) -> str:
        """"; the report of the files finished ... is in ...", "; no report or plan was written"."""
        asked = [what for what, path in (("report", self.report), ("plan", self.plan)) if path is not None]
        parts = [self.written[what] for what in asked if what in self.written]
        if lost := [what for what in asked if what not in self.written]:
            parts.append(f"no {' or '.join(lost)} was written")
        return "".join(f"; {part}" for part in parts)


def stopped_before(stop: Stopped, inputs: list[Input], results: list[FileResult]) -> dict[str, Any]:
    """What a stopped run's plan and report record of the stop: its signal and the inputs not done."""
    settled = {result.source for result in results}
    return {"signal": signal.Signals(stop.args[0]).name,
            # Absolute, as a plan records its files: a later run of the plan names them from any folder.
            "files_not_done": [str(item.source if isinstance(item.source, Url) else item.source.absolute())
                               for item in inputs if item.source not in settled]}


def write_run_files(plan: Plan, results: list[FileResult], skipped: list[Skipped], audit: AuditFiles,
                    overwrite: bool, dry_run: bool = False, interrupted: dict[str, Any] | None = None,
                    run_notes: list[str] | None = None) -> list[dict[str, str]]:
    """Save the plan and the report; each that could not be written is said on one line and
    returned as --json gives it (`{"file": "report", "path": ..., "reason": ...}`).
    `interrupted` (a stopped run, `stopped_before`): they cover the files finished, and say so.
    `run_notes`: what the run said of itself, into the report."""
    not_written: list[dict[str, str]] = []
    of_what = "" if interrupted is None else " of the files finished"
    if audit.plan is not None and not plan.media and interrupted is None and any(r.error for r in results):
        # A plan of nothing would only stand in the way of the corrected run (it exists: --overwrite).
        reason = "no file was planned"
        err.print(f"veil: the plan was not written: {reason}")
        not_written.append({"file": "plan", "path": reported(audit.plan), "reason": reason})
    elif audit.plan is not None:
        plan.interrupted = interrupted
        if (reason := wrote("the plan", audit.plan, functools.partial(save_held, plan, audit.plan, overwrite))) is None:
            audit.wrote("plan", f"the plan{of_what} is in {shown(audit.plan)}")
        else:
            not_written.append({"file": "plan", "path": reported(audit.plan), "reason": reason})
    if audit.report is not None:
        outputs = {r.media.path: Written(reported(r.output), r.output_sha256) for r in results if r.output and r.media}
        not_redacted = [{"path": reported(r.source), "status": "failed", "reason": r.error} for r in results if r.error]
        not_redacted += [{"path": reported(r.source), "status": "already done",
                          "reason": f"by an earlier run, into {reported(r.output)}"} for r in results if r.already_done]
        not_redacted += [{"path": reported(s.path), "status": "skipped", "reason": s.reason} for s in skipped]
        if interrupted is not None:
            not_redacted += [{"path": path, "status": "not done",
                              "reason": f"veil was stopped ({interrupted['signal']}) before it was done"}
                             for path in interrupted["files_not_done"]]
        planned = {r.media.path for r in results if r.media}
        if (reason := wrote("the report", audit.report, functools.partial(write_report, plan, outputs, audit.report,
                                                                            overwrite, not_redacted, dry_run,
                                                                            interrupted, planned, run_notes))) is None:
            not_done = f" ({len(interrupted['files_not_done'])} not done, listed in it)" if interrupted else ""
            audit.wrote("report", f"the report{of_what}{not_done} is in "
                                  f"{' and '.join(shown(path) for path in report_paths(audit.report))}")
        else:
            not_written.append({"file": "report", "path": reported(audit.report), "reason": reason})
    return not_written


UNDER_REVIEW = "it is being reviewed by veil review: saved over, the review's edits would be lost"


def save_held(plan: Plan, path: Path, overwrite: bool) -> None:
    """Save the plan holding it (`veil.plan_lock`), as a review does all the while it runs."""
    lock = PlanLock()
    # Its folder made as a report's and a manifest's are (the lock file beside it failed there,
    # named, after the whole run).
    real_path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.take(real_path(path))  # where a file system has no locks, the save goes ahead (a review's did)
    except PlanLocked:
        raise OutputError(f"the plan was not written to {shown(path)}: {UNDER_REVIEW}; save it under another "
                          "name (--save-plan)") from None
    try:
        plan.save(path, overwrite)
    except FileExistsError:  # (Plan.save's own words are a library caller's)
        raise OutputError(f"{shown(path)} appeared while veil was writing it: use --overwrite to replace it") from None
    finally:
        lock.release()


def reported(where: Path | Url) -> str:
    """A file as the report names it: a path absolute, as the plan names the inputs (a report read
    elsewhere does not say from which folder the run was started), a URL as written."""
    return str(where) if isinstance(where, Url) else os.path.normpath(where.absolute())


def wrote(what: str, path: Path, write: Callable[[], None]) -> str | None:
    """Run `write`, which writes `what` (the plan, the report): None once written, else why not
    (said on one line)."""
    try:
        write()
        return None
    except OutputError as error:  # it names the file and why already
        reason = one_line(error)
    except (OSError, ValueError) as error:
        # "out.jpg: File exists" where a folder on the way is a file, not "[Errno 17] File exists: 'out.jpg'"
        why = f"{shown(error.filename)}: {error.strerror}" if isinstance(error, OSError) and error.filename \
            and error.strerror else one_line(error)
        reason = f"cannot write {shown(path)}: {why}"
    err.print(f"veil: {what} was not written: {reason}")
    return reason


def print_summary(results: list[FileResult], skipped: list[Skipped], not_written: list[dict[str, str]],
                  run_notes: list[str], seconds: float, quiet: bool, as_json: bool, dry_run: bool) -> bool:
    """The run's summary; `not_written`: the plan or report asked for that could not be written
    (`write_run_files`); `run_notes`: what the run said of itself before its files (said then on
    stderr, and given again in `--json`'s answer). False where `--json`'s answer was lost."""
    failed = [r for r in results if r.error]
    regions = sum(r.regions for r in results)
    # Per kind where every file's count is known (an older veil's manifest records only a total).
    known = all(r.by_kind is not None for r in results)
    by_kind = {kind: sum(r.by_kind.get(kind, 0) for r in results)
               for kind in sorted({k for r in results for k in r.by_kind})} if known else {}
    done = sum(r.already_done for r in results)
    # A resumed run counts the files an earlier run did from their records: said apart, as this
    # run hid none of their regions.
    earlier = sum(r.regions for r in results if r.already_done)
    if as_json:
        return print_json({
            "files": len(results), "failed": len(failed), "skipped": len(skipped), "already_done": done,
            # Regions hidden: faces, and those of every kind (--hide) per kind.
            "faces": by_kind.get("face", 0) if known else None, "regions": regions, "regions_already_done": earlier,
            "regions_by_kind": by_kind if known else None,
            "dry_run": dry_run, "seconds": round(seconds, 2),
            "results": [result_json(r) for r in results],
            "skipped_files": skipped_json(skipped),
            # The exit code is 1 for these too: an answer that counted only files would not say why.
            "not_written": not_written,
            "notes": run_notes,
        }, indent=1)
    for r in results:
        for note in r.notes:
            if note.warning or not quiet:
                err.print(f"veil: {shown(r.source)}: {note.text}")
    for skip in skipped:
        # Under -q too, a photo, video or sound file of the user's left as it was (a hidden one, say).
        if not quiet or skip.media_left_as_it_was():
            err.print(f"veil: skipped {shown(skip.path)}: {skip.reason}")
    if not quiet or failed:
        hidden = "would be hidden (dry run: nothing written)" if dry_run else "hidden"
        again = f" ({done} already done by an earlier run, which hid {earlier} of these regions)" if done else ""
        kinds = f" ({', '.join(counted(kind, count) for kind, count in by_kind.items())})" \
            if set(by_kind) - {"face"} else ""
        err.print(f"{len(results)} file(s){again}, {regions} region(s){kinds} {hidden}, {len(failed)} failed, "
                  f"{len(skipped)} skipped, {seconds:.1f} s")
    if len(results) > 1:
        for r in failed:
            err.print(f"  failed: {shown(r.source)}: {r.error}")
    return True


def result_json(r: FileResult) -> dict[str, Any]:
    """--json's account of one file."""
    return {"input": str(r.source), "output": str(r.output) if r.output else None,
            "faces": None if r.by_kind is None else r.by_kind.get("face", 0), "regions": r.regions,
            "regions_by_kind": r.by_kind,
            "error": r.error, "notes": [n.text for n in r.notes], "already_done": r.already_done,
            **speech_summary(r)}


def speech_summary(result: FileResult) -> dict:
    """--json: how much speech a file's sound holds (only for files with sound)."""
    record = result.media.detection.get("speech") if result.media else None
    return {"speech_seconds": record["speech_seconds"], "speech_segments": record["segments"]} if record else {}


def typed_options(args: list[str], command: typer.core.TyperCommand) -> list[typer.core.TyperOption]:
    """Each option in `args`, once for every time it is typed, read as click reads options: the
    word after an option that takes a value is that value (`-o --json` names an output file), in a
    cluster of short options (`-qo`) the first that takes a value takes the rest of the word, or
    the next word when it comes last, and nothing after `--` is an option."""
    named = {name: param for param in command.params if isinstance(param, typer.core.TyperOption)
             for name in param.opts + param.secondary_opts}
    typed: list[typer.core.TyperOption] = []
    words = iter(args)
    for word in words:
        if word == "--":
            break
        if word.startswith("--"):
            if (option := named.get(word.split("=", 1)[0])) is not None:
                typed.append(option)
                if takes_value(option) and "=" not in word:
                    next(words, None)
        elif word.startswith("-"):
            for position, letter in enumerate(word[1:], 1):
                if (option := named.get(f"-{letter}")) is None:
                    break
                typed.append(option)
                if takes_value(option):
                    if position == len(word) - 1:
                        next(words, None)
                    break
    return typed


def takes_value(option: typer.core.TyperOption) -> bool:
    return not option.is_flag and not option.count


def long_options(args: list[str]) -> set[str]:
    """The long options given (--json, --report), looked for by hand because a run refused while its
    options are parsed must still answer in JSON, and one stopped then must say that it wrote no
    report."""
    return {name for option in typed_options(args, typer.main.get_command(app)) for name in option.opts
            if name.startswith("--")}


def typed_twice(args: list[str], command: typer.core.TyperCommand) -> str | None:
    """The first option of one value typed more than once (`--voice mute ... --voice keep`): click
    takes the last without a word, and a wrapper's or a habit's option would undo the one meant."""
    counts = Counter(option for option in typed_options(args, command) if takes_value(option) and not option.multiple)
    return next((max(option.opts, key=len) for option, count in counts.items() if count > 1), None)


def main() -> None:
    """The command, once veil.cli has readied the process: what it did, or why not, on stderr
    (and with --json on stdout), and the exit code."""
    stopped: int | None = None
    finished: list[dict] | None = None  # a stopped run's files settled, for --json
    not_written: list[dict[str, str]] | None = None  # the plan or report a stopped run could not write
    not_done: list[str] | None = None  # the files a stopped run had not finished
    wrote: list[str] = []  # the run files ("report", "plan") a stopped run wrote
    review = sys.argv[1:2] == ["review"]
    as_json = False
    try:
        given = set() if review else long_options(sys.argv[1:])
        as_json = "--json" in given
        if as_json:
            answer_stops_in_json()
        # A stop before the command has read its options: what it says of the report and plan asked for.
        asked = AuditFiles(Path() if "--save-plan" in given else None, Path() if "--report" in given else None)
        say_at_stop(asked.said())
        # The stop signals were held back while the command was imported (veil.cli): one that
        # came meanwhile is raised here, and answered as any stop.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if review:
            from veil.review.cli import review_app

            sys.argv.pop(1)
            if twice := typed_twice(sys.argv[1:], typer.main.get_command(review_app)):
                tell_refusal(f"{twice} given more than once: give it once", 2, False, command="veil review")
                sys.exit(2)
            # Not standalone: a mistyped option is said by the handler below, as the command's are.
            sys.exit(review_app(prog_name="veil review", standalone_mode=False))
        else:
            if twice := typed_twice(sys.argv[1:], typer.main.get_command(app)):
                tell_refusal(f"{twice} given more than once: give it once", 2, as_json)
                sys.exit(2)
            if any("memory://" in arg for arg in sys.argv[1:]):
                # fsspec's memory:// lives inside one process (a library caller's): from the
                # command line, outputs written there would be gone when veil ends.
                tell_refusal("memory:// is a store inside one Python process, gone when veil ends: name a file, "
                             "a folder or a URL of lasting storage", 2, as_json)
                sys.exit(2)
            sys.exit(app(prog_name="veil", standalone_mode=False))
    except (Stopped, KeyboardInterrupt) as stop:
        stopped = stop.args[0] if isinstance(stop, Stopped) else signal.SIGINT
        finished = getattr(stop, "finished", None)
        not_written = getattr(stop, "not_written", None)
        not_done = getattr(stop, "not_done", None)
        wrote = getattr(stop, "wrote", [])
    except typer.Abort as abort:  # end of input where click reads (veil reads none): its cause is the message
        tell_refusal(f"aborted: {abort.__cause__ or 'end of input'}", 1, as_json)
        sys.exit(1)
    except typer.TyperException as error:  # click's usage errors (typer bundles its own click)
        context = getattr(error, "ctx", None)
        if context is not None:  # as click says it: the usage line first, then how to get help
            err.print(f"{context.get_usage()}\nTry '{context.command_path} -h' for help.\n")
        tell_refusal(error.format_message(), error.exit_code, as_json, command="veil review" if review else "veil")
        sys.exit(error.exit_code)
    except Exception as error:  # the promise: no traceback, ever
        tell_refusal(unexpected_error(error), 2, as_json)
        sys.exit(2)
    finally:
        ignore_stops()  # the work is over: a second Ctrl-C must not interrupt telling the user what was left
        left = remove_leftovers()
        if stopped is not None:
            but = ", but temporary files were left (below)" if left else ""
            err.print(f"veil: stopped ({signal.Signals(stopped).name}){how_far(finished, not_done, wrote)}; "
                      f"no partial output was left{but}{said_at_stop()}")
        for path in left:
            err.print(f"veil: could not remove the temporary {shown(path)} (it may hold an unredacted copy): remove it")
    if stopped is not None:
        if as_json:
            print_json_error(f"stopped ({signal.Signals(stopped).name}){said_at_stop()}", 128 + stopped, finished,
                             not_written, files_not_done=not_done)
        sys.exit(128 + stopped)
