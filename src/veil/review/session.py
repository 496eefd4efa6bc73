"""A review session: the plan being reviewed, every edit operation, undo/redo, export.

Every edit changes the plan, is logged as an `Edit` in `plan.edits` (for the audit
report), and is saved to the plan file atomically before the call returns, so a closed
browser or a killed server loses nothing. Undo keeps snapshots of the regions of the one
media file an edit touched (not the whole plan: an hour of video holds hundreds of
thousands of boxes in other files), and undo/redo are logged as edits too.

The session is shared by the web server's worker threads, so every access to the plan
goes through `self.lock`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from veil.batch import BatchError
from veil.manifest import REVIEWED, ManifestWriter, Record, leave_out_note, recorded_name, settings_fingerprint
from veil.names import dated_names_note, first_few, published_name, shown
from veil.options import color_text
from veil.pipeline import FileResult, one_line, unexpected_error
from veil.plan import Box, Edit, Kind, MediaPlan, Plan, Region, drawn_shape, now_iso
from veil.report import ALL_MEDIA, Written, report_paths

# Enough to walk back a long review session; each entry is one file's regions.
UNDO_LIMIT = 200
# The smallest region a reviewer can draw, in pixels: smaller is a mis-click.
MIN_SIDE = 2.0
SHAPES = ("ellipse", "box")
# The shortest speech segment a reviewer can mark, in seconds: shorter is a mis-click, and
# less than the fades around a muted segment.
MIN_SEGMENT_S = 0.05


class EditError(ValueError):
    """An edit the plan cannot take: unknown region or frame, bad box, missing reason."""


class NotFound(EditError):
    """The media file or region the edit names is not in this session."""


class PlanNotSaved(Exception):
    """An edit made in the session that could not be saved to the plan file."""


class PlanChangedOutside(PlanNotSaved):
    """The plan file was changed on disk by something other than this review since it last saved it."""


@dataclass
class Snapshot:
    """The regions of the media files an edit changed, as they were before it, and the region it
    changed (None: many, as an uploaded plan does): an undo is logged against it, so the report lists
    it under that region beside the edit it undid."""

    regions: dict[int, list[Region]]
    action: str
    region: str | None = None


# Renders one media file to a target path with the plan's render and encoding settings:
# veil.pipeline.render_planned in production.
# Its last argument: whether a file at the target may be replaced.
Renderer = Callable[[MediaPlan, Any, Any, Path, bool], FileResult]
# Writes the audit report: veil.report.write_report in production. Its arguments: the plan, the
# outputs written, where, whether a file there may be replaced, and the files that failed; by
# name, `run_notes`: what the review said of itself.
ReportWriter = Callable[..., None]


# A file as it stands: device, inode, size and modification time. Another file put at the name,
# or the same one written to, has another.
FileIdentity = tuple[int, int, int, int]


def file_identity(path: Path) -> FileIdentity | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def folder_identity(path: Path) -> tuple[int, int] | None:
    """The folder at `path` itself (not its contents, which change as files are saved in it)."""
    identity = file_identity(path)
    return None if identity is None else identity[:2]


def output_names(outputs: dict[str, Written]) -> dict[str, str]:
    """Each input's output, by name: as the page shows them and the plan's log records them."""
    return {path: written.name for path, written in outputs.items()}


def export_failure(error: Exception) -> str:
    """Why a file of an export failed, in one line: the file's own problem as it is said, anything
    else named for what it is."""
    return one_line(error) if isinstance(error, (ValueError, OSError)) else unexpected_error(error)


@dataclass
class ExportState:
    state: str = "idle"  # idle, running, done, failed
    done: int = 0
    total: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    report: str | None = None
    error: str | None = None
    revision: int | None = None  # the plan's revision the export rendered
    notes: list[str] = field(default_factory=list)  # advice on the outputs before they are published


class ReviewSession:
    def __init__(self, plan: Plan, plan_path: Path, targets: list[Path], report_path: Path, overwrite: bool = False,
                 manifest: Path | None = None, run_notes: list[str] | None = None):
        if len(targets) != len(plan.media):
            raise ValueError("one output path per media file is needed")
        self.plan = plan
        self.plan_path = plan_path
        self.targets = targets
        self.report_path = report_path
        # The output folder's manifest (--output-dir), where each exported file is recorded as a
        # run's outputs are: unrecorded, the next run into that folder warned of them as files of
        # the user's, perhaps originals.
        self.manifest = manifest
        # Files found at the targets are replaced only if the user said so (--overwrite), or
        # if this session's own export wrote them: not a file that appeared during the review.
        self.overwrite = overwrite
        # What the review said of itself rather than of one file as it started (options that acted
        # on nothing, faces not looked for, a plan changed outside veil): into the export's report.
        # (The list given, which the command goes on adding to after the session is made.)
        self.run_notes = [] if run_notes is None else run_notes
        # What this session exported, as each file stood once written: a file put at its name since
        # (the user's own, moved there after the first export) is not this session's to replace.
        self.exported: dict[Path, FileIdentity | None] = {}
        # The plan file as this session last wrote it: one changed since (by hand, by another
        # program) is not saved over, nor exported without its change (`_check_plan_file`).
        self.saved_as = file_identity(plan_path)
        # The plan's folder as the review began: one moved or removed since (a case folder taken
        # off a shared disk) was made again at its old place for the plan, and then the report, to
        # be written there, out of the lock's guard, which stayed with the moved plan.
        self.plan_folder = folder_identity(plan_path.parent)
        self.lock = threading.RLock()
        self.revision = 0  # bumped on every change to regions: previews are cached by it, pages follow it
        self.undo_stack: list[Snapshot] = []
        self.redo_stack: list[Snapshot] = []
        self.export_state = ExportState()

    # --- lookup -------------------------------------------------------------

    def media(self, index: int) -> MediaPlan:
        if not 0 <= index < len(self.plan.media):
            raise NotFound(f"no media file {index} in this session")
        return self.plan.media[index]

    def region(self, index: int, region_id: str) -> Region:
        try:
            return self.media(index).region(region_id)
        except KeyError:
            raise NotFound(f"no region {region_id!r} in media file {index}") from None

    def pictured(self, index: int, region_id: str) -> Region:
        """A region hidden in the picture: speech has no boxes or shape to edit."""
        region = self.region(index, region_id)
        if region.kind == "speech":
            raise EditError(f"{region_id} is a speech segment: it has times, not boxes")
        return region

    def segment(self, index: int, region_id: str) -> Region:
        region = self.region(index, region_id)
        if region.kind != "speech":
            raise EditError(f"{region_id} is not a speech segment")
        return region

    # --- edit operations ----------------------------------------------------

    def delete_box(self, index: int, region_id: str, frame: int, reason: str | None = None) -> None:
        """Remove one frame's box of a track (a false detection); an empty track goes."""
        with self.lock:
            media, region = self.media(index), self.pictured(index, region_id)
            if frame not in region.boxes:
                raise EditError(f"region {region_id} has no box in frame {frame}")
            self._before(index, "delete_box", region_id)
            box = region.boxes.pop(frame)
            if not region.boxes:
                media.regions.remove(region)
            # Its kind said: the report lists a track emptied box by box as deleted, and nothing else of it.
            self._log(media, "delete_box", region_id, {"frame": frame, "box": box_detail(box), "kind": region.kind},
                      reason)

    def delete_region(self, index: int, region_id: str, reason: str | None = None) -> None:
        """Remove a whole track (or a photo's region)."""
        with self.lock:
            media, region = self.media(index), self.region(index, region_id)
            self._before(index, "delete_region", region_id)
            media.regions.remove(region)
            self._log(media, "delete_region", region_id, region_detail(region), reason)

    def add_region(self, index: int, frame: int, shape: str, coords: list[float], reason: str | None = None,
                   kind: Kind = "face") -> str:
        """A new region drawn by the reviewer on one frame; returns its id."""
        with self.lock:
            media = self.media(index)
            if media.kind == "audio":
                raise EditError("a sound file has no picture to hide anything in: mark speech in time instead")
            check_frame(media, frame)
            check_shape(shape, kind)
            box = reviewer_box(media, coords)
            region_id = self._new_id(media, "r")
            self._before(index, "add_region", region_id)
            region = Region(id=region_id, source="reviewer", shape=shape, boxes={frame: box}, kind=kind)
            media.regions.append(region)
            self._log(media, "add_region", region.id,
                      {"frame": frame, "shape": shape, "kind": kind, "box": box_detail(box)}, reason)
            return region.id

    def set_box(self, index: int, region_id: str, frame: int, coords: list[float], reason: str | None = None) -> None:
        """Move or resize a region in one frame (or give a track a box in a frame it lacked)."""
        with self.lock:
            media, region = self.media(index), self.pictured(index, region_id)
            check_frame(media, frame)
            box = reviewer_box(media, coords)
            self._before(index, "set_box", region_id)
            old = region.boxes.get(frame)
            region.boxes[frame] = box
            detail = {"frame": frame, "box": box_detail(box), "was": box_detail(old) if old else None}
            self._log(media, "set_box", region_id, detail, reason)

    def set_shape(self, index: int, region_id: str, shape: str, reason: str | None = None) -> None:
        with self.lock:
            media, region = self.media(index), self.pictured(index, region_id)
            check_shape(shape, region.kind)
            self._before(index, "set_shape", region_id)
            was, region.shape = region.shape, shape
            self._log(media, "set_shape", region_id, {"shape": shape, "was": was}, reason)

    def set_keep_visible(self, index: int, region_id: str, keep: bool, reason: str | None) -> None:
        """Show a consenting person, or leave a voice audible (a reason is required), or hide them again."""
        with self.lock:
            media, region = self.media(index), self.region(index, region_id)
            reason = (reason or "").strip() or None
            if keep and reason is None:
                what = "a voice audible" if region.kind == "speech" else "a person visible"
                raise EditError(f"keeping {what} needs a reason (e.g. who consented, and how)")
            self._before(index, "keep_visible" if keep else "hide", region_id)
            region.keep_visible = keep
            region.reason = reason if keep else None
            self._log(media, "keep_visible" if keep else "hide", region_id, {"keep_visible": keep}, reason)

    def add_segment(self, index: int, start: float, end: float, reason: str | None = None) -> str:
        """A speech segment the detector missed, marked by the reviewer; returns its id."""
        with self.lock:
            media = self.media(index)
            start, end = segment_times(media, start, end)
            region_id = self._new_id(media, "speech")
            self._before(index, "add_segment", region_id)
            region = Region(id=region_id, source="reviewer", kind="speech", start=start, end=end)
            media.regions.append(region)
            self._log(media, "add_segment", region.id, {"start": start, "end": end}, reason)
            return region.id

    def set_segment(self, index: int, region_id: str, start: float, end: float, reason: str | None = None) -> None:
        """Move a speech segment's start and end (a voice heard before or after it)."""
        with self.lock:
            media, region = self.media(index), self.segment(index, region_id)
            start, end = segment_times(media, start, end)
            self._before(index, "set_segment", region_id)
            was = [region.start, region.end]
            region.start, region.end = start, end
            self._log(media, "set_segment", region_id, {"start": start, "end": end, "was": was}, reason)

    def add_boxes(self, index: int, region_id: str, boxes: dict[int, Box], detail: dict[str, Any],
                  reason: str | None = None) -> int:
        """Give a track the boxes a tracker followed (only in frames it had none); returns how many."""
        with self.lock:
            media, region = self.media(index), self.pictured(index, region_id)
            new = {f: b for f, b in boxes.items() if f not in region.boxes and 0 <= f < media.frame_count}
            self._before(index, "extend", region_id)
            region.boxes.update(new)
            self._log(media, "extend", region_id, {**detail, "frames_added": len(new)}, reason)
            return len(new)

    def replace_plan(self, data: dict[str, Any], reason: str | None = None) -> list[str]:
        """Take the regions of an uploaded plan (its JSON) for the same media files. They are
        judged against this session's media (its size, frames, sound), not against the upload's
        own description of them, which could make a box that hides nothing look valid.

        Only the regions: the review's render and encoding settings (how regions are hidden, whether
        speech is treated) stay those its command line set, shown on the page, and which an undo
        (of regions) would not have put back; a file's could turn muted voices into kept ones, or a
        pixelation into one fine enough to recognise a face by. Returns the upload's settings that
        differ, so that the reviewer is told they were not taken."""
        uploaded = Plan.from_json(data)
        with self.lock:
            mine = [(m.path, m.sha256) for m in self.plan.media]
            theirs = [(m.path, m.sha256) for m in uploaded.media]
            if mine != theirs:
                raise EditError("the uploaded plan is for other media files than this session's")
            own = self.plan.to_json()
            for entry, new in zip(own["media"], data["media"]):
                entry["regions"] = new["regions"]
            checked = Plan.from_json(own)
            for media, new in zip(self.plan.media, checked.media):
                new.regions = sources_kept(media.regions, new.regions)
                self._check_uploaded(media, new.regions)
            snapshot = Snapshot({i: copy.deepcopy(m.regions) for i, m in enumerate(self.plan.media)}, "load_plan")
            self._push(snapshot)
            for media, new in zip(self.plan.media, checked.media):
                # Each region the upload removed, added or changed is logged as its own edit: the
                # report lists who removed each face, which one entry for the whole plan hid.
                for action, region_id, detail in uploaded_changes(media.regions, new.regions):
                    self._record(media, action, region_id, {**detail, "by": "an uploaded plan"}, reason)
                media.regions = new.regions
            not_taken = settings_not_taken(uploaded, self.plan)
            self._log(ALL_MEDIA, "load_plan", None, {"regions": sum(len(m.regions) for m in checked.media),
                                                     **({"settings_not_taken": not_taken} if not_taken else {})},
                      reason)
        return not_taken

    def undo(self, shown: int | None = None, seen: int | None = None) -> tuple[str, str | None]:
        """Undo the last change; `shown`: the file on the reviewer's screen, the only one an undo
        may change (a change to another file would be undone out of sight); `seen`: the revision
        the reviewer's page showed, whose last change is the one it offers to undo. The change's
        action and the region it changed (None: many), for the page to say and show."""
        return self._step(self.undo_stack, self.redo_stack, "undo", shown, seen)

    def redo(self, shown: int | None = None, seen: int | None = None) -> tuple[str, str | None]:
        return self._step(self.redo_stack, self.undo_stack, "redo", shown, seen)

    def step_label(self, stack: list[Snapshot]) -> str | None:
        """What undo or redo would change next: the action and the file (None: nothing)."""
        if not stack:
            return None
        touched = list(stack[-1].regions)
        return f"{stack[-1].action} in {self._name(touched[0]) if len(touched) == 1 else 'every file'}"

    def _name(self, index: int) -> str:
        return Path(self.plan.media[index].path).name

    # --- export ---------------------------------------------------------------

    def start_export(self, render: Renderer, write_report: ReportWriter,
                     say: Callable[[str], None] = lambda line: None) -> bool:
        """Render every output and the report in a background thread; False if one is running.
        `say` tells the terminal the export's advice on its outputs, as a run's end does."""
        with self.lock:
            if self.export_state.state == "running":
                return False
            self._check_plan_file("nothing was exported")  # before its entry is logged, in memory too
            # Logged as started: the report written by this export lists it, with where each file
            # is to be written (not that it was: the report's files say which were); what it wrote
            # is logged when it has finished (a stopped one is never said to have written).
            targets = {m.path: str(t.absolute()) for m, t in zip(self.plan.media, self.targets)}
            with contextlib.suppress(PlanNotSaved):  # the export goes ahead: its entry is saved later
                self._log(ALL_MEDIA, "export", None, {"state": "started", "to_write": targets,
                                                      "report": str(self.report_path.absolute())}, None,
                          changes_regions=False)
            # Render a copy, at this revision: edits wait until the export is done (`_not_exporting`).
            plan = copy.deepcopy(self.plan)
            self.export_state = ExportState("running", total=len(plan.media), revision=self.revision)
        thread = threading.Thread(target=self._export_or_fail, args=(plan, render, write_report, say), daemon=True)
        thread.start()
        return True

    def _export_or_fail(self, plan: Plan, render: Renderer, write_report: ReportWriter,
                        say: Callable[[str], None]) -> None:
        """The export, whose unforeseen failure is the page's to show: it printed a traceback, and
        the page waited for ever on an export still running."""
        try:
            self._export(plan, render, write_report, say)
        except Exception as error:
            with self.lock:
                self.export_state = replace(self.export_state, state="failed", error=unexpected_error(error))

    def _export(self, plan: Plan, render: Renderer, write_report: ReportWriter, say: Callable[[str], None]) -> None:
        """Every file is rendered, whether or not one before it failed (as `veil` does a batch),
        and the report then accounts for each: written, or failed and why. Outputs written with
        no report beside them would be outputs nobody can audit. With --output-dir each is also
        recorded in the folder's manifest: where that cannot be opened nothing is written, and
        once a record cannot be written the files left are not exported."""
        outputs: dict[str, Written] = {}
        failed: list[dict[str, str]] = []
        fingerprint = settings_fingerprint(REVIEWED, plan.render, plan.encoding)
        try:
            writer = (ManifestWriter(self.manifest, "the export stopped", "export into another --output-dir")
                      if self.manifest is not None else None)
        except BatchError as error:  # another run writing to it, say: nothing is written, an earlier report stands
            self._export_ended(outputs, None, [{"path": str(self.manifest), "status": "failed",
                                                "reason": f"nothing was exported: {error}"}])
            return
        unrecordable: str | None = None  # why the files left are not exported: a record could not be written
        try:
            for media, target in zip(plan.media, self.targets):
                if unrecordable is not None:
                    failed.append({"path": media.path, "status": "failed",
                                   "reason": f"not exported, since it could not be recorded: {unrecordable}"})
                else:
                    record = self._export_one(media, target, plan, render, fingerprint, outputs, failed)
                    try:
                        if writer is not None:
                            writer.append(record)
                    except BatchError as error:  # written, but in no record: the next run into the folder warns of it
                        unrecordable = str(error)
                        failed.append({"path": media.path, "status": "failed",
                                       "reason": f"exported to {shown(target)}, but not recorded: {error}"})
                with self.lock:
                    self.export_state.done += 1
                    self.export_state.outputs = output_names(outputs)  # what a stop now leaves (`export_stopped`)
        finally:
            if writer is not None:
                writer.close()
        advice = self._advice(outputs)
        for line in advice:
            say(f"veil review: {line}")
        report: str | None = None
        try:
            # Its two files (JSON and HTML) are written under one rule: each must be this session's or none.
            ours = all(self._may_replace(path) or file_identity(path) is None for path in report_paths(self.report_path))
            write_report(plan, outputs, self.report_path, ours, failed, run_notes=[*self.run_notes, *advice])
            self.exported.update((path, file_identity(path)) for path in report_paths(self.report_path))
            report = str(self.report_path)
        except Exception as error:
            failed.append({"path": str(self.report_path), "status": "failed", "reason": export_failure(error)})
        self._export_ended(outputs, report, failed, advice)

    def _advice(self, outputs: dict[str, Written]) -> list[str]:
        """What a run says of its outputs before they are published, said of the export's: the
        manifest in the output folder, and names that hold the day a photo was taken."""
        if not outputs:
            return []
        folder = self.manifest.parent if self.manifest is not None else None
        manifest_note = (leave_out_note("manifest", self.manifest, folder, "or export elsewhere")
                         if self.manifest is not None else None)
        return [note for note in (
            manifest_note,
            dated_names_note([published_name(Path(written.name), folder) for written in outputs.values()]))
            if note is not None]

    def _export_ended(self, written: dict[str, Written], report: str | None, failed: list[dict[str, str]],
                      notes: list[str] | None = None) -> None:
        """The export's outcome, shown on the page and logged in the plan."""
        outputs = output_names(written)
        error = "; ".join(f"{Path(f['path']).name}: {f['reason']}" for f in failed) or None
        with self.lock:
            total = self.export_state.total
            self.export_state = ExportState("failed" if failed else "done", total, total, outputs, report, error,
                                            self.export_state.revision, notes or [])
            with contextlib.suppress(PlanNotSaved):  # saved with the next change that can be
                self._log(ALL_MEDIA, "export_finished", None,
                          {"written": {path: str(Path(target).absolute()) for path, target in outputs.items()},
                           "failed": failed, "report": str(Path(report).absolute()) if report else None}, None,
                          changes_regions=False)

    def export_stopped(self) -> str | None:
        """Where the review stops during an export (its thread ends with the process): what it had
        written, logged in the plan as the export's end, and said as a line; None if none runs."""
        with self.lock:
            if self.export_state.state != "running":
                return None
            written = self.export_state.outputs
            self.export_state = replace(self.export_state, state="failed", error="the review was stopped")
            with contextlib.suppress(PlanNotSaved):
                self._log(ALL_MEDIA, "export_finished", None,
                          {"written": {path: str(Path(target).absolute()) for path, target in written.items()},
                           "failed": [], "stopped": True, "report": None}, None, changes_regions=False)
        left = len(self.plan.media) - len(written)
        return (f"the review was stopped during its export: {len(written)} file(s) written"
                f"{' (' + first_few([shown(Path(t)) for t in written.values()]) + ')' if written else ''}, "
                f"{left} not, and no report was written, so what was written is in no audit report: run the same "
                "`veil review` command again and export (with --overwrite, to replace those written)")

    def _export_one(self, media: MediaPlan, target: Path, plan: Plan, render: Renderer, fingerprint: str,
                    outputs: dict[str, Written], failed: list[dict[str, str]]) -> Record:
        """One file rendered (added to `outputs`, or to `failed` with why), and its manifest record."""
        try:
            result = render(media, plan.render, plan.encoding, target, self._may_replace(target))
        except Exception as error:  # shown on the page in one line; its output is not written (atomic writes)
            reason = export_failure(error)
            if target.exists():  # an earlier export's, say, made before the reviewer's later corrections
                reason += (f"; the file at {shown(target)} is an earlier one, not this export's: leave it out when "
                           "publishing, or export again once this is mended")
            failed.append({"path": media.path, "status": "failed", "reason": reason})
            return Record(recorded_name(Path(media.path)), "failed", reason=failed[-1]["reason"], settings=fingerprint)
        self.exported[target] = file_identity(target)
        outputs[media.path] = Written(str(target), result.output_sha256)
        return replace(Record.of(result, fingerprint), reason=REVIEWED)

    # --- internals ------------------------------------------------------------

    def _may_replace(self, target: Path) -> bool:
        return self.overwrite or (target in self.exported and file_identity(target) == self.exported[target])

    def _new_id(self, media: MediaPlan, prefix: str) -> str:
        # A deleted region's id is never given again: the report reads deletions from the edit log.
        return media.new_region_id(prefix, {e.region for e in self.plan.edits if e.media == media.path and e.region})

    def _check_uploaded(self, media: MediaPlan, regions: list[Region]) -> None:
        """A box an upload adds or moves on the picture must be as large as one the page's own edits
        accept: a region given again with a box of 0.1 px was reported as hidden while the face showed."""
        before = {r.id: r for r in media.regions}
        for region in regions:
            was = before.get(region.id)
            for frame, box in region.boxes.items():
                if was is not None and was.boxes.get(frame) == box:
                    continue
                inside = box.clipped(media.width, media.height)
                # A box wholly off the picture hides nothing and is reported as such (a plan's
                # track carried past an edge has them); one on it must be large enough to see.
                on_picture = inside.width > 0 and inside.height > 0
                if on_picture and (inside.width < MIN_SIDE or inside.height < MIN_SIDE):
                    raise EditError(f"the uploaded plan's region {region.id} has a box at frame {frame} under "
                                    f"{MIN_SIDE:g} pixels wide or high inside the image")

    def _before(self, index: int, action: str, region_id: str) -> None:
        self._push(Snapshot({index: copy.deepcopy(self.plan.media[index].regions)}, action, region_id))

    def _not_exporting(self) -> None:
        if self.export_state.state == "running":
            raise EditError("an export is running: edit when it is done (the files being written would not have the change)")

    def _push(self, snapshot: Snapshot) -> None:
        self._not_exporting()
        self.undo_stack.append(snapshot)
        del self.undo_stack[:-UNDO_LIMIT]
        self.redo_stack.clear()

    def _step(self, source: list[Snapshot], target: list[Snapshot], action: str, shown: int | None,
              seen: int | None) -> tuple[str, str | None]:
        with self.lock:
            if seen is not None and seen != self.revision:
                # Another window changed the plan since: its change, not the one this page named,
                # would be undone (a face drawn there left unhidden, and not a word to it).
                raise EditError(f"the plan was changed in another window since this page showed it: nothing was "
                                f"{action}ne; the page now shows the change, {action} again if it is still meant")
            if not source:
                raise EditError(f"nothing to {action}")
            touched = list(source[-1].regions)
            if len(touched) == 1 and touched[0] != shown:
                raise EditError(f"the change to {action} was made in {self._name(touched[0])}: "
                                f"open it to {action} it")
            self._not_exporting()
            snapshot = source.pop()
            target.append(Snapshot({i: self.plan.media[i].regions for i in snapshot.regions}, snapshot.action,
                                   snapshot.region))
            for i, regions in snapshot.regions.items():
                self.plan.media[i].regions = regions
            touched = [self.plan.media[i] for i in snapshot.regions]
            self._log(touched[0] if len(touched) == 1 else ALL_MEDIA, action, snapshot.region, {"action": snapshot.action},
                      None)
            return snapshot.action, snapshot.region

    def _record(self, media: MediaPlan | str, action: str, region: str | None, detail: dict[str, Any],
                reason: str | None) -> None:
        """Adds an action to the plan's log, unsaved (`_log` saves)."""
        path = media if isinstance(media, str) else media.path
        self.plan.edits.append(Edit(now_iso(), path, action, region, detail, (reason or "").strip() or None))

    def _log(self, media: MediaPlan | str, action: str, region: str | None, detail: dict[str, Any], reason: str | None,
             changes_regions: bool = True) -> None:
        """Logs an action in the plan and saves it. The revision, by which previews are cached and
        other windows follow, moves only when regions change (an export's entry changes none)."""
        self._record(media, action, region, detail, reason)
        self.revision += changes_regions
        self._check_plan_file("this change is made here but not saved")
        try:
            self.plan.save(self.plan_path, overwrite=True)
            self.saved_as = file_identity(self.plan_path)
        except (OSError, ValueError) as error:  # a full disk, a folder put in the plan's place (OutputError)
            # The change stands in the session (the page shows it, an export writes it): the
            # reviewer is told it is not on disk yet, rather than that it failed.
            raise PlanNotSaved(f"the change is made, but the plan could not be saved ({one_line(error)}): it is "
                               "saved with the next change that can be, and lost if the review stops before") from None

    def _check_plan_file(self, consequence: str) -> None:
        """Another file put at the plan's name, or the plan written to, since this session saved it
        (a plan removed is written again; a folder in its place fails the save, said as such), or
        its folder moved or removed."""
        if folder_identity(self.plan_path.parent) != self.plan_folder:
            raise PlanChangedOutside(
                f"the plan's folder {shown(self.plan_path.parent)} was moved or removed since the review began: "
                f"{consequence}, so that no plan is written at its old place; stop the review (Ctrl+C) and start it "
                "again on the plan where it is now")
        if self.plan_path.is_file() and file_identity(self.plan_path) != self.saved_as:
            raise PlanChangedOutside(
                f"the plan {shown(self.plan_path)} was changed outside this review since the review last saved it, "
                f"and its changes are not on this page: {consequence}, so that they are neither overwritten nor "
                "left out; stop the review (Ctrl+C) and start it again on that plan to see them")


