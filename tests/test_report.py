"""The audit report: content (models, settings, hashes, per-region provenance, edits),
HTML escaping, and the `veil --report` path that writes it without review."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from veil import __version__
from veil.detect import MODEL_NAME
from veil.models import model_sha256
from veil.photo import render_photo
from veil.plan import Box, Edit, MediaPlan, Plan, Region, RenderSettings
from veil.report import Written, build_report, frame_runs, voice_summary, write_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTO = DATA / "face_recognition_examples" / "examples" / "two_people.jpg"
VIDEO = DATA / "videos" / "intel_walking_and_headpose" / "people-detection.mp4"
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo_plan(path: Path) -> Plan:
    """A plan for a small real image file, with a detected, a reviewer-drawn and a kept region."""
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(path)
    media = MediaPlan(path=str(path), kind="image", width=80, height=60, sha256=sha(path), regions=[
        Region("f1", "detector", boxes={0: Box(5, 5, 25, 25, "detected", 0.9)}),
        Region("r2", "reviewer", "box", boxes={0: Box(40, 10, 70, 40, "reviewer")}),
        Region("f3", "detector", boxes={0: Box(30, 30, 50, 50, "detected", 0.5)}, keep_visible=True, reason=HOSTILE),
    ])
    edits = [
        Edit("2024-01-01T00:00:00+00:00", str(path), "delete_region", "f4", {"boxes": 1}, "a poster"),
        Edit("2024-01-01T00:00:01+00:00", str(path), "add_region", "r2", {"frame": 0}, None),
        Edit("2024-01-01T00:00:02+00:00", str(path), "keep_visible", "f3", {"keep_visible": True}, HOSTILE),
        Edit("2024-01-01T00:00:03+00:00", "*", "export", None, {}, None),
    ]
    media.detection = {"model": "centerface", "model_sha256": model_sha256(MODEL_NAME), "profile": "fast"}
    return Plan(media=[media], render=RenderSettings("pixelate", (0, 0, 0), 6), veil_version="0.0.9", edits=edits)


def video_media() -> MediaPlan:
    """A video plan whose track has a gap and boxes of every origin (no file on disk)."""
    origins = {0: "extended", 1: "detected", 2: "interpolated", 3: "detected", 6: "reviewer", 7: "reviewer"}
    track = Region("t1", "detector", boxes={f: Box(1, 1, 9, 9, o) for f, o in origins.items()})
    return MediaPlan(path="/nowhere/clip.mp4", kind="video", width=64, height=48, frame_count=10, sha256="ab" * 32,
                     regions=[track], unanalysed_frames=[8, 9], unchecked_frames=[4, 5],
                     frame_times=[i / 25 for i in range(10)])


def test_report_describes_models_settings_files_and_regions(tmp_path: Path):
    source, output = tmp_path / "in.png", tmp_path / "out.png"
    plan = photo_plan(source)
    written = {str(source): Written(str(output), render_photo(plan.media[0], plan.render, output))}
    report = build_report(plan, written)

    assert report["format"] == "veil-report" and report["veil_version"] == __version__
    assert report["plan_veil_version"] == "0.0.9"
    assert report["models"] == [{"name": "CenterFace", "file": "centerface.onnx", "sha256": model_sha256(MODEL_NAME),
                                 "used_for": "face detection", "matches_plan": True}]
    assert report["settings"]["render"] == {"mode": "pixelate", "color": [0, 0, 0], "blocks": 6, "voice": "keep"}
    assert report["files"][0]["detection"]["profile"] == "fast"
    file = report["files"][0]
    assert file["input_sha256"] == sha(source) == file["plan_input_sha256"] and file["input_matches_plan"]
    assert file["output"] == str(output) and file["output_sha256"] == sha(output)
    assert (file["regions_hidden"], file["regions_kept_visible"]) == (2, 1)
    assert file["deleted_regions"] == ["f4"]
    regions = {r["id"]: r for r in file["regions"]}
    assert regions["f1"]["origins"] == {"detected": 1} and regions["f1"]["edits"] == []
    assert regions["r2"]["source"] == "reviewer" and regions["r2"]["origins"] == {"reviewer": 1}
    assert [e["action"] for e in regions["r2"]["edits"]] == ["add_region"]
    assert regions["f3"]["keep_visible"] and regions["f3"]["reason"] == HOSTILE
    assert [e["action"] for e in file["edits"]] == ["delete_region", "add_region", "keep_visible"]
    assert [e["action"] for e in report["edits"]] == ["delete_region", "add_region", "keep_visible", "export"]
    assert report["edits"][0] == {"time": "2024-01-01T00:00:00+00:00", "media": str(source), "action": "delete_region",
                                  "region": "f4", "detail": {"boxes": 1}, "reason": "a poster"}
    assert not file["input_changed_since_written"] and not file["output_changed_since_written"]

    # The report vouches for the bytes read and written, not for what lies at their names when it
    # is written: the original put where the output was, the input edited since.
    rendered = sha(output)
    shutil.copy(source, output)
    Image.new("RGB", (8, 8)).save(source)
    file = build_report(plan, written)["files"][0]
    assert file["output_sha256"] == rendered and file["output_changed_since_written"]
    assert file["input_sha256"] == file["plan_input_sha256"] != sha(source) and file["input_changed_since_written"]
    assert file["input_matches_plan"]  # what was rendered was what was planned
    write_report(plan, written, tmp_path / "audit.json")
    assert "Changed since this run wrote it</th><td>the input and the output" in (tmp_path / "audit.html").read_text()


def test_a_plans_file_not_among_the_runs_inputs_is_never_read_for_the_report(tmp_path: Path):
    """A plan from elsewhere named a file the run did not render (a document of the user's, a URL
    its author serves): the report hashed it, reading it or fetching it, and published its hash."""
    source, output, document = tmp_path / "in.png", tmp_path / "out.png", tmp_path / "document.pdf"
    plan = photo_plan(source)
    document.write_bytes(b"%PDF-1.4 a document of the user's")
    plan.media.append(MediaPlan(path=str(document), kind="image", width=8, height=8, sha256="cd" * 32))
    written = {str(source): Written(str(output), render_photo(plan.media[0], plan.render, output))}
    report = build_report(plan, written, planned={str(source)})
    rendered, other = report["files"]
    assert rendered["input_sha256"] == sha(source) and rendered["input_matches_plan"]
    assert other["input_sha256"] is None and other["input_matches_plan"] is None
    assert report["not_redacted"] == [{"path": str(document), "status": "not rendered",
                                       "reason": "in the plan, not among this run's inputs"}]
    dry = build_report(plan, {}, dry_run=True, planned={str(source)})["files"]  # (planned only: no output)
    assert dry[0]["input_sha256"] == sha(source) and dry[1]["input_sha256"] is None
    write_report(plan, written, tmp_path / "audit.json", planned={str(source)})
    assert sha(document) not in (tmp_path / "audit.json").read_text()
    assert "not looked at (not among this run&#x27;s inputs)" in (tmp_path / "audit.html").read_text()


def test_report_tracks_video_provenance_and_changed_inputs(tmp_path: Path):
    media = video_media()
    media.detection = {"model_sha256": "0" * 64}
    plan = Plan(media=[media])
    report = build_report(plan, {}, [{"path": media.path, "status": "failed", "reason": "gone"}])
    assert not report["models"][0]["matches_plan"]
    file = report["files"][0]
    assert file["input_sha256"] is None and file["input_matches_plan"] is False  # the file is gone
    assert file["output"] is None and file["output_sha256"] is None
    assert file["unanalysed_frames"] == [[8, 9]]
    assert file["unchecked_frames"] == [[4, 5]]  # --only-range gaps stay visible to an auditor
    track = file["regions"][0]
    assert (track["first_frame"], track["last_frame"], track["frames"]) == (0, 7, 6)
    assert track["frame_ranges"] == [[0, 3], [6, 7]]
    assert track["origins"] == {"detected": 2, "interpolated": 1, "extended": 1, "reviewer": 2}
    assert (track["start_seconds"], track["end_seconds"]) == (0.0, 0.28)


def test_frame_runs():
    assert frame_runs([]) == []
    assert frame_runs([4]) == [[4, 4]]
    assert frame_runs([0, 1, 2, 5, 6, 9]) == [[0, 2], [5, 6], [9, 9]]


def test_write_report_writes_json_and_escaped_html(tmp_path: Path):
    source = tmp_path / "<b>in & out<b>.png"
    plan = photo_plan(source)
    write_report(plan, {}, tmp_path / "audit.json")
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["files"][0]["input"] == str(source)
    page = (tmp_path / "audit.html").read_text()
    assert "<script>" not in page and "<b>in" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert "&lt;b&gt;in &amp; out&lt;b&gt;.png" in page
    assert model_sha256(MODEL_NAME) in page and "KEPT VISIBLE" in page and "a poster" in page
    assert "pixelate: at most 6 blocks across each region" in page
    # Of a photo it said "voices in the sound are NOT protected".
    assert "<th>Voices</th><td>no file has sound</td>" in page and "NOT protected" not in page
    # A video's plan with no speech searched (--voice keep, an older veil's): its voices are not protected.
    clip = MediaPlan(path=str(tmp_path / "clip.mp4"), kind="video", width=8, height=8)
    write_report(Plan(media=[clip]), {}, tmp_path / "clip.json")
    assert "voices in the sound are NOT protected" in (tmp_path / "clip.html").read_text()


def test_a_plan_made_by_another_veil_is_said_and_reported(tmp_path: Path):
    """Every veil was 0.1.0: a plan made by an older veil, whose detectors found fewer faces, was
    drawn with a report naming the same version as the running veil's, and no word."""
    from veil.command import app
    photo = tmp_path / "a.jpg"
    shutil.copy(PHOTO, photo)
    made = CliRunner().invoke(app, [str(photo), "--dry-run", "--save-plan", str(tmp_path / "plan.json"), "-q"])
    assert made.exit_code == 0, made.output
    ours = json.loads((tmp_path / "plan.json").read_text())["veil_sha256"]
    assert re.fullmatch("[0-9a-f]{64}", ours)
    for made_by, said in (("ab" * 32, f"it was made by another veil (veil {__version__}, code and models abababababab; "
                                      f"this one's: {ours[:12]})"),
                          ("", "it does not record which veil made it")):
        plan = Plan.load(tmp_path / "plan.json")
        plan.veil_sha256 = made_by
        plan.save(tmp_path / "other.json", overwrite=True)
        result = CliRunner().invoke(app, ["--plan", str(tmp_path / "other.json"), "-o", str(tmp_path / "out.jpg"),
                                          "--report", str(tmp_path / "r.json"), "--overwrite"])
        assert result.exit_code == 0 and said in " ".join(result.output.split()), result.output
        report = json.loads((tmp_path / "r.json").read_text())
        assert (report["veil_sha256"], report["plan_veil_sha256"]) == (ours, made_by or None)
        assert any(said in note for note in report["run_notes"])
        assert ("another veil than this one" if made_by else "its code and models not recorded") \
            in (tmp_path / "r.html").read_text()
    rendered = CliRunner().invoke(app, ["--plan", str(tmp_path / "plan.json"), "-o", str(tmp_path / "out.jpg"),
                                        "--overwrite"])
    assert rendered.exit_code == 0 and "veil made it" not in rendered.output and "another veil" not in rendered.output


