"""The audit report: what was hidden, by whom, from which model, in which files.

It answers the questions an editor, a court or a partner organisation asks about a
redacted file: which program and model made it (versions, SHA-256), with which settings;
which input became which output (SHA-256 of both, and whether the input is still the one
the plan was made for); for every region or track, what created it (detector, tracker,
reviewer), which frames it covers and how each frame's box came about; which people were
kept visible and why; and every reviewer edit with its time and reason.

Written as JSON (for tools) and as a self-contained HTML page (for people) beside it.
"""

from __future__ import annotations

import contextlib
import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil import __version__
from veil.detect import MODEL_NAME, RETINAFACE_NAME
from veil.models import model_sha256
from veil.names import readable_anywhere
from veil.outputs import atomic_output
from veil.photo import file_sha256
from veil.pipeline import file_notes
from veil.plan import Edit, MediaPlan, Plan, Region, installed_veil_sha256, now_iso
from veil.remote import Url, location, location_key
from veil.videofile import damage_lines, holes_line
from veil.voice import VOICE_TEXT, voice_entry

REPORT_FORMAT = "veil-report"
REPORT_VERSION = 1
ORIGINS = ("detected", "interpolated", "extended", "reviewer", "unanalysed", "held")
# The `media` of an edit that concerns every file (export, loading a plan); see veil.review.session.
ALL_MEDIA = "*"


@dataclass(frozen=True)
class Written:
    """An output the run wrote: its name (a path or a URL), and the SHA-256 of the bytes written, taken
    as they were put in place. The report vouches for these, not for whatever lies at the name when
    it is written (an uploader may have taken the file away, or someone put another file there)."""
    name: str
    sha256: str | None


def build_report(plan: Plan, outputs: dict[str, Written], not_redacted: list[dict[str, str]] | None = None,
                 dry_run: bool = False, interrupted: dict[str, Any] | None = None,
                 planned: set[str] | None = None, run_notes: list[str] | None = None) -> dict[str, Any]:
    """The report as JSON-ready data; `outputs` maps each input path to the output written from it;
    `not_redacted` lists the run's inputs without a plan here (failed, skipped, done by an earlier
    run, not done when the run was stopped), each {"path", "status", "reason"}, so that the
    report accounts for every input. A plan's file that this run did not render, and that
    `not_redacted` does not name, is listed there too: its regions were not hidden here.
    `interrupted`: the report of a run that was stopped, {"signal", "files_not_done"}. `planned`:
    the plan's files this run planned or rendered (None: all), the only ones besides `outputs` and
    `not_redacted` whose hash is taken as they are now (`file_entry`). `run_notes`: what the run
    said of itself, not of one file (faces not looked for, options that reach only some files)."""
    listed = {location_key(entry["path"]) for entry in not_redacted or []}
    unrendered = [{"path": media.path, "status": "not rendered",
                   "reason": "in the plan, not among this run's inputs"}
                  for media in plan.media if not dry_run and media.path not in outputs and location_key(media.path) not in listed]
    inputs = {*(planned if planned is not None else (m.path for m in plan.media)), *outputs}
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated": now_iso(),
        "veil_version": __version__,
        "veil_sha256": installed_veil_sha256(),  # its code and models: the version alone names no change
        "dry_run": dry_run,  # planned only: nothing was written, nothing hidden
        # A run stopped before it was done: this report covers the files it finished (None: not stopped).
        "interrupted": interrupted,
        "plan_created": plan.created,
        "plan_veil_version": plan.veil_version,
        "plan_veil_sha256": plan.veil_sha256 or None,  # None: the plan does not say
        # The plan file this run started from, as it was then (None: planned in this run). Its
        # files' detection records say what was detected and when; the edits, what a person changed
        # (a reviewer, or a setting given over the plan).
        "plan_file": {"path": plan.loaded_from, "sha256_when_loaded": plan.loaded_sha256,
                      # Why it is not as veil saved it (null: it is): its regions may be no one's recorded work.
                      "changed_outside_veil": plan.changed_outside} if plan.loaded_from else None,
        "models": models_used(plan),
        "settings": {
            # The colour fills a region in fill mode, and in every mode a frame that could not be
            # analysed; the block count acts in pixelate mode alone (null otherwise).
            "render": {"mode": plan.render.mode, "color": list(plan.render.color),
                       "blocks": plan.render.blocks if plan.render.mode == "pixelate" else None,
                       "voice": plan.render.voice},
            "encoding": plan.encoding.settings(),
            # Settings this run took from its command line rather than from the loaded plan.
            "from_command_line": plan.overridden,
            # Options given that acted on no file of this run (`--crf` for photos alone): not used.
            "acted_on_nothing": plan.not_used,
        },
        # A file not written is spoken of as planned ("would be written"), not as done.
        "files": [file_entry(media, outputs.get(media.path), plan.edits, plan.render.voice,
                             [n.text for n in file_notes(media, plan.encoding, plan.render.voice,
                                                         dry_run or media.path not in outputs)],
                             looked_at=media.path in inputs or location_key(media.path) in listed)
                  for media in plan.media],
        "not_redacted": list(not_redacted or []) + unrendered,
        "edits": [edit_entry(e) for e in plan.edits],
        "run_notes": list(run_notes or []),
    }