def check_frame(media: MediaPlan, frame: int) -> None:
    if not 0 <= frame < max(1, media.frame_count):
        raise EditError(f"frame {frame} is outside 0..{max(1, media.frame_count) - 1}")


def check_shape(shape: str, kind: Kind) -> None:
    if shape not in SHAPES:
        raise EditError(f"shape must be one of {', '.join(SHAPES)}")
    if drawn_shape(kind, shape) != shape:
        raise EditError(f"a region of kind {kind} is hidden as a box: an ellipse would leave its corners visible")


def reviewer_box(media: MediaPlan, coords: list[float]) -> Box:
    """A reviewer's box from [x0, y0, x1, y1], checked. It is kept as given where it reaches past
    the picture's edge, as a detector's head box often does: the ellipse is drawn in the whole
    box, so clipping the box would shrink the ellipse and uncover the crown of a head at the top
    edge when the reviewer only nudged it. Only its part inside the picture must be large enough,
    and it may reach past an edge by at most the picture's own size (farther, a typing slip)."""
    if len(coords) != 4 or not all(isinstance(c, (int, float)) and math.isfinite(c) for c in coords):
        raise EditError("a box is four finite numbers [x0, y0, x1, y1]")
    x0, y0, x1, y1 = coords
    box = Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), "reviewer", None)
    inside = box.clipped(media.width, media.height)
    if inside.width < MIN_SIDE or inside.height < MIN_SIDE:
        raise EditError(f"a region must be at least {MIN_SIDE:g} pixels wide and high inside the image")
    if box.x0 < -media.width or box.y0 < -media.height or box.x1 > 2 * media.width or box.y1 > 2 * media.height:
        raise EditError(f"a box may reach past the picture's edge by at most the picture's size "
                        f"({media.width} x {media.height})")
    return box


