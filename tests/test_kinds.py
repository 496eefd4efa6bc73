"""Beyond faces (--hide): plates, text and people on real photos, pixels checked, kinds in plan and report."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import av
import cv2
from PIL import Image
import numpy as np
import pytest

from photo_support import TWO_PEOPLE, copy_in, rgb_of, share_near, veil
from test_review_browser import CHROMIUM, api_media, browser, drag, page  # noqa: F401 (fixtures)
from video_support import clip_of
from veil.detect import FAST, VIDEO_DETECTION
from veil.pipeline import Analysis
from veil.kinds import parse_hide, seen_once
from veil.people import TURNS, PersonDetector, body_along, body_below, detect_people, people_boxes, turned_box
from veil.photo import plan_photo
from veil.plan import Box, Plan, RenderSettings
from veil.render import redact_frame
from veil.video import plan_video
from veil.review.app import LaunchCodes, create_app
from veil.review.cli import ReviewServer, open_session
from test_review_api import page_client

MAGENTA = (255, 0, 255)
TOKEN, PORT = "t0ken-for-tests", 8765  # the review API, called directly (as in test_review_api.py)
ORIGIN = f"http://127.0.0.1:{PORT}"
PAGE_HEADERS = {"X-Veil-Token": TOKEN, "Origin": ORIGIN, "Content-Type": "application/json"}
PLATE = "plates/openalpr/images/eu3.jpg"
PLATE_BOX = (348, 185, 91, 21)  # x, y, w, h from plates.csv (FWE50)
WORDS = "text/icdar2003/images/lfsosa_12.08.2002/IMG_2483.JPG"
WORD_BOXES = {"Please": (187, 127, 406, 182), "lock": (229, 201, 362, 255), "the": (168, 275, 270, 325),
              "gate": (287, 274, 425, 336)}  # x0, y0, x1, y1 from words.csv

PLATE_FROM_ABOVE = (480, 453, 231, 75)  # OUZ2198.jpg's, x, y, w, h from plates.csv
NIGHT_PLATE = "plates/openalpr/images/MXQ1601.jpg"
NIGHT_PLATE_BOX = (475, 891, 339, 110)  # x, y, w, h from plates.csv
CLOSE_UP_SIGN = "text/icdar2003/images/apanar_06.08.2002/IMG_1291.JPG"
CLOSE_UP_WORD = (921, 175, 1518, 320)  # "create", x0, y0, x1, y1 from words.csv


def hidden_share(pixels: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> float:
    return share_near(pixels[y0:y1, x0:x1], MAGENTA, 0)


def run(source: Path, hide: str, folder: Path, *options: str) -> tuple[np.ndarray, Plan, dict]:
    out, plan, report = folder / "out.png", folder / "plan.json", folder / "report.json"
    result = veil(source, "-o", out, "--hide", hide, "--color", "#ff00ff", "--save-plan", plan, "--report", report,
                  *options)
    assert result.exit_code == 0, result.output
    return rgb_of(out), Plan.load(plan), json.loads(report.read_text())


def test_redact_image_takes_what_to_hide_and_the_shape(shared_data: Path, tmp_path: Path) -> None:
    # The library hid faces alone, as ellipses: a caller could not ask for a plate to be hidden.
    import veil
    output = tmp_path / "car.jpg"
    plan = veil.redact_image(shared_data / PLATE, output, hide=["plates"], shape="box")
    plates = [region for region in plan.regions if region.kind == "plate"]
    assert plates and {region.kind for region in plan.regions} == {"plate"}
    assert {region.shape for region in plan.regions} == {"box"}
    x, y, w, h = PLATE_BOX
    assert share_near(rgb_of(output)[y:y + h, x:x + w], (0, 0, 0), 12) > 0.95
    with pytest.raises(ValueError, match="plate: --hide takes"):
        veil.redact_image(shared_data / PLATE, output, hide="plate", overwrite=True)
    with pytest.raises(ValueError, match="shape 'circle'"):
        veil.redact_image(shared_data / PLATE, output, shape="circle", overwrite=True)


def test_a_plate_the_pictures_edge_cuts_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    # Judged by its shape, a plate cut short by the edge was no plate: cut across its characters it
    # looked too long for its height, cut along its row too short, and it was left readable.
    car = Image.open(shared_data / "plates/openalpr/images/AYO9034.jpg").convert("RGB")  # plate 528-690 x 412-464
    for name, crop, visible in (("bottom", (300, 40, 940, 440), (228, 372, 390, 400)),   # its top 28 rows
                                ("right", (15, 200, 575, 660), (513, 212, 560, 264))):  # its first 47 columns
        (folder := tmp_path / name).mkdir()
        car.crop(crop).save(folder / "car.png")
        pixels, plan, _ = run(folder / "car.png", "plates", folder)
        assert hidden_share(pixels, *visible) > 0.85, name  # all but the plate's rim; 0 before
        assert plan.media[0].detection["text"]["plate_cut_by_edge_within_px"] == 1.0


def test_hide_given_twice_hides_both_and_faces_left_out_are_said(shared_data: Path, tmp_path: Path) -> None:
    # --hide faces --hide plates kept the last alone: the faces were left visible, exit 0, no word.
    source = copy_in(shared_data, "plates/openalpr/images/AYO9034.jpg", tmp_path)
    both = veil(source, "--hide", "faces", "--hide", "plates", "--dry-run", "--json")
    assert both.exit_code == 0, both.output
    counts = json.loads(both.stdout)["regions_by_kind"]
    assert counts["face"] >= 1 and counts["plate"] >= 1
    assert "faces are not looked for" not in both.stderr
    assert "faces are not looked for" not in veil(source, "--hide", "people", "--dry-run").stderr  # they are
    empty = veil(source, "--hide", "", "--hide", "plates", "--dry-run")  # an empty value was swallowed
    assert empty.exit_code == 2 and "--hide names nothing (an empty value)" in empty.output
    plates = veil(source, "--hide", "plates", "--dry-run")
    assert "--hide plates: faces are not looked for, and any not inside those regions are left visible" in \
        " ".join(plates.stderr.split())
    # On a sound file --hide acts on nothing: said, as other options' are.
    from speech_support import write_wav

    write_wav(sound := tmp_path / "talk.wav", np.zeros(16000))
    said = veil(sound, "--hide", "plates", "--voice", "mute", "--dry-run").stderr
    assert "--hide acts on photos, animations and videos only, and there are none among the inputs: not used" in \
        " ".join(said.split())
    # So do the picture's options (the report showed "pixelate: at most 3 blocks" for a sound file),
    # each said once (--blocks outside pixelate mode too).
    said = " ".join(veil(sound, "--voice", "mute", "--mode", "blur", "--blocks", "3", "--color", "white", "--shape",
                         "box", "--accurate", "--dry-run").stderr.split())
    assert ("--accurate, --shape, --mode, --color, --blocks act on photos, animations and videos only, and there are "
            "none among the inputs: not used") in said, said
    assert "acts with --mode pixelate" not in said


def test_a_thin_picture_is_not_enlarged_past_reason_for_text() -> None:
    # A 100 x 2 px spacer was enlarged to 36,800 x 736 px for the text detector: a minute of tiles
    # and half a gigabyte for nothing a reader could read. A banner's small print keeps its
    # enlargement (capping the longer side at 4,096 px left 6 px words on a 4000 x 300 banner unfound).
    from veil.textdetect import MAX_ENLARGE, detect_text, input_scale
    from veil.kinds import text_passes

    assert input_scale(100, 2) == MAX_ENLARGE == 8
    for width, height in ((4000, 300), (6000, 500), (640, 480), (300, 200)):
        assert input_scale(width, height) == 736 / height
    assert detect_text(np.full((2, 100, 3), 255, np.uint8), text_passes("accurate")) == []


def test_plate_is_hidden_and_named_in_plan_and_report(shared_data: Path, tmp_path: Path) -> None:
    pixels, plan, report = run(copy_in(shared_data, PLATE, tmp_path), "plates", tmp_path)
    x, y, w, h = PLATE_BOX
    assert hidden_share(pixels, x, y, x + w, y + h) >= 0.95
    kinds = {r.kind for r in plan.media[0].regions}
    assert kinds == {"plate"}
    assert all(r.shape == "box" for r in plan.media[0].regions)
    entry = report["files"][0]
    assert entry["hidden_by_kind"]["plate"] >= 1
    assert {r["kind"] for r in entry["regions"]} == {"plate"}
    assert entry["detection"]["hide"] == ["plate"]
    assert "text" in entry["detection"]  # the text detector's settings, plate rule included
    # The model's own size, and half that size for lines too large for it (kept only when that large).
    assert [(p["upscale"], p["shortest"]) for p in entry["detection"]["text"]["passes"]] == [(1.0, None), (0.5, 48.0)]
    assert any(m["file"] == "ppocrv6_det_small.onnx" for m in report["models"])
    # The plate and two plate-shaped lines of lettering below it: the rest of the car is left as it was.
    assert share_near(pixels, MAGENTA, 0) < 0.1


def test_accurate_profile_adds_a_larger_text_pass_and_still_hides_the_plate(shared_data: Path, tmp_path: Path) -> None:
    pixels, plan, report = run(copy_in(shared_data, PLATE, tmp_path), "plates", tmp_path, "--accurate")
    x, y, w, h = PLATE_BOX
    assert hidden_share(pixels, x, y, x + w, y + h) >= 0.95
    assert {r.kind for r in plan.media[0].regions} == {"plate"}
    passes = plan.media[0].detection["text"]["passes"]
    assert [p["upscale"] for p in passes] == [1.0, 2.0, 0.5]
    assert passes[1]["input"][0] >= 2 * passes[0]["input"][0] - 32  # twice the size, to the stride
    assert report["files"][0]["detection"]["text"]["passes"] == passes  # the audit report says what ran


def test_words_are_hidden_but_faces_alone_leave_them(shared_data: Path, tmp_path: Path) -> None:
    source = copy_in(shared_data, WORDS, tmp_path)
    pixels, plan, report = run(source, "text", tmp_path / "text")
    for word, box in WORD_BOXES.items():
        assert hidden_share(pixels, *box) >= 0.95, word
    assert {r.kind for r in plan.media[0].regions} == {"text"}
    assert report["files"][0]["hidden_by_kind"]["text"] == len(plan.media[0].regions)
    faces_only, plan, _ = run(source, "faces", tmp_path / "faces")
    assert hidden_share(faces_only, *WORD_BOXES["Please"]) == 0
    assert "text" not in plan.media[0].detection


def test_a_plate_seen_steeply_from_above_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    """A car photographed from a window or a bridge: its plate is squashed, its row of characters
    over 6 times as long as high, and was taken for no plate: left whole and readable."""
    car = np.asarray(Image.open(shared_data / "plates/openalpr/images/OUZ2198.jpg").convert("RGB"))
    x, y, w, h = PLATE_FROM_ABOVE
    for squash in (0.6, 0.5):  # seen from about 53 and 60 degrees
        (folder := tmp_path / str(squash)).mkdir()
        height = round(car.shape[0] * squash)
        Image.fromarray(cv2.resize(car, (car.shape[1], height), interpolation=cv2.INTER_AREA)).save(folder / "above.png")
        pixels, plan, _ = run(folder / "above.png", "plates", folder)
        assert hidden_share(pixels, x, round(y * squash), x + w, round((y + h) * squash)) >= 0.95, squash  # 0 before
    assert plan.media[0].detection["text"]["plate_aspect"] == [1.0, 10.0]


def test_a_name_under_another_line_of_a_sign_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    """A protester's sign in a crowd, "FREE" above a name in letters 45 px high: the name's line is
    found only by the look at half size, and was dropped there as too small for it, the name left
    readable (on a plain wall the model's own size finds it)."""
    sign = np.full((180, 420, 3), (240, 235, 215), np.uint8)
    cv2.putText(sign, "FREE", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 5, cv2.LINE_AA)
    cv2.putText(sign, "Ali Rezaei", (20, 150), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 5, cv2.LINE_AA)
    crowd = sorted((shared_data / "wider_face_dev/images/2--Demonstration").glob("*.jpg"))[0]
    street = np.asarray(Image.open(crowd).convert("RGB")).copy()
    street[120:300, 250:670] = sign
    Image.fromarray(street).save(tmp_path / "sign.png")
    pixels, _, _ = run(tmp_path / "sign.png", "text", tmp_path)
    name = sign[95:, :, 0] < 100
    assert share_near(pixels[215:300, 250:670][name], MAGENTA, 0) >= 0.95  # 0 before


def test_a_sign_filling_the_frame_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    """A closer photo of a shop sign: ICDAR's word "create" cropped from its photo, at its own
    pixels, so that it spans the whole frame's width. Its line (about 240 px high at the text
    detector's input) were too large for the detector's own size, which found nothing: the word was
    left whole and readable. Half that size finds it."""
    x0, y0, x1, y1 = CLOSE_UP_WORD
    width, height = x1 - x0, round(0.75 * (x1 - x0))  # the word spans the frame's width
    left, top = x0, round((y0 + y1) / 2 - height / 2)
    source = tmp_path / "close-up.png"
    Image.open(shared_data / CLOSE_UP_SIGN).crop((left, top, left + width, top + height)).save(source)
    pixels, plan, _ = run(source, "text", tmp_path)
    assert hidden_share(pixels, 0, y0 - top, width, y1 - top) >= 0.95
    assert any(p["upscale"] == 0.5 for p in plan.media[0].detection["text"]["passes"])


def test_a_sign_close_to_the_camera_in_a_video_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    """The same word, "create", across 70% of a 960x540 clip's width (a sign the camera comes close
    to), for 4 frames: video's text detector looked at the model's own size alone, which finds no
    line over letters that tall (186 px), and the word was left readable on every frame."""
    x0, y0, x1, y1 = CLOSE_UP_WORD
    seen_width = round((x1 - x0) / 0.7)  # of the photo, shown as the frame's 960 px
    seen_height = round(seen_width * 540 / 960)
    left, top = round((x0 + x1 - seen_width) / 2), round((y0 + y1 - seen_height) / 2)
    frame = Image.open(shared_data / CLOSE_UP_SIGN).convert("RGB").crop(
        (left, top, left + seen_width, top + seen_height)).resize((960, 540), Image.BILINEAR)
    scale = 960 / seen_width
    word_x0, word_x1 = round((x0 - left) * scale), round((x1 - left) * scale)
    word_y0, word_y1 = round((y0 - top) * scale), round((y1 - top) * scale)
    source, out, plan = tmp_path / "close-up.mp4", tmp_path / "out.mp4", tmp_path / "plan.json"
    clip_of(source, [np.asarray(frame)] * 4, rate=10)
    result = veil(source, "-o", out, "--hide", "text", "--color", "#ff00ff", "--save-plan", plan)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as video:
        for i, decoded in enumerate(video.decode(video=0)):
            pixels = decoded.to_ndarray(format="rgb24")[word_y0:word_y1, word_x0:word_x1]
            assert share_near(pixels, MAGENTA, 40) >= 0.95, i
    assert i == 3
    # The plan says the look at half the model's size ran, as photos say it.
    passes = Plan.load(plan).media[0].detection["text"]["passes"]
    assert [(p["upscale"], p["shortest"]) for p in passes] == [(1.0, None), (0.5, 48.0)]


def test_a_plate_in_a_night_shot_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    """A car photo made a night shot as a camera stores it (gamma 1.6, 14% of the light: its
    brightest pixels about 36 of 255; JPEG quality 85): the text detector, shown the dark picture
    as it was, found nothing over the 339x110 px plate and left it readable. It now sees it
    brightened, by the face detectors' rule."""
    rgb = rgb_of(shared_data / NIGHT_PLATE).astype(np.float64)
    source = tmp_path / "night.jpg"
    Image.fromarray((255 * (rgb / 255) ** 1.6 * 0.14).round().astype(np.uint8)).save(source, quality=85)
    pixels, plan, _ = run(source, "plates", tmp_path)
    x, y, w, h = NIGHT_PLATE_BOX
    assert hidden_share(pixels, x, y, x + w, y + h) >= 0.95
    text = plan.media[0].detection["text"]
    assert text["brightened_when_dark"]["dark_below"] == 128 and text["exposure_gain"] == [2.0]


def test_kinds_together_keep_faces_as_ellipses(shared_data: Path, tmp_path: Path) -> None:
    _, plan, report = run(copy_in(shared_data, TWO_PEOPLE, tmp_path), "faces,text", tmp_path)
    faces = [r for r in plan.media[0].regions if r.kind == "face"]
    assert len(faces) == 2 and all(r.shape == "ellipse" and r.id.startswith("f") for r in faces)
    assert report["files"][0]["hidden_by_kind"]["face"] == 2


def test_hide_words() -> None:
    assert parse_hide("faces") == ("face",)
    assert parse_hide(" Plates ,faces,text,people") == ("face", "plate", "text", "person")
    for bad in ("", "faces,cars", ","):
        with pytest.raises(ValueError):
            parse_hide(bad)
    # The pipeline takes kinds, not the option's words: a word there would have hidden nothing, silently.
    for bad in (("faces",), (), ("face", "cars")):
        with pytest.raises(ValueError):
            Analysis(FAST, hide=bad)


def test_unknown_kind_is_refused_in_one_line(shared_data: Path, tmp_path: Path) -> None:
    result = veil(copy_in(shared_data, PLATE, tmp_path), "--hide", "faces,cars", "-o", tmp_path / "out.png")
    assert result.exit_code == 2
    assert "cars" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.png").exists()


def pan_video(shared_data: Path, target: Path, frames: int = 12) -> None:
    """A lossless pan across the plate photo: 4 px to the left per frame."""
    photo = rgb_of(shared_data / PLATE)
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt, stream.options = 400, 300, "yuv444p", {"crf": "0"}
        for i in range(frames):
            crop = np.ascontiguousarray(photo[30:330, 40 + 4 * i:440 + 4 * i])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
        out.mux(stream.encode())


def test_plate_is_tracked_through_a_video(shared_data: Path, tmp_path: Path) -> None:
    source, out, plan = tmp_path / "pan.mp4", tmp_path / "out.mp4", tmp_path / "plan.json"
    pan_video(shared_data, source)
    result = veil(source, "-o", out, "--hide", "plates", "--color", "#ff00ff", "--save-plan", plan)
    assert result.exit_code == 0, result.output
    regions = Plan.load(plan).media[0].regions
    assert regions and all(r.kind == "plate" and r.shape == "box" for r in regions)
    x, y, w, h = PLATE_BOX
    with av.open(str(out)) as video:
        for i, frame in enumerate(video.decode(video=0)):
            x0 = x - 40 - 4 * i  # the plate moves with the pan
            plate = frame.to_ndarray(format="rgb24")[y - 30:y - 30 + h, x0:x0 + w]
            assert share_near(plate, MAGENTA, 40) >= 0.95, i
    assert i == 11


def test_plates_looked_for_on_every_nth_sampled_frame_are_tracked_between(shared_data: Path, tmp_path: Path) -> None:
    source = tmp_path / "pan.mp4"
    pan_video(shared_data, source)
    # 10 fps: every frame is sampled (`at_rate`), plates on every 3rd of them: 0, 3, 6 and 9 of 12,
    # and on the last, 11, which ends the shot.
    sampling = replace(VIDEO_DETECTION["fast"], text_every=3)
    media = plan_video(source, hide=("plate",), sampling=sampling)
    assert media.detection["sampling"]["every_nth_frame"] == 1
    assert media.regions and all(region.kind == "plate" for region in media.regions)
    for region in media.regions:  # the plate and the lines of lettering on it
        assert sorted(f for f, box in region.boxes.items() if box.origin == "detected") == [0, 3, 6, 9, 11]
        assert sorted(region.boxes) == list(range(12))  # filled between, and carried to the end
    assert media.detection["sampling"]["text_every_nth_sampled_frame"] == 3
    # At 10 fps half a second is 5 frames: the plate's track must bridge two of its 3-frame intervals.
    assert media.detection["tracking_text"]["max_gap"] >= 6
    assert media.detection["tracking"]["max_gap"] == 5
    assert "tracking_text" not in plan_video(source, hide=("face",), sampling=sampling).detection


def test_the_summary_counts_each_kind_as_itself(shared_data: Path, tmp_path: Path) -> None:
    """--json's "faces" counted the regions of every kind: plates and people were told as faces."""
    source, plan = copy_in(shared_data, PLATE, tmp_path), tmp_path / "plan.json"
    result = veil(source, "--hide", "plates,people", "--dry-run", "--json", "--save-plan", plan)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    kinds = [r.kind for r in Plan.load(plan).media[0].regions]
    expected = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
    assert set(expected) == {"plate", "person"} and summary["faces"] == 0
    assert summary["regions_by_kind"] == summary["results"][0]["regions_by_kind"] == expected
    assert summary["regions"] == len(kinds) and summary["results"][0]["faces"] == 0
    said = veil(source, "--hide", "plates,people", "--dry-run").stderr
    assert f"({expected['person']} people, {expected['plate']} plates) would be hidden" in said


def test_a_plate_drawn_in_the_alpha_channel_alone_is_hidden(shared_data: Path, tmp_path: Path) -> None:
    """Lettering on a transparent layer (black colour channels, the picture in alpha alone), as
    an editor exports it: faces were looked for over white and over black, plates and text in
    the colour channels only, where there is nothing: 0 regions, the plate readable over white."""
    from PIL import Image

    grey = np.asarray(Image.open(shared_data / PLATE).convert("L"))
    ink = np.dstack([np.zeros((*grey.shape, 3), np.uint8), 255 - grey])
    source = tmp_path / "ink.png"
    Image.fromarray(ink, "RGBA").save(source)
    out, plan = tmp_path / "out.png", tmp_path / "plan.json"
    result = veil(source, "-o", out, "--hide", "plates", "--save-plan", plan)
    assert result.exit_code == 0, result.output
    x, y, w, h = PLATE_BOX
    with Image.open(out) as image:
        over_white = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    assert share_near(np.asarray(over_white.convert("RGB"))[y:y + h, x:x + w], (0, 0, 0), 24) >= 0.95
    record = Plan.load(plan).media[0].detection["text"]
    assert record["transparency_views"] == ["colour channels", "over white", "over black"]

    # An animation's frames too: black ink on a GIF whose transparent colour is black as well.
    inks = [Image.fromarray(np.roll(grey < 128, 4 * i, axis=1).astype(np.uint8), "P") for i in range(3)]
    for ink in inks:
        ink.putpalette([0, 0, 0, 0, 0, 0])
    sticker, sticker_plan = tmp_path / "sticker.gif", tmp_path / "sticker-plan.json"
    inks[0].save(sticker, save_all=True, append_images=inks[1:], duration=100, transparency=0, loop=0, optimize=False)
    with Image.open(sticker) as check:
        colour = np.asarray(check.convert("RGBA"))
    assert not colour[:, :, :3].any() and colour[:, :, 3].any()  # nothing but in the alpha channel
    result = veil(sticker, "-o", tmp_path / "sticker-out.gif", "--hide", "plates", "--save-plan", sticker_plan)
    assert result.exit_code == 0, result.output
    media = Plan.load(sticker_plan).media[0]
    assert media.kind == "animation" and media.regions and {r.kind for r in media.regions} == {"plate"}
    assert all(sorted(r.boxes) == list(range(media.frame_count)) for r in media.regions)
    # Looked at in three views for plates alone too (no face detector ran), and the plan says so.
    assert media.detection["transparent_frames"] == media.frame_count and "frames_judged" not in media.detection
    assert media.detection["runtime"]["execution_providers"] == ["CPUExecutionProvider"]


def car_grid(shared_data: Path) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Nine OpenALPR cars in a 1920x1080 picture, each fitted into 640x360 (plates 65-154 px
    wide), and their plates' boxes (x0, y0, x1, y1)."""
    import csv
    from PIL import Image

    folder = shared_data / "plates" / "openalpr"
    rows = list(csv.DictReader((folder / "plates.csv").open()))[:9]
    canvas, boxes = Image.new("RGB", (1920, 1080), (90, 90, 90)), []
    for i, row in enumerate(rows):
        car = Image.open(folder / "images" / row["file"]).convert("RGB")
        k = min(640 / car.width, 360 / car.height)
        left, top = (i % 3) * 640, (i // 3) * 360
        canvas.paste(car.resize((round(car.width * k), round(car.height * k)), Image.LANCZOS), (left, top))
        x, y, w, h = (int(row[c]) for c in "xywh")
        boxes.append((round(left + x * k), round(top + y * k), round(left + (x + w) * k), round(top + (y + h) * k)))
    return np.asarray(canvas), boxes


def test_plates_in_a_1080p_video_are_looked_for_at_the_frames_full_size(shared_data: Path, tmp_path: Path) -> None:
    """The face detector sees a 1080p frame at half size; the text detector saw it there too, where
    the two smallest plates of this picture (65 and 98 px wide) are too small for it, and they came
    out readable in every frame, though the same picture as a photo hid all nine."""
    picture, plates = car_grid(shared_data)
    source = tmp_path / "cars.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 1920, 1080, "yuv420p", {"crf": "16"}
        for _ in range(5):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode())
    media = plan_video(source, hide=("face", "plate"))
    assert media.detection["passes"][0]["width"] < 1920  # the face detector's size
    assert media.detection["text"]["passes"][0]["input"] == [1920, 1088]
    for frame in range(5):
        boxes = [box for region in media.regions for f, box in region.boxes.items() if f == frame]
        for x0, y0, x1, y1 in plates:
            covered = np.zeros((y1 - y0, x1 - x0), bool)
            for b in boxes:
                covered[max(0, round(b.y0) - y0):max(0, round(b.y1) - y0), max(0, round(b.x0) - x0):max(0, round(b.x1) - x0)] = True
            assert covered.mean() >= 0.95, (frame, (x0, y0, x1, y1))


@pytest.mark.parametrize("marked", [True, False], ids=["marked", "woven"])
def test_plates_in_interlaced_video_are_found_in_one_field(shared_data: Path, tmp_path: Path, marked: bool) -> None:
    """An interlaced camera's frame holds two moments, line by line: where the picture moves, every
    edge is a comb, and the text detector found none of most of these plates in it (a face
    detector misses faces in it alike; bench/README.md). It looks at the top field instead, also
    where the file does not say the frames are interlaced (coded as progressive by an editor)."""
    picture, plates = car_grid(shared_data)
    source = tmp_path / "interlaced.mp4"
    step = 12  # px a frame: the bottom field, half a frame later, 6 px further
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"crf": "16", **({"flags": "+ilme+ildct", "x264-params": "interlaced=1:tff=1"} if marked else {})}
        for t in range(4):
            frame = np.roll(picture, step * t, axis=1)
            frame[1::2] = np.roll(picture, step * t + step // 2, axis=1)[1::2]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    media = plan_video(source, hide=("plate",))
    if marked:
        assert media.detection["interlaced_frames"]["count"] == 4 and "woven_frames" not in media.detection
    else:
        assert media.detection["woven_frames"]["count"] == 4 and media.detection["woven_frames"]["from_frame"] == 0
        assert "interlaced_frames" not in media.detection
    for frame in range(4):
        boxes = [box for region in media.regions for f, box in region.boxes.items() if f == frame]
        for x0, y0, x1, y1 in plates:  # where either field shows the plate
            x0, x1 = x0 + step * frame, x1 + step * frame + step // 2
            covered = np.zeros((y1 - y0, x1 - x0), bool)
            for b in boxes:
                covered[max(0, round(b.y0) - y0):max(0, round(b.y1) - y0), max(0, round(b.x0) - x0):max(0, round(b.x1) - x0)] = True
            assert covered.mean() >= 0.9, (frame, (x0, y0, x1, y1))


@pytest.mark.parametrize("tagged", ["codec", "container"])
def test_plates_in_anamorphic_video_are_looked_for_as_players_show_them(shared_data: Path, tmp_path: Path,
                                                                        tagged: str) -> None:
    """Non-square pixels (stored 960 wide, shown 1920 wide): squeezed, three of these plates were
    no text to the detector; it sees the frame stretched as players show it, boxes scaled back.
    The ratio may be in the codec's data or only in the container's (re-muxed with -aspect):
    players take the container's first."""
    import cv2
    from fractions import Fraction

    picture, plates = car_grid(shared_data)
    coded = tmp_path / "coded.mp4"
    with av.open(str(coded), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 960, 1080, "yuv420p", {"crf": "16"}
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1) if tagged == "codec" else Fraction(1, 1)
        squeezed = cv2.resize(picture, (960, 1080), interpolation=cv2.INTER_AREA)
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(squeezed, format="rgb24")))
        out.mux(stream.encode())
    source = coded
    if tagged == "container":
        source = tmp_path / "remuxed.mp4"
        with av.open(str(coded)) as given, av.open(str(source), "w") as out:
            copied = out.add_stream_from_template(given.streams.video[0])
            copied.sample_aspect_ratio = Fraction(2, 1)
            for packet in given.demux(video=0):
                if packet.dts is not None:
                    packet.stream = copied
                    out.mux(packet)
    media = plan_video(source, hide=("plate",))
    assert media.width == 960 and media.detection["searched_as_shown"] == [1920, 1080]
    boxes = [box for region in media.regions for f, box in region.boxes.items() if f == 0]
    for x0, y0, x1, y1 in plates:  # in stored pixels: half as wide
        x0, x1 = x0 // 2, -(-x1 // 2)
        covered = np.zeros((y1 - y0, x1 - x0), bool)
        for b in boxes:
            covered[max(0, round(b.y0) - y0):max(0, round(b.y1) - y0), max(0, round(b.x0) - x0):max(0, round(b.x1) - x0)] = True
        assert covered.mean() >= 0.9, (x0, y0, x1, y1)