# Every model veil runs: its name and what it finds. A file's detection record names the models
# that found its regions, each with the SHA-256 of the file that ran.
MODELS = {MODEL_NAME: ("CenterFace", "face detection"),
          RETINAFACE_NAME: ("RetinaFace-MobileNetV2", "face detection (second detector)"),
          "ppocrv6_det_small.onnx": ("PP-OCRv6 small text detector",
                                     "text and licence-plate detection (text is found, never read)"),
          "ssdlite_person.onnx": ("SSDLite-MobileNetV2 person detector",
                                  "person detection, and which way a picture's people stand (a turned picture "
                                  "is searched for faces turned that way too)"),
          "silero_vad.onnx": ("Silero VAD", "speech detection")}


def models_used(plan: Plan) -> list[dict[str, Any]]:
    """The models the plan's detection records name (none for a plan made by hand), each with
    whether the file veil has now is the one that ran."""
    recorded: dict[str, list[str | None]] = {}
    for media in plan.media:
        detection = media.detection
        if "model_sha256" in detection:
            recorded.setdefault(MODEL_NAME, []).append(detection["model_sha256"])
        if "second_model_sha256" in detection:
            recorded.setdefault(RETINAFACE_NAME, []).append(detection["second_model_sha256"])
        for key in ("standing_search", "text", "people", "speech"):
            if isinstance(record := detection.get(key), dict) and "model" in record:
                recorded.setdefault(str(record["model"]), []).append(record.get("model_sha256"))
    entries = []
    for name, hashes in recorded.items():
        # A plan edited by hand may name anything: the report shows it as recorded.
        known = name in MODELS
        current = model_sha256(name) if known else None
        entries.append({"name": MODELS[name][0] if known else name, "file": name, "sha256": current,
                        "used_for": MODELS[name][1] if known else None,
                        "matches_plan": known and all(h == current for h in hashes)})
    return entries


def redaction_text(render: dict[str, Any]) -> str:
    """How the regions were hidden, in words, for the report's reader."""
    if render["mode"] == "pixelate":
        return f"pixelate: at most {render['blocks']} blocks across each region, each the mean of its pixels"
    if render["mode"] == "blur":
        return ("blur (the weakest mode): Gaussian, sigma a quarter of the region, with a random brightness "
                "shading drawn for this export and not kept")
    return f"fill: solid colour {render['color']}"