def sound_seconds(media: MediaPlan) -> float | None:
    """How long the file's sound is (as speech detection read it); None: the file has no sound."""
    record = media.detection.get("speech")
    return record.get("sound_seconds") if record else None


def segment_times(media: MediaPlan, start: float, end: float) -> tuple[float, float]:
    """A reviewer's segment [start, end] in seconds, clipped to the sound and checked."""
    length = sound_seconds(media)
    if length is None:
        raise EditError("this file has no sound: there is no speech to mark")
    if not all(isinstance(t, (int, float)) and math.isfinite(t) for t in (start, end)):
        raise EditError("a segment is two finite numbers of seconds, start and end")
    start, end = round(max(0.0, min(start, length)), 3), round(max(0.0, min(end, length)), 3)
    if end - start < MIN_SEGMENT_S:
        raise EditError(f"a segment must end at least {MIN_SEGMENT_S:g} s after it starts, "
                        f"within the sound (0-{length:g} s)")
    return start, end


def settings_not_taken(uploaded: Plan, own: Plan) -> list[str]:
    """The uploaded plan's render and encoding settings that differ from the review's own, each
    with the review's ("mode pixelate (this review's: fill)")."""
    theirs, mine = settings_said(uploaded), settings_said(own)
    return [f"{name} {theirs[name]} (this review's: {mine[name]})" for name in theirs if theirs[name] != mine[name]]


