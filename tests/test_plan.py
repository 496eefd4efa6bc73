"""The redaction plan: JSON round trip, and refusal of anything that is not a valid plan."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from veil.imagefile import read_photo
from veil.photo import file_sha256, plan_photo, render_photo
from veil.plan import Box, Edit, Encoding, MediaPlan, Plan, PlanError, Region, RenderSettings
from photo_support import (
    GROUP, OBAMA, TWO_PEOPLE, copy_in, face_slice, planned_faces, rgb_of, share_near, veil_subprocess,
)


def sample_plan() -> Plan:
    photo = MediaPlan(
        path="/data/photos/ph oto é.jpg", kind="image", width=1126, height=661, sha256="ab" * 32,
        detection={"model": "centerface", "profile": "fast", "threshold": 0.2},
        regions=[
            Region("f1", "detector", "ellipse", {0: Box(199.5, -72.3, 427.2, 256.1, "detected", 0.931)}),
            Region("r1", "reviewer", "box", {0: Box(10.0, 20.0, 30.0, 40.0, "reviewer", None)},
                   keep_visible=True, reason="speaker consented"),
        ],
    )
    video = MediaPlan(
        path="/data/clip.mp4", kind="video", width=1920, height=1080, frame_count=90, sha256="cd" * 32,
        unanalysed_frames=[88, 89], unchecked_frames=[0, 1], scene_cuts=[40],
        frame_times=[round(i / 30, 6) for i in range(90)],
        regions=[Region("t1", "detector", "ellipse", {
            0: Box(1.0, 2.0, 50.5, 60.5, "detected", 0.8),
            1: Box(2.0, 2.0, 51.5, 60.5, "interpolated", None),
            2: Box(3.0, 2.0, 52.5, 60.5, "extended", None),
        })],
    )
    return Plan(
        media=[photo, video], render=RenderSettings("pixelate", (12, 34, 56), 6),
        encoding=Encoding(crf=23, codec="h265", preset="fast"), veil_version="0.1.0",
        edits=[Edit("2026-01-01T00:00:00+00:00", "/data/clip.mp4", "keep_visible", "r1", {"frames": [0, 1]}, "consent")],
    )


def test_plan_survives_a_round_trip_through_a_file(tmp_path):
    plan = sample_plan()
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = Plan.load(path)
    assert loaded == plan
    assert loaded.to_json() == plan.to_json()
    assert json.loads(path.read_text())["format"] == "veil-plan"


def test_keep_visible_regions_are_not_rendered():
    media = sample_plan().media[0]
    assert [region.id for region, _ in media.boxes_by_frame()[0]] == ["f1"]


def test_real_photo_plan_renders_the_same_after_a_round_trip(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = Plan(media=[plan_photo(source)])
    assert plan.media[0].sha256 == file_sha256(source)
    assert (plan.media[0].height, plan.media[0].width) == read_photo(source).pixels.shape[:2]
    assert len(plan.media[0].regions) == 2
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    render_photo(plan.media[0], plan.render, tmp_path / "direct.png")
    render_photo(again.media[0], again.render, tmp_path / "loaded.png")
    assert (tmp_path / "direct.png").read_bytes() == (tmp_path / "loaded.png").read_bytes()


def test_a_plan_that_takes_a_photo_for_a_video_is_refused(shared_data, tmp_path):
    """The file's content decides how it is read and written: a plan edited to call a photo a
    video would otherwise turn it into a one-frame video, hash and all still matching."""
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = Plan(media=[plan_photo(source)])
    plan.media[0].kind = "video"
    plan.save(tmp_path / "plan.json")
    result = veil_subprocess("--plan", tmp_path / "plan.json", "--output-dir", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the plan takes it for a video, but it is a photo" in result.stderr
    assert not (tmp_path / "out").exists() or [p.name for p in (tmp_path / "out").iterdir()] == ["veil-manifest.jsonl"]


def test_render_refuses_a_plan_for_other_pixels(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    media = plan_photo(source)
    media.sha256 = None  # no hash to compare: the size check still applies
    media.width += 1
    with pytest.raises(ValueError, match="plan is for a 1127x661 image"):
        render_photo(media, RenderSettings(), tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def broken(change) -> dict:
    data = sample_plan().to_json()
    data = json.loads(json.dumps(data))
    change(data)
    return data


def region(data, index=0):
    return data["media"][0]["regions"][index]


def speech_record(sound_seconds: float) -> dict:
    """The record of a speech search, with the figures every one veil writes holds."""
    return {"sound_seconds": sound_seconds, "speech_seconds": 0.0, "segments": 0}


INVALID = {
    "not a plan": (lambda d: d.update(format="something-else"), "format"),
    "future version": (lambda d: d.update(version=4), "version"),
    "no media list": (lambda d: d.pop("media"), "top level: 'media' is a required property"),
    "unknown mode": (lambda d: d["render"].update(mode="swirl"), "render/mode"),
    "too many blocks": (lambda d: d["render"].update(blocks=20), "render/blocks"),
    "colour out of range": (lambda d: d["render"].update(color=[0, 0, 256]), "render/color/2"),
    "unknown kind": (lambda d: d["media"][0].update(kind="sound"), "media/0/kind"),
    "zero width": (lambda d: d["media"][0].update(width=0), "media/0/width"),
    "unknown shape": (lambda d: region(d).update(shape="circle"), "media/0/regions/0/shape"),
    "id with a slash": (lambda d: region(d).update(id="../f1"), "media/0/regions/0/id"),
    "kept visible without reason": (lambda d: region(d, 1).update(reason=None), "media/0/regions/1/reason"),
    "box too short": (lambda d: region(d)["boxes"][0].pop(), "media/0/regions/0/boxes/0"),
    "unknown origin": (lambda d: region(d)["boxes"][0].__setitem__(5, "guessed"), "media/0/regions/0/boxes/0/5"),
    "negative frame": (lambda d: region(d)["boxes"][0].__setitem__(0, -1), "media/0/regions/0/boxes/0/0"),
    "coordinate as text": (lambda d: region(d)["boxes"][0].__setitem__(1, "12"), "media/0/regions/0/boxes/0/1"),
    "coordinate not a number": (lambda d: region(d)["boxes"][0].__setitem__(3, float("nan")), "media/0/regions/0/boxes/0"),
    "coordinate infinite": (lambda d: region(d)["boxes"][0].__setitem__(2, float("-inf")), "media/0/regions/0/boxes/0"),
    # Both loaded, and reached the plan saved again and the report as NaN, which no JSON reader but
    # Python's takes.
    "score not a number": (lambda d: region(d)["boxes"][0].__setitem__(6, float("nan")),
                           "media/0/regions/0/boxes/0/6: NaN and Infinity are not JSON numbers"),
    "frame time not a number": (lambda d: d["media"][1]["frame_times"].__setitem__(3, float("nan")),
                            "media/1/frame_times/3: NaN and Infinity"),
    # A box turned inside out would hide nothing while the plan still lists it.
    "box inside out": (lambda d: region(d)["boxes"][0].__setitem__(slice(1, 5), [500, 300, 100, 10]),
                       "media/0/regions/0/boxes/0: its right or bottom edge"),
    "frame past a photo's one": (lambda d: region(d)["boxes"][0].__setitem__(0, 5), "media/0/regions/0/boxes/0: frame 5"),
    "frame past a video's last": (lambda d: d["media"][1]["regions"][0]["boxes"][0].__setitem__(0, 90),
                                  "media/1/regions/0/boxes/0: frame 90"),
    "speech with boxes": (lambda d: region(d).update(kind="speech"), "media/0/regions/0: a speech region"),
    "a face in a sound file": (lambda d: d["media"][1].update(kind="audio"), "media/1/regions/0: a sound file holds no face"),
    # A second box on a frame replaced the first, whose face was then left visible.
    "two boxes on one frame": (lambda d: region(d)["boxes"].append([0, 10, 10, 20, 20, "reviewer", None]),
                               "media/0/regions/0/boxes/1: frame 0 has a box already"),
    # Finite but huge: the renderer's integers overflowed (pixelate, blur).
    "coordinate absurdly far": (lambda d: region(d)["boxes"][0].__setitem__(3, 1e300), "media/0/regions/0/boxes/0: a coordinate lies"),
    # Speech segments that would silence nothing while the summary says they were muted.
    "speech without times": (lambda d: (d["media"][1].update(kind="audio", regions=[
        {"id": "s1", "kind": "speech", "source": "reviewer", "shape": "box", "keep_visible": False, "boxes": []}])),
        "media/1/regions/0: a speech region needs its start and end"),
    "speech ending before it starts": (lambda d: (d["media"][1].update(kind="audio", regions=[
        {"id": "s1", "kind": "speech", "source": "reviewer", "shape": "box", "keep_visible": False, "boxes": [],
         "start": 4.0, "end": 1.0}])), "media/1/regions/0: a speech region must end after it starts"),
    "speech after the sound": (lambda d: (d["media"][1].update(kind="audio", detection={"speech": speech_record(3.0)}, regions=[
        {"id": "s1", "kind": "speech", "source": "reviewer", "shape": "box", "keep_visible": False, "boxes": [],
         "start": 50.0, "end": 60.0}])), "media/1/regions/0: a speech region starts at 50.0 s, after"),
    "a path holding a NUL": (lambda d: d["media"][0].update(path="/data/a\0.jpg"), "media/0: its path holds a NUL"),
    # The report, which names them, was not written.
    "a file not done that no file can be": (lambda d: d.update(interrupted={"files_not_done": ["/data/\ud800.jpg"]}),
                                            "interrupted/files_not_done: a name holds"),
    "a path holding a lone surrogate": (lambda d: d["media"][0].update(path_from_plan="\ud800.jpg"),
                                        "media/0: its path holds a NUL character or a lone surrogate"),
    "frames past the end not analysed": (lambda d: d["media"][1].update(unanalysed_frames=[200]),
                                         "media/1: unanalysed_frames lists a frame past"),
    # Reported as hidden while hiding nothing; a reviewer's delete of it failed with a traceback.
    "a region without boxes": (lambda d: region(d).update(boxes=[]), "media/0/regions/0: a region needs at least one box"),
    # Each of these loaded, and the run failed later as "a bug in veil" (a detection record read
    # as an object, an edit built from the plan's keys, a coordinate's size taken as a float's).
    "speech record not an object": (lambda d: d["media"][0].update(detection={"speech": "x"}),
                                    "media/0/detection/speech: 'x' is not of type 'object', 'null'"),
    "speech record without its figures": (lambda d: d["media"][1].update(detection={"speech": {"sound_seconds": 3.0}}),
                                          "media/1/detection/speech: 'speech_seconds' is a required property"),
    "count of left-out pages as text": (lambda d: d["media"][0]["detection"].update(other_images_not_written="2"),
                                        "media/0/detection/other_images_not_written"),
    "an edit with a key no edit has": (lambda d: d["edits"][0].update(note="x"),
                                       "edits/0: Additional properties are not allowed"),
    # Rendered, exit 0: a key veil does not read (a misspelt "keep_visble": true) did nothing, unsaid.
    "a region with a key no region has": (lambda d: region(d).update(keep_visble=True),
                                          "media/0/regions/0: Additional properties are not allowed"),
    "coordinate of 400 digits": (lambda d: region(d)["boxes"][0].__setitem__(3, 10 ** 400),
                                 "media/0/regions/0/boxes/0: a coordinate lies more than 1,000,000 px"),
    "frame time of 400 digits": (lambda d: d["media"][1]["frame_times"].__setitem__(5, 10 ** 400),
                                 "media/1/frame_times/5"),
    # Rendered with --voice mute, its segments were found again and added beside these, counted twice.
    "speech without its search's record": (lambda d: (d["media"][1].update(kind="audio", regions=[
        {"id": "s1", "kind": "speech", "source": "reviewer", "shape": "box", "keep_visible": False, "boxes": [],
         "start": 1.0, "end": 2.0}])), "media/1/regions/0: a speech region needs the plan's record"),
}


def test_whole_floats_and_a_null_speech_record_load():
    # Both were loaded before the settings and speech checks; both then failed as "a bug in veil".
    data = broken(lambda d: (d["render"].update(blocks=6.0, color=[0.0, 0, 255.0]),
                             d["media"][0].update(detection={"speech": None})))
    plan = Plan.from_json(data)
    assert plan.render.blocks == 6 and plan.render.color == (0, 0, 255)


def test_speech_reaching_past_the_sound_ends_with_it():
    # 18 s were reported muted in a sound of 7.3 s.
    data = broken(lambda d: d["media"][1].update(kind="audio", detection={"speech": speech_record(7.328)}, regions=[
        {"id": "s1", "kind": "speech", "source": "reviewer", "shape": "box", "keep_visible": False, "boxes": [],
         "start": 7.0, "end": 25.0}]))
    assert Plan.from_json(data).media[1].regions[0].end == 7.328


def test_a_box_inside_out_but_off_the_picture_still_loads():
    """veil wrote such bodies (--hide people) for a head carried past a frame's edge; they hide
    nothing either way, and their plans must still load."""
    data = broken(lambda d: d["media"][1]["regions"][0]["boxes"][0].__setitem__(slice(1, 5), [756.3, 1089.2, 1143.7, 1080.0]))
    assert Plan.from_json(data).media[1].regions[0].boxes[0].y0 == 1089.2


def test_a_body_below_a_head_past_the_frame_is_never_inside_out():
    from veil.people import body_below

    for head in (Box(800, 1090, 1000, 1300), Box(-400, 100, -200, 300), Box(2000, -500, 2200, -300)):
        body = body_below(head, 1920, 1080)
        assert body.x0 <= body.x1 and body.y0 <= body.y1


@pytest.mark.parametrize("name", INVALID)
def test_invalid_plans_are_refused_saying_where(name):
    change, where = INVALID[name]
    with pytest.raises(PlanError, match="not a valid veil plan at " + where):
        Plan.from_json(broken(change))


def test_a_plan_listing_one_file_twice_is_refused():
    with pytest.raises(PlanError, match="the plan lists /data/photos/ph oto é.jpg twice"):
        Plan.from_json(broken(lambda d: d["media"].append(d["media"][0])))


def test_a_plan_naming_one_file_by_two_paths_or_none_is_refused(shared_data, tmp_path):
    # Two entries for one file (a link and its target): each input took the last, and the other
    # entry's regions (a reviewer's box) were dropped. A plan of no file (saved by a run where
    # every file failed) would detect afresh.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    plan_path = tmp_path / "plan.json"
    run = veil_subprocess(link, photo, "--dry-run", "--save-plan", plan_path)
    assert run.returncode == 0 and "the same file was named by another path" in run.stderr
    # The same path twice is not "another path".
    run = veil_subprocess(photo, photo, "--dry-run")
    assert run.returncode == 0 and f"skipped {photo}: named twice" in run.stderr, run.stderr
    assert len(json.loads(plan_path.read_text())["media"]) == 1
    data = json.loads(plan_path.read_text())
    data["media"].append({**data["media"][0], "path": str(photo), "regions": []})
    plan_path.write_text(json.dumps(data))
    refused = veil_subprocess("--plan", plan_path, "--output-dir", tmp_path / "out")
    assert refused.returncode == 2 and "the plan lists one file twice" in refused.stderr
    assert not (tmp_path / "out").exists()
    plan_path.write_text(json.dumps({**data, "media": []}))
    empty = veil_subprocess(photo, "--plan", plan_path, "-o", tmp_path / "out.jpg")
    assert empty.returncode == 2 and "the plan lists no files" in empty.stderr


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b""])
def test_unreadable_plan_files_are_refused(tmp_path, content):
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(PlanError, match="cannot read plan"):
        Plan.load(path)
    with pytest.raises(PlanError, match="cannot read plan"):
        Plan.load(tmp_path / "missing.json")


def test_a_plan_that_is_no_regular_file_is_refused_unread(tmp_path):
    # A pipe with no writer waited for ever; /dev/zero was read until the memory ran out, then
    # said as "not enough memory to redact it".
    pipe = tmp_path / "plan.fifo"
    os.mkfifo(pipe)
    for path in (pipe, Path("/dev/zero")):
        with pytest.raises(PlanError, match=f"^cannot read plan: {path} is not a regular file$"):
            Plan.load(path)


def strict_json(text: str) -> Any:
    """`text` read as JSON readers outside Python read it: no NaN or Infinity, no lone surrogate."""
    def refused(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    data = json.loads(text, parse_constant=refused)
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # a lone surrogate, in a key or a value, raises
    return data


def test_a_plan_naming_files_that_are_not_utf8_is_strict_json_and_loads_them_exactly(tmp_path):
    """A name in Latin-1 ("caf\\xe9.jpg") was written as a lone surrogate escape ("caf\\udce9.jpg"),
    which JSON readers outside Python refuse or read as a name no file has."""
    name, undone = os.fsdecode(b"/data/caf\xe9.jpg"), os.fsdecode(b"/data/\xff.mp4")
    plan = sample_plan()
    plan.media[0].path = name
    plan.edits[0].media = name
    plan.interrupted = {"signal": "SIGINT", "files_not_done": ["/data/other.jpg", undone]}
    plan.edits[0].detail = {"by \udce9": 1}  # a key no tool of veil's writes, but a hand edit can
    path = tmp_path / "plan.json"
    plan.save(path)
    data = strict_json(path.read_text(encoding="utf-8"))
    assert data["media"][0]["path"] == "/data/caf\ufffd.jpg"
    assert base64.b64decode(data["media"][0]["path_b64"]) == b"/data/caf\xe9.jpg"
    loaded = Plan.load(path)
    assert loaded.media[0].path == name and loaded.edits[0].media == name
    assert loaded.stopped_earlier == plan.interrupted
    # A name edited by hand is the name as edited, not the one its stale bytes give.
    data["media"][0]["path"] = "/data/renamed.jpg"
    assert Plan.from_json(data).media[0].path == "/data/renamed.jpg"


def test_a_plan_gives_the_bytes_of_each_non_ascii_name_and_keeps_other_text_as_it_is():
    """A reason a reviewer typed ("Zoë") is text, not a name: given bytes, a reader in another locale
    would read it back changed."""
    plan = sample_plan()
    plan.media[0].regions[1].reason = "Zoë consented"
    data = plan.to_json()
    assert base64.b64decode(data["media"][0]["path_b64"]) == os.fsencode("/data/photos/ph oto é.jpg")
    region = data["media"][0]["regions"][1]
    assert region["reason"] == "Zoë consented" and "reason_b64" not in region
    assert Plan.from_json(data) == plan


def test_a_run_over_a_file_named_in_latin1_saves_a_strict_plan_that_renders_it(shared_data, tmp_path):
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path, name=os.fsdecode(b"caf\xe9.jpg"))
    plan_path, out = tmp_path / "plan.json", tmp_path / "out.jpg"
    planned = veil_subprocess(photo, "--dry-run", "--save-plan", plan_path)
    assert planned.returncode == 0, planned.stderr
    strict_json(plan_path.read_text(encoding="utf-8"))
    rendered = veil_subprocess("--plan", plan_path, "-o", out)
    assert rendered.returncode == 0 and out.is_file(), rendered.stderr


# Locales whose file-system encoding is not UTF-8: Python reads a name's bytes in it, and a UTF-8
# "café.jpg" is "cafÃ©.jpg" (Latin-1) or "caf\udcc3\udca9.jpg" (ASCII) there. Python turns the C
# locale into UTF-8 unless told not to.
NOT_UTF8 = {"iso8859-1": {"LC_ALL": "en_US.ISO-8859-1", "PYTHONUTF8": "0"},
            "ascii": {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}}
UTF8 = {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}


def file_system_encoding(env: dict[str, str]) -> str:
    """The encoding Python reads file names in under `env` (a locale not installed falls back to C's)."""
    answer = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                            capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=True)
    return answer.stdout.strip()