def file_entry(media: MediaPlan, written: Written | None, edits: list[Edit], voice: str = "keep",
               said: list[str] | None = None, looked_at: bool = True) -> dict[str, Any]:
    """`said`: the notes the run gave on the file (what was left out of its output, frames hidden
    whole, a decoder's warnings), as it printed them. `looked_at`: the file is one of the run's
    inputs, whose hash is taken as it is now; a plan's other file is not read (a plan from
    elsewhere would have veil fetch a URL, or hash a local document, the user never named)."""
    pictured = [r for r in media.regions if r.kind != "speech"]  # speech is on the time axis: see "voice"
    hiding = media.hiding_regions()
    now = current_sha256(media.path) if looked_at else None
    # An output is made from the planned bytes (checked again as it was put in place): those are
    # what the report vouches for, whatever has become of the file since.
    read = media.sha256 if written is not None and media.sha256 else now
    output = written.name if written is not None else None
    mine = [e for e in edits if e.media == media.path]
    return {
        "input": media.path,
        "kind": media.kind,
        "notes": said or [],
        "width": media.width,
        "height": media.height,
        "frame_count": media.frame_count,
        "input_sha256": read,
        "plan_input_sha256": media.sha256,
        # False means the file changed after the plan was made: the boxes may not fit it; None, that
        # it was not looked at (not among this run's inputs).
        "input_matches_plan": (media.sha256 is None or read == media.sha256) if looked_at else None,
        # The input or the output no longer what the run read or wrote (edited, replaced, taken away);
        # None: nothing written to compare.
        "input_changed_since_written": now != read if written is not None else None,
        "output": output,
        "output_sha256": written.sha256 if written is not None else None,
        "output_changed_since_written": current_sha256(output) != written.sha256 if written is not None else None,
        # A video's codec, CRF and preset as encoded (the settings' encoding leaves veil's choices None).
        "video_written_as": media.detection.get("stream", {}).get("video_written_as") if output else None,
        # Each sound stream encoded again (its voices edited, or a container that cannot hold it): how.
        "sound_written_as": media.detection.get("stream", {}).get("sound_written_as", []) if output else [],
        "detection": media.detection,
        # The file's metadata, by name (never its values: they are what identifies), none of its values
        # written: a photo's EXIF tags and the like, a video's or a sound file's tags.
        "metadata_not_written": (media.detection.get("metadata_not_written")
                                 or media.detection.get("stream", {}).get("metadata_not_written", [])) if output else [],
        "unanalysed_frames": frame_runs(media.unanalysed_frames),
        # A damaged video redacted as far as it decodes (--salvage): what was gone past; None if not asked.
        "damage": media.salvaged_damage(),
        "sound_damage": media.speech_record().get("undecodable_packets", 0),
        # Stretches of a video with no frame where one was due (seconds from the file's start, as --start/--end).
        "time_holes": media.detection.get("stream", {}).get("time_holes", []),
        "unchecked_frames": frame_runs(media.unchecked_frames),
        "unchecked_frames_covered": media.unchecked_covered,
        # --only-range: those of them that hold boxes all the same (tracks carried on past the range).
        "unchecked_frames_with_boxes": frame_runs(media.unchecked_frames_hidden_in()),
        # Planned: regions that hide pixels in some frame; hidden: the same, once an output is written.
        "regions_planned": len(hiding),
        "regions_hidden": len(hiding) if output else 0,
        "regions_kept_visible": sum(r.keep_visible for r in pictured),
        # Regions whose every box lies outside the picture (a plan edited by hand): they hide nothing.
        "regions_off_picture": len(media.off_picture_regions()),
        # Every kind asked for (--hide), none found too: "text: 0" is not "text not asked for".
        "hidden_by_kind": {**dict.fromkeys(media.detection.get("hide", []), 0), **Counter(r.kind for r in hiding)}
                          if output else {},
        "regions": [region_entry(media, r, mine) for r in pictured],
        "voice": voice_entry(media, voice, written=bool(output)),
        # Regions the reviewer deleted are gone from the plan; their deletion stays here. A track
        # whose last box was deleted frame by frame is gone as surely as one deleted whole.
        "deleted_regions": sorted({e.region for e in mine if e.action in ("delete_region", "delete_box") and e.region}
                                  - {r.id for r in media.regions}),
        "edits": [edit_entry(e) for e in mine],
    }