def settings_said(plan: Plan) -> dict[str, str]:
    """A plan's render and encoding settings as the command line writes them."""
    settings = {**asdict(plan.render), **plan.encoding.settings()}
    settings["color"] = color_text(plan.render.color)
    return {name: "veil's default" if value is None else str(value) for name, value in settings.items()}


def sources_kept(before: list[Region], after: list[Region]) -> list[Region]:
    """An upload's regions, each with the source it had in the session, and each box the upload
    adds or moves the reviewer's (no score): whatever the upload claims, a region or box no
    detector found does not read as the detector's in the report."""
    old = {r.id: r for r in before}
    return [replace(r, source=old[r.id].source if r.id in old else "reviewer",
                    boxes={frame: box if r.id in old and old[r.id].boxes.get(frame) == box
                           else replace(box, origin="reviewer", score=None) for frame, box in r.boxes.items()})
            for r in after]


def uploaded_changes(before: list[Region], after: list[Region]) -> list[tuple[str, str, dict[str, Any]]]:
    """What an uploaded plan did to one file's regions, region by region: (action, id, detail)."""
    old, new = {r.id: r for r in before}, {r.id: r for r in after}
    return ([("delete_region", i, region_detail(r)) for i, r in old.items() if i not in new]
            + [("add_region", i, region_detail(r)) for i, r in new.items() if i not in old]
            + [("replace_region", i, replaced_detail(old[i], r)) for i, r in new.items() if i in old and r != old[i]])