@pytest.mark.parametrize("encoding", sorted(NOT_UTF8))
def test_a_url_is_recorded_as_its_text_in_every_locale(encoding):
    """A URL's backend sends its text as UTF-8 whatever the locale: under Latin-1, s3://b/café.jpg
    was recorded as "caf\ufffd.jpg", with its Latin-1 bytes beside it for a key that has none."""
    locale = NOT_UTF8[encoding]
    if file_system_encoding(locale) != encoding:
        pytest.skip(f"the locale {locale['LC_ALL']} is not installed here")
    code = ("import json; from veil.names import readable_anywhere; "
            "print(json.dumps(readable_anywhere({'path': 's3://b/caf\\u00e9.jpg', 'input': ['gs://b/\\u00e9t\\u00e9/']})))")
    source = str(Path(__file__).resolve().parents[1] / "src")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, **locale, "PYTHONPATH": source})
    assert json.loads(answer.stdout) == {"path": "s3://b/café.jpg", "input": ["gs://b/été/"]}


@pytest.mark.parametrize("encoding", sorted(NOT_UTF8))
def test_a_plan_saved_in_a_locale_that_is_not_utf8_renders_its_file_in_one_that_is(shared_data, tmp_path, encoding):
    """Under en_US.ISO-8859-1 a UTF-8 "café.jpg" was saved in the plan as "cafÃ©.jpg" with no bytes
    beside it, and under C (not made UTF-8) as "caf\\ufffd\\ufffd.jpg" with bytes a UTF-8 reader
    took for stale: rendered under a UTF-8 locale, the plan's file was "no such file". A plan saved
    under UTF-8 failed so in the other locale, and a manifest kept there did not know the file."""
    locale = NOT_UTF8[encoding]
    if file_system_encoding(locale) != encoding:
        pytest.skip(f"the locale {locale['LC_ALL']} is not installed here")
    photo = copy_in(shared_data, GROUP, tmp_path, name=os.fsdecode("café.jpg".encode()))
    plan_path, out = tmp_path / "plan.json", tmp_path / "out"
    planned = veil_subprocess(photo, "--dry-run", "--color", "white", "--save-plan", plan_path, env=locale)
    assert planned.returncode == 0, planned.stderr
    saved = strict_json(plan_path.read_text(encoding="utf-8"))["media"][0]
    assert saved["path"] == f"{tmp_path}/café.jpg"  # the name's text, as any locale reads it
    assert base64.b64decode(saved["path_b64"]) == os.fsencode(photo)
    assert Plan.load(plan_path).media[0].path == str(photo)

    rendered = veil_subprocess("--plan", plan_path, "--output-dir", out, env=UTF8)
    assert rendered.returncode == 0 and (out / photo.name).is_file(), rendered.stderr
    faces, pixels = planned_faces(plan_path), rgb_of(out / photo.name)
    assert faces, "the group photo shows faces"
    for face in faces:
        assert share_near(pixels[face_slice(face)], (255, 255, 255), 24) >= 0.95, "face not hidden"

    # The other way round: a plan saved under UTF-8 names the file to a reader in that locale.
    again, out_again = tmp_path / "again.json", tmp_path / "again.jpg"
    assert veil_subprocess("--plan", plan_path, "--dry-run", "--save-plan", again, env=UTF8).returncode == 0
    rendered = veil_subprocess("--plan", again, "-o", out_again, env=locale)
    assert rendered.returncode == 0 and out_again.is_file(), rendered.stderr
    # And the manifest the UTF-8 render kept knows the file in this locale: a rerun finds it done.
    rerun = veil_subprocess("--plan", plan_path, "--output-dir", out, "--json", env=locale)
    assert json.loads(rerun.stdout)["already_done"] == 1, rerun.stderr