def region_entry(media: MediaPlan, region: Region, edits: list[Edit]) -> dict[str, Any]:
    origins = Counter(box.origin for box in region.boxes.values())
    entry: dict[str, Any] = {
        "id": region.id,
        "kind": region.kind,
        "source": region.source,
        "shape": region.shape,
        "first_frame": region.first_frame,
        "last_frame": region.last_frame,
        "off_picture": not region.on_picture(media.width, media.height),
        "frames": len(region.boxes),
        "frame_ranges": frame_runs(sorted(region.boxes)),
        "origins": {o: origins[o] for o in ORIGINS if origins[o]},
        "keep_visible": region.keep_visible,
        "reason": region.reason,
        "edits": [edit_entry(e) for e in edits if e.region == region.id],
    }
    if media.kind != "image" and len(media.frame_times) > region.last_frame:
        # From the file's start, as a player and --start/--end count: a time copied from here
        # into --start lands on the region.
        entry["start_seconds"] = round(media.seconds_into_file(region.first_frame), 3)
        entry["end_seconds"] = round(media.seconds_into_file(region.last_frame), 3)
    return entry


def edit_entry(edit: Edit) -> dict[str, Any]:
    return {"time": edit.time, "media": edit.media, "action": edit.action, "region": edit.region,
            "detail": edit.detail, "reason": edit.reason}


def frame_runs(frames: list[int]) -> list[list[int]]:
    """[0, 1, 2, 5, 6] -> [[0, 2], [5, 6]]: gaps in a track are what a reviewer must check."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return runs


def current_sha256(name: str) -> str | None:
    """SHA-256 of the file named (a path or a URL) as it is now; None if it is not there."""
    where = location(name)
    if isinstance(where, Url):
        return where.sha256() if where.is_file() else None
    return file_sha256(where) if where.is_file() else None


def report_paths(path: Path) -> tuple[Path, Path]:
    """Where the report's JSON and HTML go: the path given and the other beside it (a name
    ending .html is the HTML's, and the JSON takes .json)."""
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        return path.with_suffix(".json"), path
    return path, path.with_suffix(".html")


def write_report(plan: Plan, outputs: dict[str, Written], path: Path, overwrite: bool = True,
                 not_redacted: list[dict[str, str]] | None = None, dry_run: bool = False,
                 interrupted: dict[str, Any] | None = None, planned: set[str] | None = None,
                 run_notes: list[str] | None = None) -> None:
    """The report as JSON and as HTML (`report_paths`), a name that is not UTF-8 given as
    `readable_anywhere` says (encoded as it was, the HTML failed: no report was written)."""
    report = readable_anywhere(build_report(plan, outputs, not_redacted, dry_run, interrupted, planned, run_notes))
    json_path, html_path = report_paths(path)
    # Both or neither: a failed HTML beside a new JSON would leave the last run's page describing this one.
    sources = [media.path for media in plan.media]  # the report names each, and its hash
    html_file = None
    try:
        with atomic_output(json_path, overwrite, sources=sources) as json_file:
            json_file.path.write_bytes(json.dumps(report, indent=1).encode())
            with atomic_output(html_path, overwrite, sources=sources) as html_file:
                html_file.path.write_bytes(render_html(report).encode())
    except BaseException:
        # The HTML is in place before the JSON is: a JSON refused then (a file that appeared at its
        # name) left this run's page beside another's JSON, and the run said no report was written.
        if html_file is not None and html_file.sha256 is not None:
            with contextlib.suppress(OSError):
                if file_sha256(html_path) == html_file.sha256:
                    html_path.unlink()
        raise


# --- HTML ---------------------------------------------------------------------

