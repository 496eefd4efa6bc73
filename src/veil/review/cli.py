"""`veil review PATH...`: detect, then open the review page on a local server.

The session starts from media files (detected and planned first, with progress in the
terminal) or from an existing plan (`--plan`). The plan being edited is saved after
every edit, by default beside the first input as `<input>.veil-plan.json`; starting
again with the same inputs resumes it, so nothing is lost when the browser or the
server is closed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import socket
import threading
import webbrowser
from collections.abc import Callable, Collection
from pathlib import Path
from types import FrameType
from typing import Annotated, Optional

import typer
import uvicorn

from veil.options import (DETECTION_OPTIONS, AccurateOption, BlocksOption, CodecOption, ColorOption, CrfOption,
                          HideOption, KeepIccOption, KeepSubtitlesOption, Mode, ModeOption, OverwriteOption,
                          PresetOption, SalvageOption, ShapeOpt, ShapeOption, VoiceChoice, VoiceOption, color_text,
                          detection_flags, encoding_asked, faces_left_visible, given_options, local_folder, local_path,
                          named_input_path, options_acting_on_nothing, parse_color, parse_hide_option,
                          with_options_given)
from veil.detect import PROFILES
from veil.imagefile import ImageError
from veil.interrupt import say_what_dead_runs_left, temporary_folder, unusable_temp_folder
from veil.manifest import (Record, another_inputs_output, another_inputs_refusal, another_inputs_replaced, appendable,
                           output_owners, placed_as_made, read_manifest)
from veil.names import MANIFEST_NAME, first_few, real_path, shown
from veil.outputs import (Input, OutputClaims, OutputError, check_writable, collect_inputs, media_at, mirrored_bases,
                          not_a_file, output_path, partial_outputs, replacing_refused)
from veil.pipeline import Analysis, FileTask, redact_file
from veil.photo import SALVAGED, file_sha256, refuse_unsalvaged_plan
from veil.plan import PIXELATE_BLOCKS, Encoding, Plan, PlanError, RenderSettings
from veil.plan_lock import PlanLock, PlanLocked, lock_path
from veil.report import report_paths
from veil.review.app import LaunchCodes, create_app, page_leading_to
from veil.review.peer import sees_own_connections
from veil.review.session import ReviewSession
from veil.terminal import err

PLAN_SUFFIX = ".veil-plan.json"
REPORT_SUFFIX = ".veil-report.json"

review_app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


def say(message: str) -> None:
    """Print one line; control characters in the file names it holds are shown escaped."""
    err.print(shown(message))


def tell(told: list[str], line: str) -> None:
    """Say a line of what this review says of itself rather than of one file, and keep it in
    `told` for the export's report (its `run_notes`), as a run keeps its own."""
    told.append(line)
    say(f"veil review: {line}")


class SessionError(ValueError):
    """A review session that cannot start; the message says why and what to do."""