def test_a_report_whose_json_is_refused_leaves_no_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The HTML is put in place first: another run's JSON landing at the report's name just before
    this one's (a race of two runs, made certain here) left this run's page beside another's JSON,
    where the run said no report was written."""
    import veil.outputs

    link_new = veil.outputs._link_new

    def another_run_first(temp: Path, target: Path) -> None:
        if target.suffix == ".json":
            target.write_text('{"another": "run"}')
        link_new(temp, target)

    monkeypatch.setattr(veil.outputs, "_link_new", another_run_first)
    with pytest.raises(veil.outputs.OutputError, match="appeared"):
        write_report(photo_plan(tmp_path / "a.png"), {}, tmp_path / "audit.json", overwrite=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "audit.json"]
    assert json.loads((tmp_path / "audit.json").read_text()) == {"another": "run"}


def test_report_tells_a_blurred_export_from_a_filled_one(tmp_path: Path):
    plan = photo_plan(tmp_path / "in.png")
    plan.render = RenderSettings(mode="blur")
    write_report(plan, {}, tmp_path / "audit.json")
    page = (tmp_path / "audit.html").read_text()
    assert "blur (the weakest mode)" in page and "random brightness shading" in page


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_cli_report_without_review(tmp_path: Path):
    from veil.command import app

    output, report_path = tmp_path / "out.jpg", tmp_path / "report.json"
    result = CliRunner().invoke(app, [str(PHOTO), "-o", str(output), "--report", str(report_path), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    file = report["files"][0]
    assert file["input"] == str(PHOTO) and file["input_sha256"] == sha(PHOTO)
    assert file["output_sha256"] == sha(output)
    assert len(file["regions"]) == 2 and all(r["origins"] == {"detected": 1} for r in file["regions"])
    assert report["models"][0]["sha256"] == model_sha256(MODEL_NAME) and report["edits"] == []
    assert report_path.with_suffix(".html").is_file()


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_the_report_gives_each_files_notes_as_the_run_gave_them(tmp_path: Path):
    """A TIFF of two pages is written as one: the run said so, the report only held a raw key
    (`other_images_not_written`) in the detection record's JSON."""
    from veil.command import app

    pages = tmp_path / "pages.tiff"
    photo = Image.open(PHOTO).convert("RGB")
    photo.save(pages, save_all=True, append_images=[photo.transpose(Image.FLIP_LEFT_RIGHT)])
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(app, [str(pages), "-o", str(tmp_path / "out.tiff"), "--report", str(report_path)])
    assert result.exit_code == 0, result.output
    said = "the file holds 2 images (pages, a burst, a second view): only the one viewers show was redacted and written"
    assert said in result.output
    assert [said in note for note in json.loads(report_path.read_text())["files"][0]["notes"]] == [True]
    assert said in report_path.with_suffix(".html").read_text()