def has_sound(file: dict[str, Any]) -> bool:
    """Whether a file of the report may have sound: not a picture, nor a video found silent (an older
    veil's plan says neither)."""
    return file["kind"] == "audio" or (file["kind"] == "video" and not file["detection"].get("no_sound"))


def plan_made_by(report: dict[str, Any]) -> str:
    """Which veil's code and models made the report's plan, as the page says it, escaped."""
    made_by = report["plan_veil_sha256"]
    if made_by is None:
        return "<strong>its code and models not recorded</strong>"
    if made_by != report["veil_sha256"]:
        return f"<strong>code and models {e(made_by[:12])}: another veil than this one</strong>"
    return "this one"


def e(value: Any) -> str:
    """Escape anything for HTML text and attributes: every value in the report passes here."""
    return html.escape("" if value is None else str(value), quote=True)


def render_html(report: dict[str, Any]) -> str:
    render = report["settings"]["render"]
    overridden = report["settings"]["from_command_line"]
    plan_file = report["plan_file"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>veil redaction report</title><style>", CSS, "</style></head><body>",
        "<h1>Redaction report</h1>",
        f"<p>Generated {e(report['generated'])} by veil {e(report['veil_version'])} (code and models "
        f"{e(report['veil_sha256'][:12])}); plan created {e(report['plan_created'])} by veil "
        f"{e(report['plan_veil_version'])} ({plan_made_by(report)}).</p>",
        *(["<p><strong>Dry run: nothing was written and nothing hidden; the regions are those planned.</strong></p>"]
          if report["dry_run"] else []),
        *([f"<p><strong>Interrupted run: veil was stopped ({e(report['interrupted']['signal'])}) before it was "
           f"done. This report covers the files it finished; the {len(report['interrupted']['files_not_done'])} "
           "it had not done are listed under 'Inputs not redacted in this run'.</strong></p>"]
          if report["interrupted"] else []),
        "<h2>Models and settings</h2><table>",
        row("Plan", f"loaded from {plan_file['path']} (SHA-256 when loaded: {plan_file['sha256_when_loaded']}); "
                    "each file's detection record below says what was detected, and the edits what a person "
                    "changed (a reviewer, a setting given over the plan)" if plan_file else "made in this run"),
        *([row("Plan changed outside veil", f"YES: {plan_file['changed_outside_veil']}")]
          if plan_file and plan_file["changed_outside_veil"] else []),
    ]
    for model in report["models"]:
        parts += [row(f"Model: {model['used_for'] or 'named by the plan'}", f"{model['name']} ({model['file']})"),
                  row("Model SHA-256", model["sha256"] or "not a model veil has", code=True),
                  row("Model matches the plan's", "yes" if model["matches_plan"]
                      else "NO: the plan was made with another model")]
    if not report["models"]:
        parts.append(row("Models", "none: no detection is recorded in the plan (made by hand)" if report["files"]
                         else "none recorded: no file was redacted in this run"))
    # A run that redacted nothing (every file done by an earlier run, or failed) hid nothing either.
    unused = " (no file was redacted in this run)" if not report["files"] else ""
    parts += [
        row("Redaction", redaction_text(render) + unused),
        # Of photos alone, or silent videos, it said "voices in the sound are NOT protected" or "speech
        # muted": there was no sound.
        row("Voices", "no file was redacted in this run" if unused else "no file has sound"
            if not any(has_sound(f) for f in report["files"]) else VOICE_TEXT[render["voice"]]),
        row("Encoding", json.dumps(report["settings"]["encoding"], sort_keys=True), code=True),
        row("Settings from this run's command line (not the plan's)", ", ".join(overridden) or "none"),
        *([row("Options given that acted on no file (not used)", ", ".join(report["settings"]["acted_on_nothing"]))]
          if report["settings"]["acted_on_nothing"] else []),
        *([row("Said of the whole run", "; ".join(report["run_notes"]))] if report.get("run_notes") else []),
        "</table>",
    ]
    if report["not_redacted"]:
        parts.append("<h2>Inputs not redacted in this run</h2><table>")
        parts += [row(entry["path"], f"{entry['status']}: {entry['reason']}") for entry in report["not_redacted"]]
        parts.append("</table>")
    for file in report["files"]:
        parts.append(file_html(file))
    parts.append("<h2>All edits</h2>")
    parts.append(edits_html(report["edits"], with_media=True))
    parts.append("</body></html>\n")
    return "".join(parts)