@review_app.command(context_settings={"help_option_names": ["-h", "--help"]})
def review(
    ctx: typer.Context,
    paths: Annotated[Optional[list[Path]], typer.Argument(parser=named_input_path,
                                                          help="Photos, videos or folders to review.")] = None,
    plan_file: Annotated[Optional[Path], typer.Option("--plan", parser=local_path, help="Review this existing plan instead of detecting.")] = None,
    save_plan: Annotated[Optional[Path], typer.Option("--save-plan", parser=local_path, help="Save the edited plan here (default: beside the first input, or the --plan file).")] = None,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", parser=local_folder, help="Export outputs here (default: <name>.redacted.<ext> beside each input).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", parser=local_path, help="Audit report path (JSON; HTML beside it). Default: beside the plan file.")] = None,
    overwrite: OverwriteOption = False,
    accurate: AccurateOption = False,
    hide: HideOption = None,
    mode: ModeOption = Mode.fill,
    color: ColorOption = "black",
    shape: ShapeOpt = ShapeOption.ellipse,
    blocks: BlocksOption = PIXELATE_BLOCKS,
    voice: VoiceOption = VoiceChoice.keep,
    salvage: SalvageOption = False,
    crf: CrfOption = None,
    codec: CodecOption = None,
    preset: PresetOption = None,
    keep_subtitles: KeepSubtitlesOption = False,
    keep_icc: KeepIccOption = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the address only; do not open a browser.")] = False,
) -> None:
    """Check and correct every redaction in a local web page, then export the outputs and an audit report."""
    settings = RenderSettings(mode=mode.value, color=parse_color(color), blocks=blocks, voice=voice.value)
    encoding = encoding_asked(crf, codec, preset, keep_subtitles, keep_icc)
    analysis = Analysis(PROFILES["accurate" if accurate else "fast"], shape.value, hide=parse_hide_option(hide),
                        salvage=salvage)
    if (unusable := unusable_temp_folder()) is not None:
        say(f"veil review: {unusable}")
        raise typer.Exit(2)
    told = say_what_dead_runs_left(err.print)
    try:  # before detection, which can take minutes: a port in use is said at once
        listening = listening_socket(port)
    except OSError as error:
        say(f"veil review: cannot listen on 127.0.0.1:{port}: {error.strerror or error}"
            + (": choose another --port, or 0 for any free one" if port else ""))
        raise typer.Exit(2) from None
    lock = ReviewLock()
    try:
        try:
            session = open_session(paths or [], plan_file, save_plan, output_dir, report, settings, analysis,
                                   overwrite, lambda plan, resumed: take_options(plan, resumed, settings, encoding,
                                                                                 analysis, ctx, told),
                                   lock.take, encoding, told)
        except (SessionError, PlanError, OutputError, ValueError) as error:
            say(f"veil review: {error}")
            raise typer.Exit(2)
        kinds = {media.kind for media in session.plan.media}
        # As the plan was detected: a review resumed without --hide keeps the kinds it was detected for.
        hidden = tuple(dict.fromkeys(kind for media in session.plan.media
                                     for kind in media.detection.get("hide", ["face"])))
        faces_left = None if plan_file is not None else faces_left_visible(hidden, kinds)
        for line in [*options_acting_on_nothing(ctx, session.plan, kinds), *filter(None, [faces_left])]:
            tell(told, line)
        if stale := partial_outputs(*session.targets):
            # Left by a review or run killed outright (SIGKILL, power loss) while it wrote them.
            tell(told, f"{len(stale)} unfinished output(s) of an interrupted export or run lie beside this "
                       f"review's outputs, e.g. {shown(stale[0])}: remove them")
        server = ReviewServer(session, listening=listening)
        say(f"plan file (saved after every edit): {session.plan_path}")
        say(f"review page (a one-time address; a new one is printed when it is used): {server.url}")
        say("press Ctrl+C to stop the server")
        with contextlib.ExitStack() as launch:
            if not no_browser:
                # Where connections' owners are checked, the address is of no use to another user; a
                # browser started on a file (`launch_page`) cannot read it if it is confined (Ubuntu's
                # snaps: a /tmp of their own) or elsewhere (WSL's: a Windows browser).
                address = (server.url if server.own_user_only
                           else launch_page(launch.enter_context(temporary_folder("veil-review-")), server.url).as_uri())
                # From a thread: a browser named by $BROWSER (or a text one) is waited for until it
                # exits, and the server, not serving until this returned, never answered it.
                threading.Thread(target=open_browser, args=(address,), daemon=True).start()
            try:
                server.run()
            finally:
                if cut_short := session.export_stopped():
                    say(f"veil review: WARNING: {cut_short}")
    finally:
        listening.close()
        lock.release()


def launch_page(folder: Path, url: str) -> Path:
    """A page that leads the browser on to `url`, the address with the one-time code, written
    (mode 0600) in `folder`, a private temporary folder. Where connections' owners cannot be
    checked (`veil.review.peer`), the browser is started on this page, as Jupyter does: started on
    the address itself, it has the code on its command line, which every local user can read (ps,
    /proc/PID/cmdline), and one of them could redeem it first, taking the session's cookie, and
    with it the original photos and videos, the edits and the export."""
    path = folder / "open-review.html"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as page:
        page.write(page_leading_to(url))
    return path


def open_browser(address: str) -> None:
    if not webbrowser.open(address):
        say("veil review: no browser could be started: open the address above in one")