def test_a_dry_run_of_a_plan_for_a_file_since_changed_fails_as_its_render_would(shared_data, tmp_path):
    """It said the plan's regions "would be hidden" and exited 0, while the run itself refused the file."""
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan_path = tmp_path / "plan.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", plan_path).returncode == 0
    photo.write_bytes(photo.read_bytes() + b"edited")
    for run in (("--dry-run",), ("-o", tmp_path / "out.jpg")):
        result = veil_subprocess("--plan", plan_path, *run)
        assert result.returncode == 1, result.stderr
        assert f"veil: {photo}: the file has changed since its plan was made" in result.stderr
    assert not (tmp_path / "out.jpg").exists()


def test_a_plan_saved_into_a_folder_not_there_yet_makes_it_as_a_report_does(shared_data, tmp_path):
    """--save-plan new/plan.json failed after the whole run, naming its lock file
    ("new/plan.json.veil-lock: No such file or directory"), while --report new/r.json made the folder."""
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan_path = tmp_path / "new" / "deeper" / "plan.json"
    result = veil_subprocess(photo, "--dry-run", "--save-plan", plan_path)
    assert result.returncode == 0 and "veil-lock" not in result.stderr, result.stderr
    assert Plan.load(plan_path).media[0].regions
    assert sorted(p.name for p in plan_path.parent.iterdir()) == ["plan.json"]