def test_frames_both_held_and_damaged_are_counted_once_with_the_damage():
    """A salvaged video's damaged frames are covered whole for their damage (said so); held frames
    among them were counted again as "a face grew past the frame there", where the damage may have
    hidden the cut that ended the hold (the notes covered 69 frames of a 59-frame clip)."""
    from veil.pipeline import notes
    from veil.plan import Encoding

    media = MediaPlan(path="/nowhere/clip.mp4", kind="video", width=64, height=48, frame_count=10, sha256="ab" * 32,
                      regions=[Region("t1", "detector",
                                      boxes={f: Box(-40, -40, 104, 88, "held") for f in range(5, 10)})],
                      unanalysed_frames=[7, 8, 9], frame_times=[i / 25 for i in range(10)])
    media.detection = {"stream": {"damage": {"damaged_frames": [7, 8, 9], "undecodable_packets": 0,
                                             "frames_out_of_order": 0, "ends_early": False}}}
    said = " ".join(note.text for note in notes(media, Encoding(), dry_run=False))
    assert "2 frame(s) were hidden whole: a face grew past the frame there" in said, said
    # Nor those outside --start/--end, where nothing was seen: said with those (it gave them both
    # reasons, and made up the first).
    media.detection, media.unanalysed_frames, media.unchecked_frames = {}, [], [5, 6]
    media.unchecked_covered = False
    said = " ".join(note.text for note in notes(media, Encoding(), dry_run=False))
    assert "3 frame(s) were hidden whole" in said and "but for the boxes in 2 of them" in said, said