def take_options(plan: Plan, resumed: bool, settings: RenderSettings, encoding: Encoding, analysis: Analysis,
                 ctx: typer.Context, told: list[str]) -> None:
    """The options typed on the command line, into a saved plan (see `with_options_given`). A
    review resumed by the same command keeps its detection; detection options that ask for
    another one are refused: the review would go on without what they ask for."""
    known = len(plan.edits)
    with_options_given(plan, settings, encoding, ctx, resumed)
    for edit in plan.edits[known:]:  # the page shows the regions alone: a setting changed is said here
        tell(told, f"--{edit.detail['setting'].replace('_', '-')} {setting_shown(edit.detail['to'])}: over the "
                   f"saved review's {setting_shown(edit.detail['from'])}")
    if not (resumed and (flags := detection_flags(ctx))):
        return
    if other := detection_asked_otherwise(plan, analysis, given_options(ctx, DETECTION_OPTIONS)):
        raise SessionError(f"the saved review in progress was detected with other settings than {flags} "
                           f"({', '.join(other)}): leave {'them' if ',' in flags else 'it'} out to continue it, or choose another "
                           "--save-plan to detect afresh")
    tell(told, f"{flags} not run again: the resumed review was detected with them")


def setting_shown(value: object) -> str:
    """A setting as it is typed: a colour as #RRGGBB, a flag on or off; none set, veil's default."""
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return color_text(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return "the default" if value is None else str(value)


def detection_asked_otherwise(plan: Plan, analysis: Analysis, given: Collection[str]) -> list[str]:
    """What of `analysis` differs from the detection the plan's files were planned with, of the
    options `given` (typed): one left out asks nothing (a resume that changed --shape alone was
    refused as if it had left out --accurate too)."""
    differ: list[str] = []
    for media in plan.media:
        record = media.detection
        if "accurate" in given and "profile" in record and record["profile"] != analysis.profile.name:
            differ.append(f"{media.path} was detected with --accurate" if record["profile"] == "accurate"
                          else f"{media.path} was detected without --accurate")
        if "hide" in given and "hide" in record and set(record["hide"]) != set(analysis.hide):
            differ.append(f"{media.path} was looked at for {', '.join(record['hide'])}")
        if "shape" in given and any(r.kind == "face" and r.source == "detector" and r.shape != analysis.shape
                                    for r in media.regions):
            differ.append(f"{media.path}'s faces have another --shape")
        if "salvage" not in given:
            continue
        if media.kind == "image" and media.detection.get(SALVAGED, False) and not analysis.salvage:
            differ.append(f"{media.path} was read with --salvage")
        if media.kind == "video" and (media.salvaged_damage() is not None) != analysis.salvage:
            differ.append(f"{media.path} was read {'without' if analysis.salvage else 'with'} --salvage")
    return differ


def open_session(paths: list[Path], plan_file: Path | None, save_plan: Path | None, output_dir: Path | None,
                 report: Path | None, settings: RenderSettings, analysis: Analysis,
                 overwrite: bool = False,
                 given: Callable[[Plan, bool], None] = lambda plan, resumed: None,
                 hold: Callable[[Path], None] = lambda plan_path: None,
                 encoding: Encoding = Encoding(), told: list[str] | None = None) -> ReviewSession:
    """Load or make the plan, and decide where it, the outputs and the report are written.

    A saved plan (`plan_file`, or one resumed: `given`'s second argument) takes the options
    typed on the command line through `given`. Outputs and a report that exist already (a reviewed export, say), and a
    `save_plan` file other than the plan loaded, are refused unless `overwrite`: a second
    review must not replace the first one's work unasked. `hold` is handed the plan's path
    before the plan is read or made (the command locks it there). `encoding`: a new plan's
    encoding settings (a saved one's are its own, but for those `given` changes). `told`: the
    lines said so far of the review as a whole, which the session keeps for its report, with those
    said here.
    """
    told = [] if told is None else told
    if plan_file is not None:
        # The plan is saved where it lies, through a link too (saved at the link, it replaced the
        # link with a file, and a second review through that name took another lock).
        plan_path = real_path(save_plan or plan_file)
        hold(plan_path)
        report_path = run_files_checked(plan_path, report)
        try:
            plan = Plan.load(plan_file)
        except PlanError as error:
            raise SessionError(f"{shown(plan_file)}: {error}") from None
        check_media(plan)
        planned_paths = {real_path(m.path) for m in plan.media}
        if outside := [p for p in paths if real_path(p) not in planned_paths]:  # the review would pass them by unsaid
            raise SessionError(f"{shown(outside[0])} is not in the plan {shown(plan_file)}: review it without --plan, "
                               "or leave it out")
        say_provenance(plan, told)
        say_never_planned(plan, told)
        given(plan, False)
        if save_plan is not None and save_plan.exists() and not overwrite and not os.path.samefile(save_plan, plan_file):
            raise SessionError(f"{save_plan} exists: use --overwrite to replace it")
        planned = [Path(m.path) for m in plan.media]
        # Side by side, as a review begun with these files named one by one names them (the way a
        # review is continued), unless two share a name (a camera's day1/ and day2/): then as
        # `veil --plan` mirrors them. Where a run or an earlier export left them, the manifest says.
        bases = [p.parent for p in planned] if len({p.name for p in planned}) == len(planned) else mirrored_bases(planned)
        placed = [Input(path, base, m.kind) for path, base, m in zip(planned, bases, plan.media)]
    else:
        inputs, skipped = collect_inputs(paths)
        for skip in skipped:
            if skip.unreadable:  # its faces would go unreviewed, and unhidden
                raise SessionError(f"{shown(skip.path)}: {skip.reason}")
        if not inputs:
            raise SessionError("no photos or videos given (or found in the folders given)")
        for item in inputs:  # said before the plan is locked or read: the name is what is wrong
            if not item.source.exists():
                raise SessionError(f"{shown(item.source)}: no such file")
            if item.kind is None or not item.source.is_file():
                raise SessionError(f"{shown(item.source)}: not a photo, video or sound file")
        first = inputs[0].source
        plan_path = real_path(save_plan or first.with_name(first.name + PLAN_SUFFIX))
        hold(plan_path)
        report_path = run_files_checked(plan_path, report)
        plan = resume(plan_path, [i.source for i in inputs], told, overwrite)
        if plan is not None:
            given(plan, True)
        else:
            plan = detect(inputs, settings, encoding, analysis)
        # Named as a run over the same paths names them (the plan's files are these, in order).
        placed = inputs
    check_folder_writable(plan_path.parent, "cannot save the plan in {}: choose a writable place with --save-plan")
    # Every file the session will write is checked before it writes any.
    claims = OutputClaims(Path(m.path) for m in plan.media)
    claims.claim(plan_path, "the plan")
    manifest = output_dir / MANIFEST_NAME if output_dir is not None else None
    if manifest is not None:  # as a run places them
        try:
            made = read_manifest(manifest)
        except OSError as error:
            raise SessionError(f"cannot read the manifest {shown(manifest)}: {error.strerror or error}") from None
        placed = placed_as_made(placed, made, output_dir)
    try:
        # Outputs where the manifest records them first: no other file takes their names (`Input.recorded`).
        targets = {n: claims.claim(output_path(item.source, item.base, None, output_dir, m.kind), item.owner)
                   for n, (item, m) in sorted(enumerate(zip(placed, plan.media)), key=lambda e: not e[1][0].recorded)}
        targets = [targets[n] for n in range(len(placed))]
    except OSError as error:  # a folder on the way that may not be looked in, a path too long
        raise SessionError(f"cannot write the outputs in {shown(output_dir or Path(plan.media[0].path).parent)}: "
                           f"{error.strerror or error}") from None
    for path in report_paths(report_path):
        claims.claim(path, "the report")
    if manifest is not None:  # the exports are recorded there, as a run's outputs are (appended to)
        claims.claim(manifest, "the manifest", run_file=True)
        check_writable(manifest, True, "the manifest", appended=True)
        if not appendable(manifest):
            raise SessionError(f"{shown(manifest)} is not a veil manifest (its first line is not a record): move it out "
                               "of the output folder, or choose another --output-dir")
        if manifest.exists() and not os.access(manifest, os.W_OK):  # found now, not at the export
            raise SessionError(f"cannot write the manifest {shown(manifest)}: it is not writable; choose another "
                               "--output-dir")
    replaced = outputs_of_others_replaced(placed, targets, made, overwrite) if manifest is not None else []
    for target in targets:  # found now, not after the reviewer's work, when the export would fail
        check_writable(target, overwrite, "the output")
    for path in report_paths(report_path):  # (its name was checked in `run_files_checked`)
        if path.exists() and not overwrite:
            raise SessionError(f"the report {path} exists: use --overwrite to replace it")
    plan.save(plan_path, overwrite=True)
    for line in replaced:
        tell(told, line)
    return ReviewSession(plan, plan_path, targets, report_path, overwrite, manifest, told)


def outputs_of_others_replaced(inputs: list[Input], targets: list[Path], made: dict[str, Record],
                               overwrite: bool) -> list[str]:
    """What the export will replace, on --overwrite, that the manifest (`made`) records as another
    input's output (`another_inputs_output`); another input's review export, or its output without
    --overwrite, is refused now."""
    owners, replaced = output_owners(made), []
    for item, target in zip(inputs, targets):
        try:
            other = another_inputs_output(made, owners, item.source, target)
        except OSError as error:
            raise SessionError(f"cannot read {shown(item.source)}: {error.strerror or error}") from None
        if other is not None and (refusal := another_inputs_refusal(other, target, overwrite)) is not None:
            raise SessionError(f"{shown(item.source)}: {refusal}")
        if other is not None:
            replaced.append(another_inputs_replaced(other, target, item.source))
    return replaced


def say_never_planned(plan: Plan, told: list[str]) -> None:
    """The files the stopped run that saved the plan never planned: the review neither shows nor
    exports them, which must not go unsaid (the page lists only the files planned)."""
    if files := plan.never_planned:
        tell(told, f"{len(files)} file(s) in no plan, left as they are by this review (the run that saved the plan "
                   f"was stopped before them; redact them in a run of their own): {first_few(files)}")


def run_files_checked(plan_path: Path, report: Path | None) -> Path:
    """The report's path (`report`, or beside the plan), once neither it nor the plan would replace
    a photo, video or sound file (a slip of --save-plan or --report: never, --overwrite or not).
    Checked before detection, which can take minutes, rather than after it."""
    report_path = report or plan_path.with_name(plan_path.name.removesuffix(PLAN_SUFFIX).removesuffix(".json")
                                                + REPORT_SUFFIX)
    for path, what in [(plan_path, "the plan"), *((p, "the report") for p in report_paths(report_path))]:
        try:
            media = media_at(path)
        except OSError as error:  # a name too long, a folder that may not be searched
            raise SessionError(f"cannot write {what} {shown(path)}: {error.strerror or error}") from None
        if media:
            raise SessionError(f"{what} {shown(path)} would replace {media}: name another file")
        if other := not_a_file(path):
            raise SessionError(replacing_refused(path, other, what))
    return report_path


def say_provenance(plan: Plan, told: list[str]) -> None:
    for note in plan.provenance_notes():
        tell(told, f"the plan {plan.loaded_from}: {note}")


def resume(plan_path: Path, sources: list[Path], told: list[str], overwrite: bool = False) -> Plan | None:
    """The saved plan of an earlier session for the same files, or None if there is none (or
    it is for other files and `overwrite` says it may be replaced)."""
    if not plan_path.exists():
        return None
    try:
        plan = Plan.load(plan_path)
    except PlanError as error:  # a photo named by a slip of --save-plan is never replaced, --overwrite or not
        raise SessionError(f"{shown(plan_path)} exists and is not a plan veil can continue ({error}): "
                           "choose another file with --save-plan") from None
    if [real_path(m.path) for m in plan.media] != [real_path(s) for s in sources]:
        if overwrite:
            tell(told, f"replacing {plan_path}, a plan for other files (--overwrite)")
            return None
        raise SessionError(f"{plan_path} exists and is a plan for other files: continue it with --plan, "
                           "choose another file with --save-plan, or replace it with --overwrite")
    check_media(plan)
    say_provenance(plan, told)
    say(f"resuming the review saved in {plan_path} ({len(plan.edits)} edit(s) so far)")
    return plan


def detect(inputs: list[Input], settings: RenderSettings, encoding: Encoding, analysis: Analysis) -> Plan:
    plan = Plan(render=settings, encoding=encoding)
    for number, item in enumerate(inputs, 1):
        say(f"[{number}/{len(inputs)}] detecting in {item.source}")
        result = redact_file(FileTask(item.source, item.kind, None, settings, plan.encoding, analysis),
                             show_progress=True)
        if result.media is None:
            raise SessionError(f"{item.source}: {result.error}")
        plan.media.append(result.media)
    return plan


def check_media(plan: Plan) -> None:
    """Every file of the plan must be there, unchanged: boxes for another file hide the wrong pixels."""
    if not plan.media:
        raise SessionError("the plan lists no media files")
    for media in plan.media:
        path = Path(media.path)
        if not path.is_file():
            raise SessionError(f"{path}: the plan's media file is missing")
        if media.sha256 and file_sha256(path) != media.sha256:
            raise SessionError(f"{path}: the file has changed since the plan was made (SHA-256 differs)")
        if media.kind == "image":  # found now, not at the export, after the reviewer's work
            try:
                refuse_unsalvaged_plan(media, f"review it from a plan made with --salvage: veil review "
                                              f"{shlex.quote(str(path))} --salvage")
            except ImageError as error:
                raise SessionError(f"{path}: {error}") from None


class ReviewLock:
    """The plan a review edits, held while the review runs (`veil.plan_lock`): a second `veil review`
    of it (the first server forgotten in another terminal), or a run saving it, would save over the
    review's edits, each page showing its own, and a face the first one drew would be gone at the
    next resume."""

    def __init__(self) -> None:
        self.lock = PlanLock()

    def take(self, plan_path: Path) -> None:
        check_folder_writable(plan_path.parent, "cannot save the plan in {}: choose a writable place with --save-plan")
        try:
            unlockable = self.lock.take(plan_path)
        except PlanLocked as locked:
            raise SessionError(f"{shown(plan_path)} is being reviewed by another veil review (it holds "
                               f"{shown(locked.args[0])}): stop that one first (Ctrl+C in its terminal), or choose "
                               "another --save-plan") from None
        except OSError as error:
            raise SessionError(f"cannot lock the plan {shown(plan_path)} ({shown(lock_path(plan_path))}: "
                               f"{error.strerror}): choose another place with --save-plan") from None
        if unlockable is not None:
            say(f"veil review: cannot lock {shown(lock_path(plan_path))} ({unlockable}): a second review of "
                "this plan at the same time would go unnoticed")

    def release(self) -> None:
        self.lock.release()


def check_folder_writable(folder: Path, message: str) -> None:
    # os.access rather than a probe file: nothing is written beside the inputs before export.
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise SessionError(message.format(folder))


def listening_socket(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1 (loopback only) at `port` (0: any free one)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", port))
        # Listening before the address is printed: a browser opened at once must not be refused.
        listening.listen()
    except OSError:
        listening.close()
        raise
    return listening


class ReviewServer:
    """uvicorn serving one session on 127.0.0.1 (loopback only), on a port bound up front
    (`listening`, or one bound here at `port`)."""

    def __init__(self, session: ReviewSession, port: int = 0, listening: socket.socket | None = None):
        self.socket = listening if listening is not None else listening_socket(port)
        self.port = self.socket.getsockname()[1]
        self.token = secrets.token_urlsafe(24)  # the cookie's value: never in an address or on a command line
        self.codes = LaunchCodes(self.announce)
        # Where the system shows whose each connection is, only this user's programs take a code.
        self.own_user_only = sees_own_connections(self.socket)
        self.app = create_app(session, self.token, self.port, self.codes, say, own_user_only=self.own_user_only)
        self.root = self.app.state.root  # the page's path, under which alone the cookie is sent
        # No proxy headers: uvicorn takes a loopback peer's X-Forwarded-For for the client's address,
        # and the launch code's exchange looks up that address's owner (`veil.review.peer`).
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                    proxy_headers=False))
        self.thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The address with the live one-time launch code: for the terminal and the launch page, never
        a command line (`launch_page`)."""
        return f"{self.base}/?code={self.codes.current}"

    def announce(self) -> None:
        say(f"the review page was opened; to open it in another browser: {self.url}")

    def run(self) -> None:
        """Serve until stopped. A closed terminal (SIGHUP) stops it as Ctrl+C does: uvicorn handles
        SIGINT and SIGTERM only, and veil's own stop, raised inside its event loop, came out as a
        traceback; it is raised again once the server has shut down."""
        # Signals reach the main thread only; a review started under nohup outlives its terminal.
        if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
            self.server.run(sockets=[self.socket])
            return
        hung_up: list[int] = []

        def hang_up(signum: int, frame: FrameType | None) -> None:
            hung_up.append(signum)
            self.server.handle_exit(signum, frame)

        before = signal.signal(signal.SIGHUP, hang_up)
        try:
            self.server.run(sockets=[self.socket])
        finally:
            signal.signal(signal.SIGHUP, before)
        if hung_up:
            signal.raise_signal(signal.SIGHUP)

    def start(self) -> None:
        """Serve from a background thread (tests); returns once the server accepts requests."""
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join()
        self.socket.close()