def test_a_link_or_a_pipe_where_the_plan_s_lock_file_goes_is_never_followed(shared_data, tmp_path):
    """A link planted as <plan>.veil-lock made a file wherever it pointed (veil run as root: anywhere)
    and was then removed; a pipe there held the run for ever."""
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan_path = tmp_path / "plan.json"
    lock = tmp_path / "plan.json.veil-lock"
    elsewhere = tmp_path / "elsewhere" / "made-by-veil"
    elsewhere.parent.mkdir()
    lock.symlink_to(elsewhere)
    result = veil_subprocess(photo, "--dry-run", "--save-plan", plan_path)
    assert result.returncode != 0 and "a symbolic link: veil writes nothing through a link" in result.stderr, \
        result.stderr
    assert not elsewhere.exists() and lock.is_symlink() and not plan_path.exists()
    lock.unlink()
    os.mkfifo(lock)
    result = veil_subprocess(photo, "--dry-run", "--save-plan", plan_path)  # (its timeout: a run held for ever)
    assert result.returncode != 0 and "not a regular file" in result.stderr, result.stderr


def test_plan_file_is_compact_and_exact_enough():
    data = sample_plan().to_json()
    boxes = data["media"][1]["regions"][0]["boxes"]
    assert boxes[1] == [1, 2.0, 2.0, 51.5, 60.5, "interpolated", None]
    assert copy.deepcopy(data) == Plan.from_json(data).to_json()
    assert np.isclose(data["media"][1]["frame_times"][-1], 89 / 30)