def file_html(file: dict[str, Any]) -> str:
    parts = [
        f"<section><h2>{e(file['input'])}</h2><table>",
        row("Kind", f"{file['kind']}, {file['width']}x{file['height']}, {file['frame_count']} frame(s)"),
        *([row("Notes (as the run gave them)", "; ".join(file["notes"]))] if file["notes"] else []),
        row("Input SHA-256", file["input_sha256"], code=True),
        row("Input unchanged since planning", "not looked at (not among this run's inputs)"
            if file["input_matches_plan"] is None else "yes" if file["input_matches_plan"] else "NO"),
        row("Output", file["output"] or "(not written)"),
        row("Output SHA-256", file["output_sha256"], code=True),
        *([row("Changed since this run wrote it", " and ".join(
            what for what, changed in (("the input", file["input_changed_since_written"]),
                                       ("the output", file["output_changed_since_written"])) if changed)
            + ": the file there now is not the one of these hashes")]
          if file["input_changed_since_written"] or file["output_changed_since_written"] else []),
        *([row("Video written as", written_as_text(file["video_written_as"]))] if file["video_written_as"] else []),
        *([row("Sound encoded again as", "; ".join(sound_as_text(s) for s in file["sound_written_as"]))]
          if file["sound_written_as"] else []),
        row("Regions hidden / kept visible", f"{file['regions_hidden']} / {file['regions_kept_visible']}"
            + ("" if file["output"] else f" (not written: {file['regions_planned']} planned)")),
        row("Regions covering no pixel of the picture (they hide nothing)", file["regions_off_picture"]),
        row("Hidden by kind", ", ".join(f"{k}: {n}" for k, n in file["hidden_by_kind"].items()) or "none"),
        row("Speech", voice_summary(file["voice"])),
        *([row("Metadata left out (the input's, by name: none of its values is written)",
               ", ".join(file["metadata_not_written"]))] if file["metadata_not_written"] else []),
        row("Detection recorded in the plan", json.dumps(file["detection"], sort_keys=True)
            if file["detection"] else "none (planned by hand)", code=True),
        row("Frames fully covered (could not be analysed)", runs_text(file["unanalysed_frames"]) or "none"),
        *([row("Damage gone past (--salvage)", "; ".join(damage_lines(file["damage"], file["sound_damage"])) or "none met")]
          if file["damage"] is not None else []),
        *([row("Stretches with no frame", holes_line(file["time_holes"]))] if file["time_holes"] else []),
        row("Frames outside --start/--end, not searched, fully covered"
            if file["unchecked_frames_covered"] else
            "Frames outside --start/--end, left as they are, NOT searched (--only-range)",
            runs_text(file["unchecked_frames"]) or "none"),
        *([row("Of those, frames holding boxes (tracks carried on from the range, or drawn by a reviewer)",
               runs_text(file["unchecked_frames_with_boxes"]))] if file["unchecked_frames_with_boxes"] else []),
        row("Regions deleted by the reviewer", ", ".join(file["deleted_regions"]) or "none"),
        "</table><table class='regions'><tr><th>Region</th><th>Kind</th><th>Created by</th><th>Frames</th>"
        "<th>How each frame's box came about</th><th>Shape</th><th>Shown?</th><th>Edits</th></tr>",
    ]
    for region in file["regions"]:
        origins = ", ".join(f"{name}: {count}" for name, count in region["origins"].items())
        shown = f"KEPT VISIBLE: {e(region['reason'])}" if region["keep_visible"] else "hidden"
        seconds = (f"<br>{e(region['start_seconds'])} s to {e(region['end_seconds'])} s from the file's start"
                   if "start_seconds" in region else "")
        parts.append(
            f"<tr><td>{e(region['id'])}</td><td>{e(region['kind'])}</td><td>{e(region['source'])}</td>"
            f"<td>{e(runs_text(region['frame_ranges']))}{seconds}</td><td>{e(origins)}</td>"
            f"<td>{e(region['shape'])}</td><td>{shown}</td><td>{len(region['edits'])}</td></tr>"
        )
    parts.append("</table><h3>Edits to this file</h3>")
    parts.append(edits_html(file["edits"], with_media=False))
    parts.append("</section>")
    return "".join(parts)