def replaced_detail(was: Region, now: Region) -> dict[str, Any]:
    """What an uploaded plan changed in a region: its shape, whether it is kept visible and why,
    and the frames whose boxes moved, came or went (a nudged box told from a face let show)."""
    detail: dict[str, Any] = {name: {"was": getattr(was, name), "now": getattr(now, name)}
                              for name in ("shape", "keep_visible", "reason", "start", "end", "kind", "source")
                              if getattr(was, name) != getattr(now, name)}
    frames = sorted(f for f in {*was.boxes, *now.boxes} if was.boxes.get(f) != now.boxes.get(f))
    if frames:
        detail["frames_changed"] = frames[:50] + (["..."] if len(frames) > 50 else [])
        detail["boxes"] = {"was": len(was.boxes), "now": len(now.boxes)}
    return detail


def region_detail(region: Region) -> dict[str, Any]:
    """What a deleted region was and covered, for the audit log (the region itself is gone from the plan)."""
    if region.kind == "speech":
        return {"kind": "speech", "start": region.start, "end": region.end}
    return {"kind": region.kind, "source": region.source, "first_frame": region.first_frame,
            "last_frame": region.last_frame, "boxes": len(region.boxes)}


def box_detail(box: Box) -> list[float]:
    return [round(box.x0, 1), round(box.y0, 1), round(box.x1, 1), round(box.y1, 1)]