def test_a_plan_of_a_folder_renders_into_the_same_folders_as_a_run_over_it(shared_data, tmp_path):
    # Cameras name files alike in every folder: flattened, day1/ and day2/ would meet in one name.
    for day in ("day1", "day2"):
        (tmp_path / "photos" / day).mkdir(parents=True)
        copy_in(shared_data, TWO_PEOPLE, tmp_path / "photos" / day, name="IMG_0001.jpg")
    planned = veil_subprocess(tmp_path / "photos", "--dry-run", "--save-plan", tmp_path / "plan.json")
    assert planned.returncode == 0, planned.stderr
    rendered = veil_subprocess("--plan", tmp_path / "plan.json", "--output-dir", tmp_path / "out")
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "out" / "day1" / "IMG_0001.jpg").is_file() and (tmp_path / "out" / "day2" / "IMG_0001.jpg").is_file()


def test_a_hand_edited_plan_is_refused_naming_the_file_and_field_before_anything_is_written(shared_data, tmp_path):
    # detection.speech as text: the output was written, then the report failed ("unexpected
    # AttributeError ... a bug in veil"), and nothing said the output existed. An edit with a
    # key of its own, a coordinate of 400 digits: "unexpected TypeError / OverflowError".
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    saved = tmp_path / "saved.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", saved, "-q").returncode == 0
    edits = {
        "media/0/detection/speech: 'x' is not of type 'object', 'null'":
            lambda d: d["media"][0]["detection"].update(speech="x"),
        "edits/0: Additional properties are not allowed ('note' was unexpected)":
            lambda d: d["edits"].append({"time": "t", "media": "m", "action": "a", "note": "x"}),
        "media/0/regions/0/boxes/0: a coordinate lies more than 1,000,000 px from the picture's corner":
            lambda d: d["media"][0]["regions"][0]["boxes"][0].__setitem__(3, 10 ** 400),
        # These two also got past the loader: the output was written, then its notes failed.
        "media/0/detection/stream/time_holes/0/1: 'a' is not of type 'number'":
            lambda d: d["media"][0]["detection"].update(stream={"time_holes": [[1, "a"]]}),
        "media/0/detection/stream/damage: 'damaged_frames' is a required property":
            lambda d: d["media"][0]["detection"].update(stream={"damage": {}}),
    }
    for where, change in edits.items():
        data = json.loads(saved.read_text())
        change(data)
        edited = tmp_path / "edited.json"
        edited.write_text(json.dumps(data))
        run = veil_subprocess(photo, "--plan", edited, "-o", tmp_path / "out.jpg", "--report", tmp_path / "report.json")
        assert run.returncode == 2 and run.stderr.splitlines() == [f"veil: {edited}: not a valid veil plan at {where}"], \
            run.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([photo.name, saved.name, edited.name])