def test_review_shows_kinds_and_draws_a_region_of_any_kind(shared_data: Path, tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    result = veil(copy_in(shared_data, PLATE, tmp_path), "--hide", "plates", "--dry-run", "--save-plan", plan_path)
    assert result.exit_code == 0, result.output
    session = open_session([], plan_path, None, tmp_path / "out", None, RenderSettings(), Analysis(FAST))
    client = page_client(create_app(session, TOKEN, PORT, LaunchCodes()), headers=PAGE_HEADERS)
    shown = client.get("/api/media/0").json()
    assert {r["kind"] for r in shown["regions"]} == {"plate"}
    answer = client.post("/api/media/0/regions", json={"frame": 0, "shape": "box", "kind": "text", "box": [10, 10, 60, 40]})
    assert answer.status_code == 200
    added = Plan.load(plan_path).media[0].region(answer.json()["region"])
    assert added.kind == "text" and added.source == "reviewer"
    assert client.post("/api/media/0/regions", json={"frame": 0, "kind": "car", "box": [1, 1, 9, 9]}).status_code == 400


def test_plates_text_and_people_are_hidden_as_boxes_whatever_a_plan_or_reviewer_says(shared_data: Path,
                                                                                      tmp_path: Path) -> None:
    # A plate drawn, or set, as an ellipse by a reviewer, or so in a plan edited by hand, was drawn
    # as an ellipse: the plate's corners stayed visible.
    plan_path = tmp_path / "plan.json"
    source = copy_in(shared_data, PLATE, tmp_path)
    assert veil(source, "--hide", "plates", "--dry-run", "--save-plan", plan_path).exit_code == 0
    session = open_session([], plan_path, None, tmp_path / "out", None, RenderSettings(), Analysis(FAST))
    client = page_client(create_app(session, TOKEN, PORT, LaunchCodes()), headers=PAGE_HEADERS)
    drawn = client.post("/api/media/0/regions", json={"frame": 0, "shape": "ellipse", "kind": "plate", "box": [10, 10, 60, 40]})
    assert drawn.status_code == 400 and "hidden as a box" in drawn.json()["error"]
    unshaped = client.post("/api/media/0/regions", json={"frame": 0, "kind": "plate", "box": [10, 10, 60, 40]})
    assert Plan.load(plan_path).media[0].region(unshaped.json()["region"]).shape == "box"
    plate = client.get("/api/media/0").json()["regions"][0]["id"]
    assert client.post(f"/api/media/0/regions/{plate}/shape", json={"shape": "ellipse"}).status_code == 400
    assert Plan.load(plan_path).media[0].region(plate).shape == "box"
    edited = json.loads(plan_path.read_text())
    for region in edited["media"][0]["regions"]:
        region["shape"] = "ellipse"
    plan_path.write_text(json.dumps(edited))
    assert {r.shape for r in Plan.load(plan_path).media[0].regions} == {"box"}
    out = tmp_path / "out.png"
    assert veil("--plan", plan_path, "-o", out, "--color", "#ff00ff").exit_code == 0
    pixels = rgb_of(out)
    for region in Plan.load(plan_path).media[0].regions:
        box = region.boxes[0]
        corner = pixels[math.ceil(box.y0), math.ceil(box.x0)]
        assert (corner == MAGENTA).all(), region.id
    # Drawn as a box whatever shape the region holds (a plan built in code, say).
    source_pixels = rgb_of(source)
    media = Plan.load(plan_path).media[0]
    for region in media.regions:
        region.shape = "ellipse"
    drawn = redact_frame(source_pixels.copy(), [(r, r.boxes[0]) for r in media.regions],
                         RenderSettings(mode="fill", color=(255, 0, 255)))
    for region in media.regions:
        box = region.boxes[0]
        assert (drawn[math.ceil(box.y0), math.ceil(box.x0)] == MAGENTA).all(), region.id


# A party photo where the detected person's box cut through the top of a head, inside it but for
# a strip that `faces` hid and `people` left visible.
PARTY = "wider_face_dev/images/50--Celebration_Or_Party/50_Celebration_Or_Party_birthdayparty_50_213.jpg"


@pytest.mark.parametrize("photo", [TWO_PEOPLE, PARTY], ids=["two-people", "party"])
def test_people_are_hidden_whole_and_never_less_than_faces(shared_data: Path, tmp_path: Path, photo: str) -> None:
    source = copy_in(shared_data, photo, tmp_path)
    people, plan, report = run(source, "people", tmp_path / "people")
    faces, _, _ = run(source, "faces", tmp_path / "faces")
    hidden_people, hidden_faces = (people == MAGENTA).all(-1), (faces == MAGENTA).all(-1)
    assert {r.kind for r in plan.media[0].regions} == {"person"}
    assert report["files"][0]["hidden_by_kind"]["person"] >= 2
    assert not (hidden_faces & ~hidden_people).any()  # every face pixel hidden too
    assert hidden_people.mean() > 1.5 * hidden_faces.mean()  # and the bodies below them
    assert any(m["file"] == "ssdlite_person.onnx" for m in report["models"])


# Four people standing at a rally, found upright by the person detector with scores 0.95-0.99.
RALLY = "wider_face_dev/images/2--Demonstration/2_Demonstration_Political_Rally_2_637.jpg"


def test_people_in_a_picture_on_its_side_are_hidden_along_their_bodies(shared_data: Path, tmp_path: Path) -> None:
    """The person detector, trained on people standing, found none of these four in the photo turned
    a quarter (a picture stored on its side, people lying down): only the bodies derived from their
    faces were hidden, below each head as the picture stands, across each body instead of along it."""
    upright = np.asarray(Image.open(shared_data / RALLY).convert("RGB"))
    height, width = upright.shape[:2]
    standing = [box for box in detect_people(upright) if box.score >= 0.9]
    assert len(standing) == 4
    source = tmp_path / "rally-on-its-side.png"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(source)
    hidden, plan, _ = run(source, "people", tmp_path)
    for box in standing:  # where each person lies once turned a quarter counter-clockwise
        x0, y0, x1, y1 = round(box.y0), round(width - box.x1), round(box.y1), round(width - box.x0)
        assert hidden_share(hidden, x0, y0, x1, y1) >= 0.95, box
    people = plan.media[0].detection["people"]
    assert people["turns"] == [0, 1, 2, 3] and people["standing_turn"] == 3  # three more quarter turns stand them up


@pytest.mark.parametrize("dark", [False, True], ids=["as-taken", "dark"])
def test_a_photo_s_people_are_found_once_for_its_faces_and_its_people(shared_data: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      dark: bool) -> None:
    """The person detector that judges which way a photo's people stand, for the face search, saw the
    photo as it came: --hide people takes its boxes from that run, not from a second one. A dark
    photo is judged brightened, and its people are found again as it came."""
    pixels = np.asarray(Image.open(shared_data / RALLY).convert("RGB"))
    if dark:
        pixels = (pixels * 0.15).astype(np.uint8)
    source = tmp_path / "rally.png"
    Image.fromarray(pixels).save(source)  # lossless: the plan sees exactly `pixels`
    runs: list[tuple[int, ...]] = []
    real = PersonDetector.people
    monkeypatch.setattr(PersonDetector, "people", lambda self, rgb, turns: runs.append(turns) or real(self, rgb, turns))
    plan = plan_photo(source, FAST, hide=("face", "person"))
    assert ("exposure_gain" in plan.detection) == dark
    assert runs == [TURNS] * (2 if dark else 1)
    heads = [region.boxes[0] for region in plan.regions if region.kind == "face"]
    alone, turn = people_boxes([pixels], heads)
    assert [region.boxes[0] for region in plan.regions if region.kind == "person"] == seen_once(alone)
    assert len(alone) >= 4 and plan.detection["people"]["standing_turn"] == turn == 0


MARCHING_BAND = "0--Parade/0_Parade_marchingband_1_329.jpg"


def test_people_upside_down_in_a_video_are_hidden_along_their_bodies(shared_data: Path, tmp_path: Path) -> None:
    """A video's bodies derived from face tracks lay below each head as the frame stands: across
    people lying down, over the sky above people upside down (here a marching band's photo turned
    a half turn, as a still clip: the person detector's turned views found few of its players). They
    now also run along the turn that stands the shot's people up, judged over the shot, as a photo's
    do: 4 of these 13 bodies were less than 80% hidden."""
    lines = (shared_data / "wider_face_dev" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    at = lines.index(MARCHING_BAND)
    truth = [tuple(map(int, line.split()[:4])) for line in lines[at + 2:at + 2 + int(lines[at + 1])]]
    upright = np.asarray(Image.open(shared_data / "wider_face_dev/images" / MARCHING_BAND).convert("RGB"))
    height, width = upright.shape[:2]
    source = clip_of(tmp_path / "band-upside-down.mp4", [np.rot90(upright, 2)] * 12, crf=18)
    media = plan_video(source, hide=("person",))
    assert media.detection["people"]["standing_turns"] == [{"frames": [0, 11], "turn": 2}]
    # Each face's body as the upright photo has it (below the head), turned with the picture.
    bodies = [turned_box(body_below(Box(x, y, x + w, y + h), width, height), width, height, 2)
              for x, y, w, h in truth if h >= 20]
    assert len(bodies) == 13
    for frame in range(media.frame_count):
        canvas = np.zeros((media.height, media.width, 3), np.uint8)
        redact_frame(canvas, [(r, r.boxes[frame]) for r in media.regions if frame in r.boxes],
                     RenderSettings("fill", MAGENTA))
        for body in bodies:
            x0, y0, x1, y1 = (round(v) for v in (body.x0, body.y0, body.x1, body.y1))
            assert hidden_share(canvas, x0, y0, x1, y1) >= 0.8, (frame, body)


def test_a_body_derived_from_a_face_runs_along_the_turn_that_stands_the_picture_up() -> None:
    """A head whose person the detector missed in a picture on its side: its body lies where the
    upright picture's body below that head lies, turned with the picture."""
    width, height = 1000, 600
    head = Box(400.0, 100.0, 460.0, 170.0, "detected", 0.9)
    for turns in (1, 2, 3):
        turned_w, turned_h = (height, width) if turns % 2 else (width, height)
        expected = turned_box(body_below(head, width, height), width, height, turns)
        body = body_along(turned_box(head, width, height, turns), turned_w, turned_h, -turns % 4)
        assert [round(v, 6) for v in (body.x0, body.y0, body.x1, body.y1)] == \
            [round(v, 6) for v in (expected.x0, expected.y0, expected.x1, expected.y1)], turns


def test_people_in_video_cover_every_face_track(shared_data: Path) -> None:
    source = shared_data / "videos/intel_walking_and_headpose/face-demographics-walking.mp4"
    media = plan_video(source, hide=("face", "person"))
    faces = [r for r in media.regions if r.kind == "face"]
    people = [r for r in media.regions if r.kind == "person"]
    assert faces and people and all(r.shape == "box" for r in people)
    for face in faces:
        for frame, head in face.boxes.items():
            held = [r.boxes[frame] for r in people if frame in r.boxes]
            assert any(b.x0 <= max(head.x0, 0) and b.y0 <= max(head.y0, 0) and b.x1 >= min(head.x1, media.width)
                       and b.y1 >= min(head.y1, media.height) for b in held), (face.id, frame)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_review_page_colours_filters_and_draws_kinds(shared_data: Path, tmp_path: Path, page) -> None:
    plan_path = tmp_path / "plan.json"
    assert veil(copy_in(shared_data, PLATE, tmp_path), "--hide", "plates", "--dry-run", "--save-plan", plan_path).exit_code == 0
    server = ReviewServer(open_session([], plan_path, None, tmp_path / "out", None, RenderSettings(), Analysis(FAST)))
    server.start()
    try:
        page.goto(server.url)
        page.wait_for_selector("#viewer:not([hidden]) #overlay .region")
        kinds = page.eval_on_selector_all("#overlay .region", "els => els.map(e => e.dataset.kind)")
        assert kinds and set(kinds) == {"plate"}
        fill = page.eval_on_selector("#overlay .region", "e => getComputedStyle(e).fill")
        assert fill == "rgba(255, 200, 0, 0.28)"  # the plate colour
        page.uncheck("input[name=show-kind][value=plate]")  # the filter hides outlines, not redactions
        assert page.locator("#overlay .region").count() == 0
        page.select_option("#draw-kind", "text")
        media = api_media(page, 0)
        drag(page, media, (20, 20), (120, 80))
        page.wait_for_selector("#overlay .region[data-kind=text]")
        assert [r["shape"] for r in api_media(page, 0)["regions"] if r["kind"] == "text"] == ["box"]
    finally:
        server.stop()


def test_a_video_plan_with_faces_and_text_keeps_every_region_apart(shared_data: Path, tmp_path: Path) -> None:
    """Face tracks were named t1, t2, ... and so were text tracks: a saved plan of a video with both
    held two regions named t1, and could not be loaded again (by --plan or the review)."""
    sign = Image.open(shared_data / "text/icdar2003/images/apanar_06.08.2002/IMG_1261.JPG").convert("RGB")
    people = Image.open(shared_data / TWO_PEOPLE).convert("RGB")
    canvas = Image.new("RGB", (1280, 480))
    canvas.paste(sign.resize((640, 480)), (0, 0))
    canvas.paste(people.resize((640, round(640 * people.height / people.width))), (640, 0))
    source = tmp_path / "both.mp4"
    clip_of(source, [np.asarray(canvas)] * 4)
    media = plan_video(source, hide=("face", "text"))
    assert {"face", "text"} <= {region.kind for region in media.regions}
    ids = [region.id for region in media.regions]
    assert len(ids) == len(set(ids))
    Plan(media=[media]).save(tmp_path / "plan.json")
    assert [r.id for r in Plan.load(tmp_path / "plan.json").media[0].regions] == ids