def written_as_text(written: dict[str, Any]) -> str:
    return f"{written['codec']}, crf {written['crf']}" + (f", preset {written['preset']}" if written["preset"] else "")


def sound_as_text(written: dict[str, Any]) -> str:
    rate = f", asked for {written['bit_rate_asked'] / 1000:g} kb/s" if written["bit_rate_asked"] else ""
    why = "its voices edited" if written["voices_edited"] else "the container cannot hold it as it was"
    return (f"stream {written['stream']}: {written['codec']}{rate}, {written['sample_rate']} Hz "
            f"{written['layout']} ({why})")


def voice_summary(voice: dict[str, Any]) -> str:
    if voice["speech_seconds"] is None:
        return "no sound"
    spans = ", ".join(f"{a:g}-{b:g} s" for a, b in voice["segments"]) or "none"
    if not voice["treated_seconds"]:  # nothing treated: the treatment says why
        treated = f"{voice['treatment']}; "
    elif voice["mode"] == "mute-all":
        treated = f"all {voice['treated_seconds']:g} s of sound muted, the speech in "
    else:
        treated = f"{voice['treated_seconds']:g} s {voice['treatment']} in "
    text = (f"{voice['speech_seconds']:g} s found; {treated}{len(voice['segments'])} "
            f"segment(s): {spans} ({voice['times']})")
    if (voice.get("sound_streams") or 0) > 1:
        text += f"; speech on any of its {voice['sound_streams']} sound streams counts for all of them"
    if voice["added_by_reviewer"]:
        text += f"; added by the reviewer: {', '.join(voice['added_by_reviewer'])}"
    kept = "; ".join(f"{k['id']} {k['start']:g}-{k['end']:g} s ({k['reason']})" for k in voice["kept_audible"])
    return text + (f"; KEPT AUDIBLE: {kept}" if kept else "")


def edits_html(edits: list[dict[str, Any]], with_media: bool) -> str:
    if not edits:
        return "<p>No edits.</p>"
    head = "<th>File</th>" if with_media else ""
    rows = [f"<table class='edits'><tr><th>Time (UTC)</th>{head}<th>Action</th><th>Region</th><th>Detail</th><th>Reason</th></tr>"]
    for edit in edits:
        media = f"<td>{e(Path(edit['media']).name if edit['media'] != ALL_MEDIA else 'all files')}</td>" if with_media else ""
        rows.append(
            f"<tr><td>{e(edit['time'])}</td>{media}<td>{e(edit['action'])}</td><td>{e(edit['region'])}</td>"
            f"<td><code>{e(json.dumps(edit['detail'], sort_keys=True))}</code></td><td>{e(edit['reason'])}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def row(label: str, value: Any, code: bool = False) -> str:
    shown = f"<code>{e(value)}</code>" if code else e(value)
    return f"<tr><th>{e(label)}</th><td>{shown}</td></tr>"


def runs_text(runs: list[list[int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
code{font:12px ui-monospace,monospace;word-break:break-all}
section{border-top:3px solid #333;margin-top:2em}
"""