def test_a_plan_with_a_null_speech_record_renders_and_is_reported(shared_data, tmp_path):
    # The schema allows a null record; the report read it as a dictionary: the output was written,
    # then "unexpected AttributeError", no report, and nothing said the output existed.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    saved = tmp_path / "saved.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", saved, "-q").returncode == 0
    data = json.loads(saved.read_text())
    data["media"][0]["detection"]["speech"] = None
    del data["media"][0]["detection_sha256"]  # as another program would write it
    saved.write_text(json.dumps(data))
    run = veil_subprocess(photo, "--plan", saved, "-o", tmp_path / "out.jpg", "--report", tmp_path / "report.json")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "report.json").read_text())["files"][0]["output"].endswith("out.jpg")

def test_a_report_is_never_written_over_the_plan_it_renders(shared_data, tmp_path):
    # `--plan review.json --report review.html --overwrite` put the report's JSON in review.json:
    # the reviewed plan was lost, and the report named as the plan rendered a file holding itself.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "review.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", plan, "-q").returncode == 0
    reviewed = plan.read_bytes()
    for report in (plan.with_suffix(".html"), plan):
        run = veil_subprocess("--plan", plan, "-o", tmp_path / "out.jpg", "--report", report, "--overwrite")
        assert run.returncode == 2 and run.stderr.splitlines() == [
            f"veil: the report ({plan}) would overwrite the plan rendered (--plan)"], run.stderr
        assert plan.read_bytes() == reviewed and not (tmp_path / "out.jpg").exists()
    # Saved again in place, the plan stays a plan.
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "out.jpg", "--save-plan", plan, "--overwrite")
    assert run.returncode == 0, run.stderr
    assert Plan.load(plan).media[0].sha256 == file_sha256(photo)
    # Nor over the plan it saves: `--save-plan q.json --report q.html` passed as the plan claimed
    # twice, and wrote the report's JSON over the plan (--overwrite) or its HTML alone.
    for saved, report in ((tmp_path / "q.json", tmp_path / "q.html"), (tmp_path / "r.html", tmp_path / "r")):
        for overwrite in ((), ("--overwrite",)):
            run = veil_subprocess(photo, "--save-plan", saved, "--report", report, "-o", tmp_path / "new.jpg", *overwrite)
            assert run.returncode == 2 and run.stderr.splitlines() == [
                f"veil: the report ({saved}) would overwrite the plan"], run.stderr
            assert not saved.exists() and not report.exists() and not (tmp_path / "new.jpg").exists()


def stopped_plan(shared_data, tmp_path, name: str) -> tuple[Path, Path, Path, dict]:
    """A plan as a run stopped after its first file saves it: (the file planned, the file never
    planned, the plan's path, the plan as saved)."""
    planned = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    never = copy_in(shared_data, OBAMA, tmp_path / "in")
    plan = tmp_path / name
    assert veil_subprocess(planned, "--dry-run", "--save-plan", plan, "-q").returncode == 0
    saved = json.loads(plan.read_text())
    saved["interrupted"] = {"signal": "SIGINT", "files_not_done": [str(never)]}
    plan.write_text(json.dumps(saved))
    return planned, never, plan, saved