def test_the_report_gives_what_the_run_said_of_itself_and_of_a_silent_videos_sound(tmp_path: Path):
    """A run's own lines (faces not looked for under --hide plates) reached the terminal and --json,
    not the report; a silent video's report said its speech was muted, or "NOT protected"."""
    import av

    from veil.command import app

    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(app, [str(PHOTO), "-o", str(tmp_path / "out.jpg"), "--hide", "plates",
                                      "--report", str(report_path)])
    assert result.exit_code == 0, result.output
    said = "--hide plates: faces are not looked for, and any not inside those regions are left visible"
    assert said in result.output
    assert json.loads(report_path.read_text())["run_notes"] == [said]
    assert f"<th>Said of the whole run</th><td>{said}</td>" in report_path.with_suffix(".html").read_text()
    silent = tmp_path / "silent.mp4"
    with av.open(str(silent), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90 + index, np.uint8), "rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    report_path = tmp_path / "silent.json"
    result = CliRunner().invoke(app, [str(silent), "-o", str(tmp_path / "silent.out.mp4"), "--voice", "mute",
                                      "--report", str(report_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(report_path.read_text())["files"][0]["voice"]["treatment"] == "none: it has no sound"
    page = report_path.with_suffix(".html").read_text()
    assert "<th>Voices</th><td>no file has sound</td>" in page and "muted" not in page
    # A video's faces are not looked for either, as a photo's are not: its report listed both face
    # detectors (and the person detector's judge) beside "faces are not looked for".
    report_path = tmp_path / "plates.json"
    result = CliRunner().invoke(app, [str(silent), "-o", str(tmp_path / "plates.mp4"), "--hide", "plates",
                                      "--report", str(report_path)])
    assert result.exit_code == 0 and said in result.output, result.output
    report = json.loads(report_path.read_text())
    assert [model["file"] for model in report["models"]] == ["ppocrv6_det_small.onnx"], report["models"]
    detection = report["files"][0]["detection"]
    assert detection["faces"] == "not looked for" and "glance" not in detection["sampling"], detection


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_what_a_photos_output_leaves_out_is_said_whatever_its_plan_says(tmp_path: Path):
    """A plan made by hand, edited or by an older veil, without the record of a second page or of
    bytes after the picture: rendered, both were left out of the output unsaid, in the run and the report."""
    from veil.command import app

    pages, tail = tmp_path / "pages.tiff", tmp_path / "tail.jpg"
    photo = Image.open(PHOTO).convert("RGB")
    photo.save(pages, save_all=True, append_images=[photo.transpose(Image.FLIP_LEFT_RIGHT)])
    tail.write_bytes(PHOTO.read_bytes() + b"a program's data")
    plan_path = tmp_path / "plan.json"
    result = CliRunner().invoke(app, [str(pages), str(tail), "--dry-run", "--save-plan", str(plan_path), "-q"])
    assert result.exit_code == 0, result.output
    plan = json.loads(plan_path.read_text())
    for media in plan["media"]:
        assert media["detection"].pop("other_images_not_written", None) or \
            media["detection"].pop("data_after_image_not_written", None)
        del media["detection_sha256"]  # as an older veil saved it
    plan_path.write_text(json.dumps(plan))
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["--plan", str(plan_path), "--output-dir", str(tmp_path / "out"),
                                      "--report", str(report_path), "-q"])
    assert result.exit_code == 0, result.output
    said = {pages.name: "the file holds 2 images (pages, a burst, a second view): only the one viewers show was "
                        "redacted and written (1 left out)",
            tail.name: "16 bytes stored after the picture (another picture appended, a program's data; no viewer "
                       "shows them) were left out"}
    assert all(f"veil: {tmp_path / name}: {line}" in result.output for name, line in said.items()), result.output
    assert {Path(f["input"]).name: f["notes"] for f in json.loads(report_path.read_text())["files"]} == \
        {name: [line] for name, line in said.items()}


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_the_report_names_every_file_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Named relative to the folder the run started in, which the report records nowhere, its outputs
    and the inputs it did not redact could not be found from it, nor matched to the inputs it lists."""
    from veil.command import app

    (tmp_path / "in").mkdir()
    shutil.copy(PHOTO, tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["in", "--output-dir", "out", "--report", "audit.json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "audit.json").read_text())
    assert [(f["input"], f["output"]) for f in report["files"]] == [(str(tmp_path / "in" / "a.jpg"),
                                                                     str(tmp_path / "out" / "a.jpg"))]
    assert [n["path"] for n in report["not_redacted"]] == [str(tmp_path / "in" / "notes.txt")]


def test_a_batch_report_accounts_for_every_input(tmp_path: Path):
    # A failed and a skipped input were missing from the report, which read as a clean run.
    from veil.command import app

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "a.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    (folder / "notes.txt").write_text("not a photo")
    report_path = tmp_path / "audit.html"  # an HTML name: the JSON goes beside it
    result = CliRunner().invoke(app, [str(folder), "--output-dir", str(tmp_path / "out"), "--report", str(report_path),
                                      "--jobs", "1", "-q"])
    assert result.exit_code == 1
    report = json.loads(report_path.with_suffix(".json").read_text())
    assert [Path(f["input"]).name for f in report["files"]] == ["a.jpg"]
    assert {Path(n["path"]).name: n["status"] for n in report["not_redacted"]} == {"broken.jpg": "failed",
                                                                                   "notes.txt": "skipped"}
    html = report_path.read_text()
    assert "Inputs not redacted in this run" in html and "broken.jpg" in html and "notes.txt" in html


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_the_report_counts_only_what_this_run_hid(tmp_path: Path):
    # A plan's regions moved off the picture, a file that failed, a file of the plan this run did
    # not name, a dry run: each was reported as hidden while every face stayed visible.
    from veil.command import app

    def run(*args: str) -> tuple[int, dict, str]:
        result = CliRunner().invoke(app, [*args, "--report", str(tmp_path / "r.json"), "--overwrite"])
        return result.exit_code, json.loads((tmp_path / "r.json").read_text()), (tmp_path / "r.html").read_text()

    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    shutil.copy(PHOTO, first)
    shutil.copy(PHOTO, second)
    code, report, page = run(str(first), str(second), "--dry-run", "--save-plan", str(tmp_path / "plan.json"))
    assert code == 0 and report["dry_run"] and report["plan_file"] is None and "Dry run" in page
    assert [(f["regions_planned"], f["regions_hidden"]) for f in report["files"]] == [(2, 0), (2, 0)]
    # The person detector judged which way the photos' people stand (detect.prepared).
    assert [m["file"] for m in report["models"]] == [MODEL_NAME, "retinaface_mnv2.onnx", "ssdlite_person.onnx"]

    plan = json.loads((tmp_path / "plan.json").read_text())
    away = plan["media"][0]["regions"][0]
    away["boxes"] = [[0, 5000, 5000, 5100, 5100, *away["boxes"][0][5:]]]
    (tmp_path / "edited.json").write_text(json.dumps(plan))
    result = CliRunner().invoke(app, [str(first), "--plan", str(tmp_path / "edited.json"), "-o",
                                      str(tmp_path / "out.jpg"), "--report", str(tmp_path / "r.json"), "--overwrite"])
    assert result.exit_code == 0 and "cover no pixel of the picture (wholly outside it, or of no area) and hide nothing (f1)" \
        in " ".join(result.output.split())
    assert "1 region(s) hidden" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["plan_file"]["path"] == str(tmp_path / "edited.json")
    assert report["plan_file"]["sha256_when_loaded"] == sha(tmp_path / "edited.json")
    entry = report["files"][0]
    assert (entry["regions_hidden"], entry["regions_off_picture"]) == (1, 1)
    assert [r["off_picture"] for r in entry["regions"]] == [True, False]
    # b.jpg is in the plan but not among this run's inputs: not hidden, and said so.
    assert report["files"][1]["regions_hidden"] == 0
    assert report["not_redacted"] == [{"path": str(second), "status": "not rendered",
                                       "reason": "in the plan, not among this run's inputs"}]
    assert "loaded from " + str(tmp_path / "edited.json") in (tmp_path / "r.html").read_text()


def test_the_report_names_the_models_that_ran(tmp_path: Path):
    # It always named CenterFace, for a sound file too, and never the speech detector.
    media = MediaPlan(path=str(tmp_path / "talk.wav"), kind="audio", width=0, height=0, detection={
        "speech": {"model": "silero_vad.onnx", "model_sha256": model_sha256("silero_vad.onnx"), "speech_seconds": 0.0}})
    report = build_report(Plan(media=[media]), {})
    assert report["models"] == [{"name": "Silero VAD", "file": "silero_vad.onnx", "sha256": model_sha256("silero_vad.onnx"),
                                 "used_for": "speech detection", "matches_plan": True}]
    # Nothing muted where nothing was written (it said "7.8 s muted" of a file not rendered).
    media.regions = [Region("speech1", "detector", kind="speech", start=0.0, end=7.8)]
    plan = Plan(media=[media], render=RenderSettings(voice="mute"))
    assert build_report(plan, {})["files"][0]["voice"]["treated_seconds"] == 0
    muted = {media.path: Written(str(tmp_path / "out.wav"), None)}
    assert build_report(plan, muted)["files"][0]["voice"]["treated_seconds"] == 7.8
    # Nor where the voices were kept as they were (--voice keep: it said 7.8 s treated): the segments
    # still say where the voices are.
    kept = build_report(Plan(media=[media], render=RenderSettings(voice="keep")), muted)
    voice = kept["files"][0]["voice"]
    assert voice["treated_seconds"] == 0 and voice["segments"] == [[0.0, 7.8]] and voice["treatment"] == "not protected"
    assert " s found; not protected; 1 segment(s): 0-7.8 s (" in voice_summary(voice)
    assert "anonymiser" not in build_report(plan, {})["files"][0]["voice"]
    # A dry run, or a file that failed, gives where the speech it planned to treat lies (it gave none).
    planned = build_report(plan, {})["files"][0]["voice"]
    assert planned["segments"] == [[0.0, 7.8]] and planned["treatment"] == "none: no output was written"
    assert "none: no output was written; 1 segment(s): 0-7.8 s" in voice_summary(planned)
    # mute-all silences the whole sound, not only its speech (it said 4.044 s of an 8 s file).
    media.detection["speech"]["sound_seconds"] = 8.0
    media.regions = [Region("speech1", "detector", kind="speech", start=1.96, end=6.004, keep_visible=True)]
    everything = build_report(Plan(media=[media], render=RenderSettings(voice="mute-all")), muted)["files"][0]["voice"]
    assert everything["treated_seconds"] == 8.0 and everything["treatment"] == "muted (all sound)"
    assert everything["segments"] == [[1.96, 6.004]] and everything["kept_audible"] == []
    assert "all 8 s of sound muted, the speech in 1 segment(s): 1.96-6.004 s" in voice_summary(everything)
    # Where no speech was found, or a reviewer kept every segment audible, nothing was muted (it said "muted").
    media.regions[0].keep_visible = True
    untouched = build_report(Plan(media=[media], render=RenderSettings(voice="mute")), muted)["files"][0]["voice"]
    assert (untouched["treatment"], untouched["treated_seconds"]) == ("none: every segment kept audible", 0.0)
    media.regions = []
    untouched = build_report(Plan(media=[media], render=RenderSettings(voice="anonymise")), muted)["files"][0]["voice"]
    assert (untouched["treatment"], untouched["treated_seconds"]) == ("none: no speech found", 0.0)
    # A photo has no sound (its JSON said "not protected" while the HTML said "no sound").
    still = MediaPlan(path=str(tmp_path / "a.png"), kind="image", width=8, height=8)
    assert build_report(Plan(media=[still]), {})["files"][0]["voice"]["treatment"] == "none: it has no sound"
    # A video's sound that starts 1 s after its picture: the plan's seconds are the sound's, the
    # report's the player's (it said 0.244-2.316 s of speech a player shows at 1.244-3.316 s).
    clip = MediaPlan(path=str(tmp_path / "clip.mkv"), kind="video", width=8, height=8, detection={
        "speech": {"model": "silero_vad.onnx", "speech_seconds": 2.072, "sound_origin": 1.0}},
        regions=[Region("speech1", "detector", kind="speech", start=0.244, end=2.316)])
    voice = build_report(Plan(media=[clip], render=RenderSettings(voice="mute")),
                         {clip.path: Written(str(tmp_path / "out.mkv"), None)})["files"][0]["voice"]
    assert voice["segments"] == [[1.244, 3.316]] and "its sound starts at 1 s" in voice["times"]
    # A camera's MPEG-TS whose clock starts at 60 s, its sound with it: a player shows 0.244 s (the
    # report said 60.244 s, and a time copied into --start landed a minute late).
    clip.detection["speech"]["sound_origin"] = 60.0
    clip.detection["range_seconds"] = {"start": None, "end": None, "file_start": 60.0}
    voice = build_report(Plan(media=[clip], render=RenderSettings(voice="mute")),
                         {clip.path: Written(str(tmp_path / "out.mkv"), None)})["files"][0]["voice"]
    assert voice["segments"] == [[0.244, 2.316]]
    assert voice["times"] == "seconds from the file's start, as a player shows them"
    # Every kind asked for is counted, none found too: "plate: 0" is not "plates not asked for".
    photo = MediaPlan(path=str(tmp_path / "a.png"), kind="image", width=8, height=8, detection={"hide": ["face", "plate"]},
                      regions=[Region("f1", "detector", boxes={0: Box(1, 1, 4, 4, "detected", 0.9)})])
    assert build_report(Plan(media=[photo]), {photo.path: Written("out.png", None)})["files"][0]["hidden_by_kind"] == \
        {"face": 1, "plate": 0}
    # Anonymised: the ranges each segment's secret voice was drawn from are on record, as data.
    plan.render = RenderSettings(voice="anonymise")
    written = {media.path: Written(str(tmp_path / "out.wav"), None)}
    anonymiser = build_report(plan, written)["files"][0]["voice"]["anonymiser"]
    from veil.voice import ALPHA, PITCH
    assert anonymiser["pitch_factor"] == list(PITCH) and anonymiser["mcadams_alpha"] == list(ALPHA)
    by_hand = MediaPlan(path=str(tmp_path / "in.png"), kind="image", width=8, height=8)
    write_report(Plan(media=[by_hand]), {}, tmp_path / "audit.json")
    assert json.loads((tmp_path / "audit.json").read_text())["models"] == []
    page = (tmp_path / "audit.html").read_text()
    assert "no detection is recorded in the plan" in page and "none (planned by hand)" in page


@pytest.mark.skipif(not VIDEO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_json_says_which_run_file_was_not_written(tmp_path: Path):
    """A report that could not be written after the work (a file put at its name meanwhile, which
    veil does not replace unasked) gave exit code 1 and a --json answer of "failed": 0 and nothing
    else; a plan so met was refused in a library caller's words ("pass overwrite=True")."""
    folder, out = tmp_path / "in", tmp_path / "out"
    report_path, plan_path = tmp_path / "audit.json", tmp_path / "plan.json"
    folder.mkdir()
    shutil.copy(VIDEO, folder / VIDEO.name)
    run = subprocess.Popen([sys.executable, "-m", "veil", str(folder), "--output-dir", str(out), "--report",
                            str(report_path), "--save-plan", str(plan_path), "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = out / "veil-manifest.jsonl"
    while run.poll() is None and not (manifest.is_file() and '"started"' in manifest.read_text()):
        time.sleep(0.01)
    report_path.write_text("someone else's")  # the run's checks are done: its work has begun
    plan_path.write_text("someone else's")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1, stderr
    reason = f"{report_path} appeared while veil was writing it: use --overwrite to replace it"
    plan_reason = f"{plan_path} appeared while veil was writing it: use --overwrite to replace it"
    assert json.loads(stdout)["failed"] == 0 and json.loads(stdout)["not_written"] == [
        {"file": "plan", "path": str(plan_path), "reason": plan_reason},
        {"file": "report", "path": str(report_path), "reason": reason}]
    assert f"veil: the report was not written: {reason}" in stderr and report_path.read_text() == "someone else's"
    assert plan_path.read_text() == "someone else's"


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_a_name_that_is_not_utf8_is_given_so_any_program_can_find_the_file(tmp_path: Path):
    """A file named in Latin-1 ("caf\\xe9.jpg") was given to --json, the manifest and the report as a
    lone surrogate ("caf\\udce9.jpg"), which a program not in Python cannot map back to the file,
    and the report's HTML could not be encoded at all: no report was written."""
    from veil.command import app

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")
    shutil.copy(PHOTO, folder / name)
    report_path, out = tmp_path / "audit.json", tmp_path / "out"
    command = [str(folder), "--output-dir", str(out), "--report", str(report_path), "--json"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output

    def exact(record: dict, key: str) -> bytes:
        assert record[key].endswith("caf\ufffd.jpg")  # valid Unicode text, for reading
        return base64.b64decode(record[key + "_b64"])  # the name's bytes, to find the file by

    answer = json.loads(result.stdout)["results"][0]
    assert exact(answer, "input") == os.fsencode(folder / name) and exact(answer, "output") == os.fsencode(out / name)
    reported = json.loads(report_path.read_text())["files"][0]
    assert exact(reported, "input") == os.fsencode(folder / name)
    assert "caf\ufffd.jpg" in report_path.with_suffix(".html").read_text()
    records = [json.loads(line) for line in (out / "veil-manifest.jsonl").read_text().splitlines()]
    assert exact(records[-1], "path") == os.fsencode(folder / name)
    for text in (result.stdout, report_path.read_text(), (out / "veil-manifest.jsonl").read_text()):
        assert not re.search(r"\\ud[89a-f]", text, re.IGNORECASE)  # no lone surrogate, escaped or not
    # The manifest still knows the file: a rerun finds it done.
    again = CliRunner().invoke(app, command[:3] + ["--json"])
    assert json.loads(again.stdout)["already_done"] == 1, again.output


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data not found at {DATA} (../shared/data)")
def test_a_report_inside_an_output_is_refused_before_any_work(tmp_path: Path):
    # `-o out.jpg --report out.jpg/audit.json`: the report was found unwritable only after the work,
    # once the output was a file where its folder had to be.
    from veil.command import app

    output = tmp_path / "out.jpg"
    for command, line in [
            (["-o", str(output), "--report", str(output / "audit.json")],
             f"the output of {PHOTO} ({output}) would be a file where the report ({output / 'audit.json'}) needs a folder"),
            (["-o", str(tmp_path / "audit.json" / "out.jpg"), "--report", str(tmp_path / "audit.json")],
             f"the output of {PHOTO} ({tmp_path / 'audit.json' / 'out.jpg'}) would need a folder where the report "
             f"({tmp_path / 'audit.json'}) is written as a file")]:
        result = CliRunner().invoke(app, [str(PHOTO), *command])
        assert result.exit_code == 2 and result.stderr == f"veil: {line}\n", result.output
        assert not list(tmp_path.iterdir())


def test_report_says_how_each_video_was_encoded(tmp_path: Path):
    """The report's encoding settings give what was asked, None where veil chose: an auditor read
    "codec: null" for a VP9 recording written as H.264 at crf 18, veryfast, and could not tell
    what ran. Each written video now says its codec, CRF and preset as encoded."""
    from veil.command import app
    from video_support import reencode

    source, output, report_path = tmp_path / "clip.mkv", tmp_path / "out.mkv", tmp_path / "audit.json"
    reencode(DATA / "videos" / "youtube_faces" / "Aaron_Guiel5.mp4", source, 4, codec="libvpx-vp9", pix_fmt="yuv420p")
    result = CliRunner().invoke(app, [str(source), "-o", str(output), "--report", str(report_path), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["settings"]["encoding"]["codec"] is None  # asked for: nothing
    assert report["files"][0]["video_written_as"] == {"codec": "h264", "crf": 18, "preset": "veryfast"}
    assert "h264, crf 18, preset veryfast" in report_path.with_suffix(".html").read_text()
    given = CliRunner().invoke(app, [str(source), "-o", str(tmp_path / "out.webm"), "--crf", "30", "--report",
                                     str(report_path), "--overwrite", "--quiet"])
    assert given.exit_code == 0, given.output
    assert json.loads(report_path.read_text())["files"][0]["video_written_as"] == {"codec": "vp9", "crf": 30,
                                                                                  "preset": None}