def test_rendering_a_stopped_runs_plan_names_the_files_it_never_planned(shared_data, tmp_path):
    # A run stopped after some files saves a plan of those, recording the rest as not done; rendered
    # later, that plan wrote its files and said "0 failed, 0 skipped", the rest of the folder unsaid.
    planned, never, plan, _ = stopped_plan(shared_data, tmp_path, "plan.json")
    report = tmp_path / "audit.json"
    run = veil_subprocess("--plan", plan, "--output-dir", tmp_path / "out", "--report", report, "--json")
    assert run.returncode == 0, run.stderr
    why = "in no plan: the run that saved the plan was stopped before it (redact it in a run of its own)"
    assert json.loads(run.stdout)["skipped_files"] == [{"path": str(never), "reason": why}]
    assert {"path": str(never), "status": "skipped", "reason": why} in json.loads(report.read_text())["not_redacted"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [planned.name, "veil-manifest.jsonl"]


def test_a_region_a_plan_keeps_visible_is_said_as_speech_kept_audible_is(shared_data, tmp_path):
    # A plan (edited by hand, or from someone else) that kept a face visible was rendered saying only
    # "1 region(s) hidden", with --quiet nothing: the face left in the output went unsaid.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "plan.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", plan, "-q").returncode == 0
    saved = json.loads(plan.read_text())
    saved["media"][0]["regions"][0].update(keep_visible=True, reason="the speaker consented")
    plan.write_text(json.dumps(saved))
    report = tmp_path / "audit.json"
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "out.jpg", "--report", report, "-q")
    said = "1 region(s) were left visible, as the plan's reviewer chose (f1; the plan and the report give the reasons)"
    assert run.returncode == 0 and run.stderr.splitlines() == [f"veil: {photo}: {said}"], run.stderr
    assert json.loads(report.read_text())["files"][0]["notes"] == [said]


def test_a_stopped_runs_plan_saved_again_still_names_the_files_it_never_planned(shared_data, tmp_path, capsys):
    # `veil --plan stopped.json --save-plan new.json` saved a plan without the stopped run's record, and
    # `veil review --plan stopped.json` saved it in place without it: the files never planned dropped
    # out of sight, and a render of the new plan said "0 skipped".
    from veil.detect import FAST
    from veil.pipeline import Analysis
    from veil.review.cli import open_session

    _, never, plan, saved = stopped_plan(shared_data, tmp_path, "stopped.json")
    again = tmp_path / "again.json"
    run = veil_subprocess("--plan", plan, "--dry-run", "--save-plan", again, "-q")
    assert run.returncode == 0, run.stderr
    assert json.loads(again.read_text())["interrupted"] == saved["interrupted"]
    run = veil_subprocess("--plan", again, "--output-dir", tmp_path / "out", "--json")
    assert [s["path"] for s in json.loads(run.stdout)["skipped_files"]] == [str(never)], run.stdout

    open_session([], plan, None, tmp_path / "reviewed", None, RenderSettings(), Analysis(FAST))
    assert json.loads(plan.read_text())["interrupted"] == saved["interrupted"]  # saved in place, record kept
    assert (f"veil review: 1 file(s) in no plan, left as they are by this review (the run that saved the plan was "
            f"stopped before them; redact them in a run of their own): {never}") in capsys.readouterr().err


def test_a_refused_encoding_setting_says_it_came_from_the_plan(shared_data, tmp_path):
    # A plan's crf was refused as "--crf 63 is beyond H.264's scale": the user, who typed no --crf,
    # was sent looking for an option never given, not to the plan that held it.
    source = shared_data / "videos" / "intel_walking_and_headpose" / "people-detection.mp4"
    plan = tmp_path / "plan.json"
    Plan(media=[MediaPlan(path=str(source), kind="video", width=480, height=270, frame_count=23,
                          sha256=file_sha256(source))],
         encoding=Encoding(crf=63, preset="slow")).save(plan)
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "out.mp4")
    assert run.returncode == 1 and (f"veil: {source}: the plan's crf 63 (in its encoding settings) is beyond "
                                    "H.264's scale (0-51): --crf overrides it") in run.stderr, run.stderr
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "out.webm", "--crf", "30")  # VP9: no preset
    assert run.returncode == 1 and (f"veil: {source}: the plan's preset slow (in its encoding settings) is for H.264 "
                                    "and H.265 only, and this video would be written as VP9: --codec h264 or h265 "
                                    "overrides the codec") in run.stderr, run.stderr
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.webm").exists()


def test_a_run_that_plans_no_file_writes_no_plan(shared_data, tmp_path):
    # A run whose one input failed wrote a plan of nothing, which then refused the corrected run
    # ("the plan exists: use --overwrite").
    saved = tmp_path / "saved.json"
    run = veil_subprocess(tmp_path / "missing.jpg", "--dry-run", "--save-plan", saved)
    assert run.returncode == 1 and "the plan was not written: no file was planned" in run.stderr, run.stderr
    assert not saved.exists()
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    assert veil_subprocess(photo, "--dry-run", "--save-plan", saved, "-q").returncode == 0
    assert Plan.load(saved).media[0].path == str(photo.absolute())


def test_a_plan_changed_outside_veil_is_said_and_recorded_in_its_edits(shared_data, tmp_path):
    # A plan edited by hand (a face's region deleted) was rendered and reported as if its regions
    # were veil's detection and the recorded edits: the report had no trace of the change.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan, report = tmp_path / "plan.json", tmp_path / "audit.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", plan, "-q").returncode == 0
    saved = json.loads(plan.read_text())
    plan.write_text(json.dumps(saved, indent=4))  # laid out anew, unchanged: as veil saved it
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "a.jpg", "--report", report)
    assert run.returncode == 0 and "changed" not in run.stderr, run.stderr
    audit = json.loads(report.read_text())
    assert audit["plan_file"]["changed_outside_veil"] is None and audit["edits"] == []

    del saved["media"][0]["regions"][0]
    plan.write_text(json.dumps(saved))
    again = tmp_path / "again.json"
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "b.jpg", "--report", report, "--overwrite",
                          "--save-plan", again)
    assert run.returncode == 0, run.stderr
    assert f"the plan {plan}: it does not match the checksum veil saved in it: changed since" in run.stderr
    audit = json.loads(report.read_text())
    assert audit["plan_file"]["changed_outside_veil"].startswith("it does not match the checksum")
    assert [(e["action"], e["detail"]["plan"]) for e in audit["edits"]] == [("plan changed outside veil", str(plan))]
    assert "Plan changed outside veil" in (tmp_path / "audit.html").read_text()
    # Saved again, the plan matches its new checksum, and the change stays in its edits.
    run = veil_subprocess("--plan", again, "-o", tmp_path / "c.jpg", "--report", report, "--overwrite", "-q")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    audit = json.loads(report.read_text())
    assert audit["plan_file"]["changed_outside_veil"] is None
    assert [e["action"] for e in audit["edits"]] == ["plan changed outside veil"]

    del saved["checksum"]  # a plan another program wrote, or an older veil saved
    plan.write_text(json.dumps(saved))
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "d.jpg", "--json")
    assert run.returncode == 0, run.stderr
    assert any(note.startswith(f"the plan {plan}: it holds no checksum") for note in json.loads(run.stdout)["notes"])


def test_a_plan_whose_detection_record_was_edited_is_refused(shared_data, tmp_path):
    # A video's record names the stream its boxes were found on, a sound's the clock its speech
    # times are on: a user who set the stream index to the file's other stream had that stream
    # written with the first one's boxes (its faces visible, "1 region(s) hidden"), and a sound
    # clock moved by hand left the first seconds of speech audible, reported muted.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "plan.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", plan, "-q").returncode == 0
    saved = json.loads(plan.read_text())
    record = saved["media"][0]["detection"]
    assert saved["media"][0]["detection_sha256"]
    record["stream"] = {"index": 1}
    plan.write_text(json.dumps(saved))
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "a.jpg")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "its detection record (how its regions were found" in run.stderr and "was changed since veil saved it" in run.stderr
    assert not (tmp_path / "a.jpg").exists()
    # A plan without the record's checksum (another program's, an older veil's) renders, said as changed.
    del saved["media"][0]["detection_sha256"]
    plan.write_text(json.dumps(saved))
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "b.jpg")
    assert run.returncode == 0 and "does not match the checksum veil saved in it" in run.stderr, run.stderr


def as_javascript_writes(value):
    """JSON as JavaScript's JSON.stringify (and jq) writes it: a whole number without its ".0"."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: as_javascript_writes(each) for key, each in value.items()}
    return [as_javascript_writes(each) for each in value] if isinstance(value, list) else value


def test_a_plan_rewritten_by_another_json_program_keeps_its_detection_record(shared_data, tmp_path):
    # A face added with node or jq, which write 1.0 as 1: the untouched detection record was
    # refused as "changed since veil saved it" (rc 2), and the user told to detect again.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "plan.json"
    assert veil_subprocess(photo, "--dry-run", "--save-plan", plan, "-q").returncode == 0
    saved = json.loads(plan.read_text())
    assert "1.0" in json.dumps(saved["media"][0]["detection"])  # whole numbers Python writes with ".0"
    saved["media"][0]["regions"].append({"id": "added", "source": "reviewer", "shape": "ellipse", "keep_visible": False,
                                         "boxes": [[0, 10.0, 10.0, 90.0, 90.0, "reviewer", None]]})
    plan.write_text(json.dumps(as_javascript_writes(saved)))
    run = veil_subprocess("--plan", plan, "-o", tmp_path / "a.jpg")
    assert run.returncode == 0, run.stderr
    assert "does not match the checksum veil saved in it" in run.stderr and (tmp_path / "a.jpg").exists()


@pytest.mark.parametrize("where", ["top level", "file", "render", "interrupted"])
def test_a_key_the_plan_does_not_know_is_refused_at_any_level(where: str, tmp_path):
    # A missed face added one level off ("regions" beside "media", "region" in a file's entry) was
    # dropped without a word: the output written, the face visible, "2 region(s) hidden".
    data = sample_plan().to_json()
    region = {"id": "added", "source": "reviewer", "shape": "ellipse", "keep_visible": False,
              "boxes": [[0, 10.0, 10.0, 90.0, 90.0, "reviewer", None]]}
    target = {"top level": data, "file": data["media"][0], "render": data["render"],
              "interrupted": data.setdefault("interrupted", {"signal": "SIGINT", "files_not_done": []})}[where]
    target["region"] = [region]
    with pytest.raises(PlanError, match="Additional properties are not allowed"):
        Plan.from_json(data)


def test_a_plan_is_saved_over_a_file_only_when_asked(tmp_path):
    # The library's default replaced whatever was there: a plan saved by mistake as the photo's own
    # name replaced the unredacted original with JSON.
    photo = tmp_path / "two.jpg"
    photo.write_bytes(b"the original")
    plan = sample_plan()
    with pytest.raises(FileExistsError, match="two.jpg exists: pass overwrite=True"):
        plan.save(photo)
    assert photo.read_bytes() == b"the original"
    plan.save(photo, overwrite=True)
    assert Plan.load(photo) == plan
