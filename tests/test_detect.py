"""The detection engine on real photos: what each profile runs, and what the second detector
and the turned views find that CenterFace alone does not."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np
import pytest
from PIL import Image, ImageSequence

from protection_support import inner_part
from video_support import clip_of

from veil.detect import (
    ACCURATE, FAST, RETINAFACE_NAME, CenterFace, Detection, RetinaFace, detect_faces, detection_record,
    VIDEO_DETECTION, FramesJudged, detect_frames, exposure_gain, faces_in, fuse, is_colourless, is_one_hue, light_levels,
    prepared,
    retina_candidates, select, smear_axis, smeared_sideways, view_pass, fine_colour, diagonal_pieces, squeezed_candidates,
    shared_detector,
)
from veil.animation import plan_animation, render_animation
from veil.imagefile import read_photo
from veil.photo import plan_photo, render_photo
from veil.plan import RenderSettings
from veil.regions import HEAD_MARGIN_BOTTOM, HEAD_MARGIN_SIDE, HEAD_MARGIN_TOP
from veil.track import TrackParams
from veil.render import redact_frame
from veil.video import plan_video, render_video, video_detection_record

TWO_FACES = "face_recognition_examples/examples/knn_examples/test/obama_and_biden.jpg"


class Face(NamedTuple):
    """A WIDER FACE dev photo (under ../shared/data) and one face's ground-truth box, x, y, w, h."""

    photo: str
    box: tuple[int, int, int, int]


WIDER = "wider_face_dev/images/"
# A soldier's face, 180 px high (upright photo).
SOLDIER = Face(WIDER + "24--Soldier_Firing/24_Soldier_Firing_Soldier_Firing_24_1037.jpg", (726, 122, 146, 180))
# A photographer's face behind his camera, 114 px high (upright photo).
PHOTOGRAPHER = Face(WIDER + "52--Photographers/52_Photographers_photographertakingphoto_52_30.jpg", (288, 244, 100, 114))
# A blurred face in a parade crowd, 30 px high in a 1024 px photo.
PARADE = Face(WIDER + "0--Parade/0_Parade_Parade_0_559.jpg", (748, 375, 38, 30))
# A face 84 px high beside an interviewer's microphone, in a 1024 px photo.
INTERVIEW = Face(WIDER + "13--Interview/13_Interview_Interview_Sequences_13_187.jpg", (816, 130, 88, 84))
# A demonstrator's face, 28 px high in a 1024 px photo.
DEMONSTRATOR = Face(WIDER + "2--Demonstration/2_Demonstration_Demonstrators_2_666.jpg", (542, 196, 25, 28))
# A sports fan's face, 150 px high: in black and white, the colour thresholds lose it.
FAN = Face(WIDER + "28--Sports_Fan/28_Sports_Fan_Sports_Fan_28_2.jpg", (220, 320, 124, 150))
# A face 53 px high that CenterFace scores under 0.05 in the photo made black and white.
LISTENER = Face(WIDER + "11--Meeting/11_Meeting_Meeting_11_Meeting_Meeting_11_287.jpg", (731, 508, 21, 53))
# 21x28 px: CenterFace scores it 0.77 at half the photo's size, and finds nothing at a quarter.
MEETING = Face(WIDER + "11--Meeting/11_Meeting_Meeting_11_Meeting_Meeting_11_295.jpg", (691, 292, 21, 28))
# A face 53 px high in an election crowd: in the photo hazed, neither detector finds it.
VOTER = Face(WIDER + "8--Election_Campain/8_Election_Campain_Election_Campaign_8_412.jpg", (951, 630, 44, 53))
# A patrolling soldier's face seen from the side, 132x90 px: turned three quarters, he lies on his side.
PATROL = Face(WIDER + "25--Soldier_Patrol/25_Soldier_Patrol_Soldier_Patrol_25_436.jpg", (302, 152, 132, 90))
# A mourner's face, 65x91 px, in a row of faces: upside down, RetinaFace's half-turned 320 px view
# scores it between 0.05 and 0.08.
MOURNER = Face(WIDER + "6--Funeral/6_Funeral_Funeral_6_160.jpg", (150, 217, 65, 91))
# A swimmer's face, 172x266 px: CenterFace also boxes his head and shoulders, 357x441, at 0.10,
# kept only since RetinaFace agrees, with a box less than half as large.
SWIMMER = Face(WIDER + "41--Swimming/41_Swimming_Swimmer_41_232.jpg", (532, 290, 172, 266))
# A marcher's face, 234 px high, at the edge of a 1024 px photo.
MARCHER = Face(WIDER + "10--People_Marching/10_People_Marching_People_Marching_2_514.jpg", (918, 74, 100, 234))


def iou(d: Detection, box: tuple[float, float, float, float]) -> float:
    x, y, w, h = box
    ix = max(0.0, min(d.x1, x + w) - max(d.x0, x))
    iy = max(0.0, min(d.y1, y + h) - max(d.y0, y))
    inter = ix * iy
    return inter / ((d.x1 - d.x0) * (d.y1 - d.y0) + w * h - inter)


def upside_down(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return width - x - w, height - y - h, w, h


@pytest.fixture(scope="module")
def retinaface() -> RetinaFace:
    return RetinaFace()


def test_retinaface_loads_and_finds_the_faces_centerface_finds(shared_data: Path, retinaface: RetinaFace) -> None:
    rgb = read_photo(shared_data / TWO_FACES).pixels
    rows = view_pass(retinaface.faces, rgb, 1024)
    sure = [Detection(*map(float, r)) for r in rows if r[4] >= 0.9]
    centerface = detect_faces(rgb, dataclasses.replace(FAST, retina_sides=(), turns=()), CenterFace())
    assert len(sure) >= 2
    for face in (f for f in centerface if f.score >= 0.9):
        box = (face.x0, face.y0, face.x1 - face.x0, face.y1 - face.y0)
        assert max(iou(d, box) for d in sure) >= 0.5


def test_views_that_differ_only_by_their_turn_find_what_each_view_alone_finds(shared_data: Path,
                                                                               retinaface: RetinaFace) -> None:
    """The upright and turned views of one size share one downscale: the boxes are the same as when
    each view downscales the photo itself."""
    rgb = read_photo(shared_data / TWO_FACES).pixels
    profile = dataclasses.replace(FAST, retina_sides=(320, 640), pulled_side=None)
    rows, turns = retina_candidates(rgb, profile, retinaface)
    views = [(320, 0), (640, 0), (320, 1), (320, 2), (320, 3)]
    alone = [view_pass(retinaface.faces, rgb, side, turn) for side, turn in views]
    assert len(rows) > 0
    np.testing.assert_array_equal(rows, np.concatenate(alone))
    np.testing.assert_array_equal(turns, np.concatenate([np.full(len(r), t) for r, (_, t) in zip(alone, views)]))


def test_profiles_record_what_runs() -> None:
    for profile in (FAST, ACCURATE):
        record = detection_record(profile, 640, 480)
        assert record["profile"] == profile.name and record["applied_to"] == "each picture searched whole"
        assert [p["scale"] for p in record["passes"]] == list(profile.scales)
        assert record["second_model"] == RETINAFACE_NAME and len(record["second_model_sha256"]) == 64
        assert record["retina_sides"] == list(profile.retina_sides) and record["turns"] == list(profile.turns)
        assert record["zoom_floor"] == profile.zoom_floor and record["zoom_side"] == profile.zoom_side
    assert set(ACCURATE.turns) == {1, 2, 3}
    # A closer look that does not run (video's accurate frames) has no settings in the record.
    without = detection_record(VIDEO_DETECTION["accurate"].frame, 1920, 1080)
    assert without["zoom_floor"] is None and not {"zoom_height", "zoom_side", "zoom_threshold"} & set(without)


def phone_size(shared_data: Path, face: Face) -> tuple[np.ndarray, tuple]:
    """A dev photo enlarged to a phone camera's 4,032 px, and the face's box in it."""
    rgb = read_photo(shared_data / face.photo).pixels
    k = 4032 / max(rgb.shape[:2])
    big = cv2.resize(rgb, (round(rgb.shape[1] * k), round(rgb.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
    return big, tuple(v * k for v in face.box)


def test_a_phone_size_photo_gets_a_middle_pass_and_thresholds_for_faces_at_that_size(shared_data: Path) -> None:
    """A photo as large as a phone camera's (4,032 px) also gets a pass at 1,536 px, and size
    thresholds scaled to its size: its 330 px face needs the pass, its 110 px one the thresholds
    (CenterFace scores it as it scores a 28 px face in the dev photo). A dev-size photo's record
    is unchanged."""
    big, face = phone_size(shared_data, INTERVIEW)
    record = detection_record(FAST, big.shape[1], big.shape[0])
    assert [p["scale"] for p in record["passes"]] == [1.0, round(1536 / 4032, 4), round(640 / 4032, 4)]
    assert record["size_thresholds"] == [[round(40 * 4032 / 1536), 0.2], [round(80 * 4032 / 1536), 0.3]]
    assert detection_record(FAST, 1024, 768)["size_thresholds"] == [[40, 0.2], [80, 0.3]]
    without = dataclasses.replace(FAST, middle_side=10**6, zoom_floor=None)  # the closer look also finds it
    assert max((iou(d, face) for d in detect_faces(big, without)), default=0) < 0.3
    assert max(iou(d, face) for d in detect_faces(big, FAST)) >= 0.4

    big, face = phone_size(shared_data, DEMONSTRATOR)
    pass_only = dataclasses.replace(FAST, scales=(1.0, 1536 / 4032), middle_side=10**6)  # thresholds unscaled
    assert max((iou(d, face) for d in detect_faces(big, pass_only)), default=0) < 0.3
    assert max(iou(d, face) for d in detect_faces(big, FAST)) >= 0.4


def test_a_face_lying_sideways_in_a_phone_size_photo_is_found_wherever_it_lies(shared_data: Path) -> None:
    """A 500 px face lying sideways (a person lying down) in a 4,032 px photo: the turned views at
    320 px shrank it to 40 px, which RetinaFace did not find, and CenterFace finds few faces lying
    sideways, so whether it was hidden depended on where it lay. The turned views of a photo that
    gets the middle pass are as large against it as a 1,536 px photo's."""
    rgb = read_photo(shared_data / (WIDER + "1--Handshaking/1_Handshaking_Handshaking_1_362.jpg")).pixels
    lying = np.ascontiguousarray(np.rot90(rgb))  # counter-clockwise: the face's box turns with it
    x, y, bw, bh = 104, 10, 482, 508  # the face's ground-truth box, upright
    canvas = np.full((3024, 4032, 3), (90, 110, 80), np.uint8)
    left, top = 3000, 1900
    canvas[top:top + lying.shape[0], left:left + lying.shape[1]] = lying
    face = (left + y, top + rgb.shape[1] - (x + bw), bh, bw)  # turned with the photo
    record = detection_record(FAST, 4032, 3024)
    assert record["turn_side"] == round(FAST.turn_side * 4032 / 1536)
    assert detection_record(FAST, 1024, 768)["turn_side"] == FAST.turn_side
    assert detection_record(FAST, 16000, 9000)["turn_side"] == record["turn_side"]  # at most a phone photo's
    # No middle pass either, and no search of the whole photo turned (standing_search): as it was at 320 px.
    unscaled = dataclasses.replace(FAST, middle_side=10**6, standing_search=False)
    assert max((iou(d, face) for d in detect_faces(canvas, unscaled)), default=0) < 0.3
    assert max(iou(d, face) for d in detect_faces(canvas, FAST)) >= 0.5


RIOT = "3--Riot/3_Riot_Riot_3_725.jpg"


def test_a_photo_whose_people_lie_sideways_is_searched_whole_turned_to_stand_them_up(shared_data: Path,
                                                                                     tmp_path: Path) -> None:
    """A riot photo stored on its side (or its people lying down): RetinaFace's small turned views
    find its large faces only, and CenterFace few faces lying sideways, so 5 of its 17 faces of
    20 px and taller were left visible. The person detector finds its people standing once the picture is
    turned three quarters, and the whole picture is then searched that way too."""
    lines = (shared_data / "wider_face_dev" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    at = lines.index(RIOT)
    rows = [tuple(map(int, line.split()[:8])) for line in lines[at + 2:at + 2 + int(lines[at + 1])]]
    upright = read_photo(shared_data / (WIDER + RIOT)).pixels
    width = upright.shape[1]
    source = tmp_path / "riot-on-its-side.png"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(source)
    # Each face turned with the picture (a point x, y goes to y, width - x), as x, y, w, h.
    faces = [(y, width - x - w, h, w) for x, y, w, h, *_, invalid in rows if not invalid and h >= 20]
    media = plan_photo(source)
    assert media.detection["standing_turn"] == 3
    assert media.detection["standing_search"]["times_upright"] == 1.5
    render_photo(media, RenderSettings(mode="fill", color=(255, 0, 255)), tmp_path / "out.png")
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    hidden = (out == (255, 0, 255)).all(axis=2)
    protected = [inner_part(hidden, face).mean() >= 0.95 for face in faces]
    assert len(faces) == 17 and sum(protected) >= 16, protected


def test_a_clip_whose_people_lie_sideways_is_searched_turned_from_the_frame_judged_so(shared_data: Path,
                                                                                    tmp_path: Path) -> None:
    """The same riot photo on its side, as a still clip: video frames had only RetinaFace's turned
    views at 320 px for faces lying sideways, and several of its faces of 20 px and taller stayed
    visible on every frame. The shot is judged on its first frame (searched with every view), and
    its sampled frames are searched turned from then on."""
    lines = (shared_data / "wider_face_dev" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    at = lines.index(RIOT)
    rows = [tuple(map(int, line.split()[:8])) for line in lines[at + 2:at + 2 + int(lines[at + 1])]]
    upright = read_photo(shared_data / (WIDER + RIOT)).pixels[:, :, :3]
    width = upright.shape[1]
    source = clip_of(tmp_path / "riot-on-its-side.mp4", [np.rot90(upright)] * 12, crf=18)
    faces = [(y, width - x - w, h, w) for x, y, w, h, *_, invalid in rows if not invalid and h >= 20]
    media = plan_video(source)
    assert media.detection["standing_search"]["searched_turned"] == [{"sampled_frames": [0, 11], "turn": 3}]
    assert media.detection["standing_search"]["times_upright"] == 1.5
    for frame in range(media.frame_count):
        canvas = np.zeros((media.height, media.width, 3), np.uint8)
        redact_frame(canvas, [(r, r.boxes[frame]) for r in media.regions if frame in r.boxes],
                     RenderSettings("fill", (255, 0, 255)))
        protected = [inner_part((canvas == (255, 0, 255)).all(axis=2), face).mean() >= 0.95 for face in faces]
        assert len(faces) == 17 and sum(protected) >= 16, (frame, protected)



def test_the_plan_lists_as_searched_turned_only_the_frames_that_were(shared_data: Path, tmp_path: Path) -> None:
    """One shot (no cut between them): the riot photo on its side, a group standing upright, the
    riot again. Judged on its first frames the shot's people stand up turned; the group's frames, a
    new picture (shots.py), are judged afresh and not searched turned; the riot's frames again, a new
    picture too, are (with the frame before the group's, searched as a new picture's is). The plan's
    runs listed the shot whole, the group's frames among them."""
    riot = np.ascontiguousarray(np.rot90(read_photo(shared_data / (WIDER + RIOT)).pixels[:, :, :3]))
    riot = riot[:riot.shape[0] // 2 * 2, :riot.shape[1] // 2 * 2]  # yuv420p: even sides
    group = np.asarray(Image.open(shared_data / (WIDER + "12--Group/12_Group_Group_12_Group_Group_12_28.jpg"))
                       .convert("RGB").resize((riot.shape[1], riot.shape[0])))
    source = clip_of(tmp_path / "riot-group-riot.mp4", [riot] * 12 + [group] * 6 + [riot] * 12, crf=18)
    media = plan_video(source)
    assert media.scene_cuts == [] and media.detection["new_pictures"] == [12, 18]
    runs = [(run["sampled_frames"], run["turn"]) for run in media.detection["standing_search"]["searched_turned"]]
    assert runs[0] == ([0, 11], 3) and runs[-1][0][1] == 29 and len(runs) == 2, runs
    assert not any(first <= frame <= last for (first, last), _ in runs for frame in range(12, 18)), runs


def night_shot(rgb: np.ndarray) -> np.ndarray:
    """The photo taken at night: its light cut to 6% in linear terms, then a sensor's noise."""
    linear = (rgb.astype(np.float32) / 255) ** 2.2 * 0.06
    noise = np.random.default_rng(0).normal(0, 3, rgb.shape)
    return np.clip(255 * linear ** (1 / 2.2) + noise, 0, 255).astype(np.uint8)


def test_a_dark_photo_is_brightened_for_the_detectors_and_its_plan_says_by_how_much(shared_data: Path,
                                                                                     tmp_path: Path) -> None:
    daylight = read_photo(shared_data / MARCHER.photo).pixels[:, :, :3]
    rgb = night_shot(daylight)
    assert exposure_gain(daylight, FAST.dark_below) == 1.0 and exposure_gain(rgb, FAST.dark_below) > 1.5
    unlit = dataclasses.replace(FAST, dark_below=None)
    assert max((iou(d, MARCHER.box) for d in detect_faces(rgb, unlit)), default=0) < 0.3
    assert max(iou(d, MARCHER.box) for d in detect_faces(rgb, FAST)) >= 0.4
    path = tmp_path / "night.png"
    Image.fromarray(rgb).save(path)
    media = plan_photo(path)
    assert media.detection["exposure_gain"] == round(exposure_gain(rgb, FAST.dark_below), 3)
    assert media.detection["dark_below"] == FAST.dark_below
    assert "exposure_gain" not in plan_photo(shared_data / MARCHER.photo).detection
    out = tmp_path / "out.png"  # the output is hidden where the plan says, and not brightened
    render_photo(media, RenderSettings(mode="fill", color=(255, 0, 255)), out)
    written = np.asarray(Image.open(out).convert("RGB"))
    shown = ~(written == (255, 0, 255)).all(axis=2)
    assert 0.2 < shown.mean() < 1 and np.array_equal(written[shown], rgb[shown])


def test_hazed_and_stage_lit_photos_are_levelled_for_the_detectors_only(shared_data: Path, tmp_path: Path) -> None:
    """Fog or glare (blacks lifted) and one strongly coloured light have each channel's levels
    stretched for the detectors (`light_levels`); the plan says so, and the output is not changed.
    An ordinary photo is not judged to be under hard light."""
    daylight = read_photo(shared_data / MARCHER.photo).pixels[:, :, :3]
    assert light_levels(daylight)[0] is None
    hazed = np.clip(daylight * 0.35 + 0.65 * 210 + 0.5, 0, 255).astype(np.uint8)
    linear = (daylight.astype(np.float32) / 255) ** 2.2 * np.array([0.1, 0.25, 1.0], np.float32)
    blue = np.clip(255 * linear ** (1 / 2.2) + 0.5, 0, 255).astype(np.uint8)
    assert FAST.hard_light and light_levels(hazed)[0] == "lifted" and light_levels(blue)[0] == "cast"
    assert light_levels(hazed, hard_light=False)[0] is None
    path = tmp_path / "hazed.png"
    Image.fromarray(hazed).save(path)
    media = plan_photo(path)
    assert media.detection["hard_light"] == "lifted" and media.detection["hard_light_rule"]["lifted_floor"] == 96
    assert "hard_light" not in plan_photo(shared_data / MARCHER.photo).detection
    out = tmp_path / "out.png"
    render_photo(media, RenderSettings(mode="fill", color=(255, 0, 255)), out)
    written = np.asarray(Image.open(out).convert("RGB"))
    shown = ~(written == (255, 0, 255)).all(axis=2)
    assert 0.2 < shown.mean() < 1 and np.array_equal(written[shown], hazed[shown])


def test_a_large_photo_is_searched_low_passed_at_its_middle_pass_size(shared_data: Path, tmp_path: Path) -> None:
    """A large photo judged to have fine colour was blurred and searched at its full size: a second
    copy of its pixels, searched tile by tile. A photo large enough for a middle pass holds its
    blurred copy at that pass's size, and what is found there is mapped back onto the photo."""
    screen, (x, y) = on_a_screen(shared_data, INTERVIEW, 4)
    large = cv2.resize(screen, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)
    x, y = x * 2.5, y * 2.5
    picture = prepared(large, FAST)
    assert picture.low_passed
    assert all(max(view.shape[:2]) == FAST.middle_side < large.shape[1] for view in picture.low_passed)
    # Its boxes are held to what they would be at full size: the photo's thresholds (a middle-side
    # picture's, scaled up to its pixels) shrunk with the copy, which is a middle-side picture.
    assert [h for h, _ in picture.low_passed_profile.size_thresholds] == pytest.approx(
        [h for h, _ in FAST.size_thresholds], abs=1)
    without = dataclasses.replace(FAST, fine_colour_above=None)
    for profile, found in ((FAST, True), (without, False)):
        assert any(b.x0 <= x <= b.x1 and b.y0 <= y <= b.y1 for b in detect_faces(large, profile)) == found
    path = tmp_path / "large.png"
    Image.fromarray(large).save(path)
    assert plan_photo(path).detection["low_passed_searched_at"] == [1536, round(large.shape[0] * 1536 / large.shape[1])]


def on_a_screen(shared_data: Path, face: Face, pitch: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The photo round `face` shown on a screen (an LCD's red, green and blue stripes and dark grid,
    `pitch` px a pixel) photographed at an angle, which makes moiré; and the face's centre there."""
    photo = read_photo(shared_data / face.photo).pixels[:, :, :3]
    x, y, w, h = face.box
    centre_x, centre_y = x + w / 2, y + h / 2
    half = int(max(w, h) * 1.6)
    left, top = max(0, int(centre_x - half)), max(0, int(centre_y - half * 0.6))
    crop = photo[top:top + int(half * 1.2), left:left + 2 * half]
    shown = cv2.resize(crop, (crop.shape[1] * 2 // pitch, crop.shape[0] * 2 // pitch), interpolation=cv2.INTER_AREA)
    cell = np.full((pitch, pitch, 3), 0.35, np.float32)
    for channel in range(3):
        cell[:pitch - 1, channel * (pitch // 3):(channel + 1) * (pitch // 3), channel] = 1.0
    lit = cv2.resize(shown, (shown.shape[1] * pitch, shown.shape[0] * pitch), interpolation=cv2.INTER_NEAREST)
    screen = np.clip(lit * np.tile(cell, (shown.shape[0], shown.shape[1], 1)) * 1.9, 0, 255).astype(np.uint8)
    height, width = screen.shape[:2]
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    at = cv2.getPerspectiveTransform(corners, np.float32([[width * .2, height * .3], [width * 1.3, height * .2],
                                                          [width * 1.3, height * 1.3], [width * .2, height * 1.2]]))
    size = (int(width * 1.5), int(height * 1.5))
    photographed = np.full((size[1], size[0], 3), 60, np.uint8)
    on_it = cv2.warpPerspective(np.full((height, width), 255, np.uint8), at, size) > 127
    photographed[on_it] = cv2.warpPerspective(screen, at, size, flags=cv2.INTER_LINEAR)[on_it]
    x, y = cv2.perspectiveTransform(np.float32([[[(centre_x - left) * 2, (centre_y - top) * 2]]]), at)[0, 0]
    return photographed, (float(x), float(y))


def on_a_subpixel_screen(rgb: np.ndarray, camera_pixels_a_screen_pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """The picture shown on an LCD (each pixel three stripes, red, green and blue, with a dark gap
    below) and photographed at a slight angle, and the map (3x3) from the picture's pixels to the
    photo's."""
    height, width = rgb.shape[:2]
    cells = np.zeros((height, 3, width, 3, 3), np.float32)
    for channel in range(3):
        cells[:, :2, :, channel, channel] = rgb[:, None, :, channel]
    lit = cv2.GaussianBlur(cells.reshape(height * 3, width * 3, 3), (0, 0), 0.6) * 2.4 + 8
    out_w, out_h = int(width * camera_pixels_a_screen_pixel), int(height * camera_pixels_a_screen_pixel)
    corners = np.float32([[0, 0], [width * 3, 0], [0, height * 3], [width * 3, height * 3]])
    seen = np.float32([[0.06 * out_w, 0.08 * out_h], [0.94 * out_w, 0.04 * out_h],
                       [0.08 * out_w, 0.92 * out_h], [0.92 * out_w, 0.97 * out_h]])
    warp = cv2.getPerspectiveTransform(corners, seen)
    shot = cv2.warpPerspective(lit, warp, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=(20, 20, 20))
    return np.clip(shot, 0, 255).astype(np.uint8), warp @ np.diag([3.0, 3.0, 1.0])


def voter_on_a_subpixel_screen(shared_data: Path) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A voter's photo on a monitor shot with about one camera pixel a screen pixel (an attack
    review's screen), and the voter's 116x174 px face in it (x, y, width, height)."""
    photo = read_photo(shared_data / WIDER / "56--Voter/56_Voter_peoplevoting_56_747.jpg").pixels[:, :, :3]
    scale = 640 / max(photo.shape[:2])
    shown = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    screen, warp = on_a_subpixel_screen(shown, 1.05)
    x, y, w, h = (v * scale for v in (356, 42, 116, 174))
    box = np.float32([[x, y], [x + w, y], [x, y + h], [x + w, y + h]])[:, None]
    corners = cv2.perspectiveTransform(box, warp)[:, 0]
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return screen, (round(x0), round(y0), round(x1 - x0), round(y1 - y0))


def test_a_screen_shot_close_to_one_to_one_is_searched_blurred_past_its_moire(shared_data: Path,
                                                                               tmp_path: Path) -> None:
    """A monitor photographed with about one camera pixel a screen pixel shows wide rainbow bands
    of moire, wider than the low-pass look's blur: the voter's face was left whole (0% hidden).
    A second, wider blur is searched too."""
    screen, face = voter_on_a_subpixel_screen(shared_data)
    source, out = tmp_path / "screen.png", tmp_path / "out.png"
    Image.fromarray(screen).save(source)
    media = plan_photo(source, FAST)
    assert media.detection["low_passed"]
    render_photo(media, RenderSettings(mode="fill", color=(255, 0, 255)), out)
    hidden = inner_part(read_photo(out).pixels, face)
    assert (np.abs(hidden.astype(int) - (255, 0, 255)).max(axis=2) == 0).mean() >= 0.95  # 0 before


def test_a_screen_in_a_true_colour_animation_is_searched_low_passed_too(shared_data: Path, tmp_path: Path) -> None:
    """The screen above as a lossless animated WebP: its frames were not judged for fine colour,
    and the face stayed whole in each, where the photo hid it. A true-colour animation's frames are
    judged as a photo is."""
    screen, face = voter_on_a_subpixel_screen(shared_data)
    frames = [Image.fromarray(screen) for _ in range(3)]
    for index, frame in enumerate(frames):  # each its own frame (the same ones are stored as one)
        frame.putpixel((0, 0), (index * 60, 0, 0))
    source, out = tmp_path / "screen.webp", tmp_path / "out.webp"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    media = plan_animation(source)
    assert media.detection["frames_judged"]["low_passed"] == 3 and "low_pass_rule" in media.detection
    render_animation(media, RenderSettings(mode="fill", color=(255, 0, 255)), out)
    with Image.open(out) as written:
        for frame in ImageSequence.Iterator(written):
            hidden = inner_part(np.asarray(frame.convert("RGB")), face)
            assert (np.abs(hidden.astype(int) - (255, 0, 255)).max(axis=2) <= 8).mean() >= 0.95  # 0 before
    # A GIF's frames, and a true-colour animation made of them, are dithered: searched low-passed,
    # such frames of a one-face clip gave 40 regions for 7.
    gif, of_gif = tmp_path / "screen.gif", tmp_path / "of_gif.webp"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(gif) as dithered:
        shown = [frame.convert("RGB") for frame in ImageSequence.Iterator(dithered)]
    shown[0].save(of_gif, save_all=True, append_images=shown[1:], duration=100, loop=0, lossless=True)
    assert not any("low_pass_rule" in plan_animation(path).detection for path in (gif, of_gif))


def test_a_screen_filmed_is_searched_low_passed_in_the_video_frames_too(shared_data: Path, tmp_path: Path) -> None:
    """A monitor filmed with about one camera pixel a screen pixel (as in the test above), shown
    in a 1280x720 clip: a video's sampled frames were not judged for fine colour, and both
    waiters' faces (about 180 px) stayed whole in every frame. They are, as a photo is."""
    photo = read_photo(shared_data / WIDER / "31--Waiter_Waitress/31_Waiter_Waitress_Waiter_Waitress_31_339.jpg").pixels
    scale = 640 / max(photo.shape[:2])
    screen, warp = on_a_subpixel_screen(cv2.resize(photo[:, :, :3], None, fx=scale, fy=scale,
                                                   interpolation=cv2.INTER_AREA), 1.05)
    fit = min(1280 / screen.shape[1], 720 / screen.shape[0])
    shown = cv2.resize(screen, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)
    frame = np.zeros((720, 1280, 3), np.uint8)
    left, top = (1280 - shown.shape[1]) // 2, (720 - shown.shape[0]) // 2
    frame[top:top + shown.shape[0], left:left + shown.shape[1]] = shown
    faces = []
    for x, y, w, h in ((400, 42, 128, 196), (576, 80, 124, 176)):
        box = np.float32([[x, y], [x + w, y], [x, y + h], [x + w, y + h]])[:, None] * scale
        corners = cv2.perspectiveTransform(box, warp)[:, 0] * fit + (left, top)
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        faces.append((round(x0), round(y0), round(x1 - x0), round(y1 - y0)))
    clip, out = clip_of(tmp_path / "screen.mp4", [frame] * 6, crf=12), tmp_path / "out.mkv"
    media = plan_video(clip)
    assert media.detection["frames_judged"]["low_passed"] >= 1
    assert media.detection["low_pass_rule"]["low_passed_searched_by"] == "CenterFace alone"
    render_video(media, RenderSettings(mode="fill", color=(255, 0, 255)), out)
    with av.open(str(out)) as container:
        for picture in container.decode(video=0):
            pixels = picture.to_ndarray(format="rgb24")
            for face in faces:
                hidden = inner_part(pixels, face)
                assert (np.abs(hidden.astype(int) - (255, 0, 255)).max(axis=2) <= 40).mean() >= 0.95, face


def test_a_face_photographed_off_a_screen_is_found_in_the_picture_low_passed(shared_data: Path, tmp_path: Path) -> None:
    """A screen's pixel grid and the moiré a camera makes of it hid large faces from both networks;
    such a photo (judged by the fine detail in its colour) is searched low-passed too. A photo's
    colour varies smoothly: it is not."""
    without = dataclasses.replace(FAST, fine_colour_above=None)
    for face, pitch in ((INTERVIEW, 4), (FAN, 6)):
        screen, (x, y) = on_a_screen(shared_data, face, pitch)
        assert fine_colour(screen) >= FAST.fine_colour_above > fine_colour(read_photo(shared_data / face.photo).pixels)

        def hidden(profile) -> bool:
            return any(b.x0 <= x <= b.x1 and b.y0 <= y <= b.y1 for b in detect_faces(screen, profile))

        assert hidden(FAST) and not hidden(without), face
    path = tmp_path / "screen.png"
    Image.fromarray(screen).save(path)
    media = plan_photo(path)
    assert media.detection["low_passed"] and media.detection["fine_colour"] >= 0.5
    assert media.detection["low_pass_rule"] == {"fine_colour_above": 0.5, "judged_at_most": 1024,
                                                "sigmas_at_that_size": [2.5, 5.0], "searched_as_it_is_too": True,
                                                "not_when_brightened": True, "large_searched_at_middle_side": True}
    assert not plan_photo(shared_data / FAN.photo).detection["low_passed"]
    assert "low_passed_searched_at" not in plan_photo(shared_data / FAN.photo).detection


def test_a_face_lost_in_haze_is_found_with_the_levels_stretched(shared_data: Path, tmp_path: Path) -> None:
    rgb = read_photo(shared_data / VOTER.photo).pixels[:, :, :3]
    hazed = np.clip(rgb * 0.4 + 0.6 * 210 + 0.5, 0, 255).astype(np.uint8)  # fog: 60% toward a light grey
    assert light_levels(hazed)[0] == "lifted"
    assert max((iou(d, VOTER.box) for d in detect_faces(hazed, dataclasses.replace(FAST, hard_light=False))), default=0) < 0.3
    source = tmp_path / "hazed.png"
    Image.fromarray(hazed).save(source)
    render_photo(plan_photo(source, FAST), RenderSettings(mode="fill"), tmp_path / "out.png")
    shown = read_photo(tmp_path / "out.png").pixels
    assert (inner_part(shown, VOTER.box) <= 24).mean() >= 0.95


# A speaker's face, 300x400 px in the photo.
SPEAKER = Face(WIDER + "9--Press_Conference/9_Press_Conference_Press_Conference_9_594.jpg", (334, 182, 300, 400))


def test_a_photo_on_a_white_page_is_searched_as_it_is_too(shared_data: Path, tmp_path: Path) -> None:
    """A print scanned on a white page, a picture on a slide: the page is bright, so the whole is
    judged to have its blacks lifted, and its levels stretched from its darkest hundredth, which
    is the photo itself: the face was black in the view the detectors saw, and left visible."""
    rgb = read_photo(shared_data / SPEAKER.photo).pixels[:, :, :3]
    scale = 150 / SPEAKER.box[3]
    small = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    page = np.full((3000, 4000, 3), 255, np.uint8)
    page[500:500 + small.shape[0], 600:600 + small.shape[1]] = small
    face = tuple(round(v * scale) + offset for v, offset in zip(SPEAKER.box, (600, 500, 0, 0)))
    picture = prepared(page, FAST)
    assert picture.light == "lifted" and picture.unlevelled is not None
    stretched_only = dataclasses.replace(picture, unlevelled=None)
    assert max((iou(d, face) for d in faces_in(stretched_only)), default=0) < 0.3
    source, out = tmp_path / "page.png", tmp_path / "out.png"
    Image.fromarray(page).save(source)
    media = plan_photo(source, FAST)
    assert media.detection["hard_light"] == "lifted" and media.detection["hard_light_rule"]["searched_as_it_is_too"]
    render_photo(media, RenderSettings(mode="fill"), out)
    assert (inner_part(read_photo(out).pixels, face) <= 24).mean() >= 0.95


@pytest.mark.parametrize("cast", [(0, 0, 0), (20, 10, 0), (0, 10, 25), (1.0, 0.88, 0.62)])
def test_a_black_and_white_negative_s_large_face_is_hidden(shared_data: Path, tmp_path: Path, cast) -> None:
    """A scanned black-and-white negative: its faces dark where they are light. A balloonist's
    74x86 px face was left whole (0% hidden), and one invert of the output showed it; scanned with
    a cast (a flatbed's, a yellowed base's), it had colour, and was left whole again; so was a
    parade's face through a tint that scales the channels, once saved as JPEG."""
    scaled = isinstance(cast[0], float)
    name = "0--Parade/0_Parade_Parade_0_246.jpg" if scaled else "45--Balloonist/45_Balloonist_Balloonist_45_86.jpg"
    photo = read_photo(shared_data / WIDER / name).pixels[:, :, :3]
    grey = cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2GRAY).astype(np.float64)
    channels = [(255 - grey) * tint if scaled else 255 - grey + tint for tint in cast]
    source, out = tmp_path / ("negative.jpg" if scaled else "negative.png"), tmp_path / "out.png"
    Image.fromarray(np.clip(np.rint(np.dstack(channels)), 0, 255).astype(np.uint8)).save(source, quality=90)
    media = plan_photo(source, FAST)
    assert media.detection["colourless"] == (cast == (0, 0, 0)) and media.detection["searched_inverted"]
    render_photo(media, RenderSettings(mode="fill", color=(255, 0, 255)), out)
    x0, y0, x1, y1 = dev_faces(shared_data, name, least=80)[0] if scaled else (728, 294, 728 + 74, 294 + 86)
    hidden = inner_part(read_photo(out).pixels, (x0, y0, x1 - x0, y1 - y0))
    assert (np.abs(hidden.astype(int) - (255, 0, 255)).max(axis=2) == 0).mean() >= 0.95  # 0 before


def test_a_face_across_a_360_photo_s_seam_is_hidden_on_both_sides(shared_data: Path, tmp_path: Path) -> None:
    """A 360-degree photo (equirectangular, 2:1) whose left and right edges a viewer joins: a face
    split by that seam was hidden on one side only, its other half left whole (0% hidden), and the
    viewer joins the two halves back into one face."""
    from veil.plan import Plan

    photo = read_photo(shared_data / WIDER / "23--Shoppers/23_Shoppers_Shoppers_23_259.jpg").pixels[:, :, :3]
    x, y, w, h = 202, 0, 160, 218  # the face (its box from the ground truth, taller: its hair)
    height = photo.shape[0]
    canvas = np.full((height, 2 * height, 3), 96, np.uint8)
    canvas[:, :photo.shape[1]] = photo
    shift = -(x + w // 2)  # the seam through the middle of the face
    source, out = tmp_path / "room 360.png", tmp_path / "out.png"
    Image.fromarray(np.roll(canvas, shift, axis=1)).save(source)
    media = plan_photo(source, FAST)
    plan = tmp_path / "plan.json"
    Plan(media=[media]).save(plan)
    loaded = Plan.load(plan).media[0]  # a box past the picture's edge is a plan's as any other
    for rendered in (media, loaded):
        render_photo(rendered, RenderSettings(mode="fill", color=(255, 0, 255)), out)
        hidden = (np.abs(read_photo(out).pixels[:, :, :3].astype(int) - (255, 0, 255)).max(axis=2) == 0)
        right, left = hidden[y + 40:y + 180, -w // 2 + 10:], hidden[y + 40:y + 180, :w // 2 - 10]
        assert right.mean() >= 0.95 and left.mean() >= 0.95, (right.mean(), left.mean())  # right: 0 before
    assert media.detection["searched_across_the_seam"]
    assert not plan_photo(shared_data / WIDER / "23--Shoppers/23_Shoppers_Shoppers_23_259.jpg").detection[
        "searched_across_the_seam"]  # a photo of another shape


def test_the_plan_says_how_each_view_and_each_frame_was_judged(shared_data: Path, tmp_path: Path) -> None:
    """Brightening, colourless thresholds and the squeezed look are decided picture by picture:
    the plan records what each picture got (a transparent photo's views each, a smeared photo's
    squeezed passes, how many of a video's searches each rule changed), not only the rules."""
    daylight = read_photo(shared_data / MARCHER.photo).pixels[:, :, :3]
    faint = tmp_path / "faint.png"  # transparent everywhere: pale over white, dark over black
    Image.fromarray(np.dstack([daylight, np.full(daylight.shape[:2], 40, np.uint8)])).save(faint)
    views = {view["view"]: view for view in plan_photo(faint).detection["transparency_views"]}
    assert views["colour channels"]["threshold"] == FAST.threshold and not views["colour channels"]["colourless"]
    assert views["over white"]["colourless"] and views["over white"]["threshold"] == FAST.colourless[0]
    assert views["over white"]["size_thresholds"] == [list(t) for t in FAST.colourless[1]]
    assert views["over black"]["exposure_gain"] > 1.5 and "exposure_gain" not in views["colour channels"]

    smeared = cv2.filter2D(daylight, -1, np.full((1, 31), 1 / 31, np.float32))
    Image.fromarray(smeared).save(tmp_path / "smeared.png")
    record = plan_photo(tmp_path / "smeared.png").detection
    height, width = smeared.shape[:2]
    assert record["smeared_sideways"] is True and record["squeezed_to"] == [round(width / 2), height]
    assert record["squeezed_passes"] and all(p["tiles"] >= 1 for p in record["squeezed_passes"])
    sharp = plan_photo(shared_data / MARCHER.photo).detection
    assert sharp["smeared_sideways"] is False and "squeezed_passes" not in sharp
    head = {"side": HEAD_MARGIN_SIDE, "above": HEAD_MARGIN_TOP, "below": HEAD_MARGIN_BOTTOM}
    assert {k: sharp["head_from_face"][k] for k in head} == head
    assert sharp["runtime"]["execution_providers"] == ["CPUExecutionProvider"]

    sampling = VIDEO_DETECTION["fast"]
    frame = cv2.resize(daylight, (960, 540))
    grey = np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    frames = [frame, night_shot(frame), grey, cv2.filter2D(frame, -1, np.full((1, 31), 1 / 31, np.float32))]
    judged = FramesJudged()
    detect_frames(frames, sampling.frame, [False] * 4, judged=judged, colourless_gain=sampling.colourless_gain)
    assert judged.record() == {"searches": 4, "brightened": 1, "colourless": 1, "smeared_sideways": 1, "low_passed": 0}


def test_judging_a_huge_photos_colour_holds_little_memory() -> None:
    # Every fourth pixel of a 14000 px square photo, copied as floats to judge whether it is
    # colourless or of one hue, was the whole run's peak of memory (1.84 GB against 1.34).
    import tracemalloc

    rng = np.random.default_rng(7)
    photo = np.repeat(np.repeat(rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8), 8, axis=0), 8, axis=1)
    grey = np.repeat(photo[..., :1], 3, axis=2)  # 8000 x 8000, each 192 MB
    tracemalloc.start()
    try:
        judged = (is_colourless(photo), is_one_hue(photo), is_colourless(grey), is_one_hue(grey))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert judged == (False, False, True, True)
    assert peak < 0.75 * photo.nbytes, f"{peak / 1e6:.0f} MB held to judge the colour of a 192 MB photo"


def test_a_black_and_white_photo_is_held_to_the_colourless_thresholds(shared_data: Path, tmp_path: Path) -> None:
    """Without skin colour both detectors score faces lower: a photo without colour gets the
    profile's colourless thresholds, which keep a large face the colour thresholds lose, and its
    plan says so."""
    rgb = read_photo(shared_data / FAN.photo).pixels
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # one channel, as a black and white JPEG decodes
    assert is_colourless(np.repeat(gray[:, :, None], 3, axis=2)) and not is_colourless(rgb)
    without = dataclasses.replace(FAST, colourless=None)
    assert max((iou(d, FAN.box) for d in detect_faces(gray, without)), default=0) < 0.3
    assert max(iou(d, FAN.box) for d in detect_faces(gray, FAST)) >= 0.5
    source = tmp_path / "fan.jpg"
    cv2.imwrite(str(source), gray)
    media = plan_photo(source, FAST)
    assert media.detection["colourless"] is True and media.detection["threshold"] == FAST.colourless[0]
    assert plan_photo(shared_data / FAN.photo, FAST).detection["colourless"] is False
    render_photo(media, RenderSettings(mode="fill"), tmp_path / "out.png")
    shown = read_photo(tmp_path / "out.png").pixels
    assert (inner_part(shown, FAN.box) <= 24).mean() >= 0.95


def test_a_video_frame_without_colour_has_its_scores_raised(shared_data: Path) -> None:
    """Video's thresholds lie in the detector and the tracker both: on a frame without colour
    CenterFace's scores are raised instead, which keeps a face its plain scores would lose, and
    leaves a colour frame's detections exactly as they were."""
    rgb = read_photo(shared_data / LISTENER.photo).pixels
    gray = np.ascontiguousarray(np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2))
    sampling = VIDEO_DETECTION["fast"]

    def found(frame: np.ndarray, gain: float | None) -> list[Detection]:
        return detect_frames([frame], sampling.frame, [False], overview_threshold=sampling.overview_threshold,
                             colourless_gain=gain)[0]

    assert max((iou(d, LISTENER.box) for d in found(gray, None)), default=0) < 0.2
    assert max(iou(d, LISTENER.box) for d in found(gray, sampling.colourless_gain)) >= 0.5
    assert found(rgb, sampling.colourless_gain) == found(rgb, None)
    record = video_detection_record(sampling, 1, 1, (960, 540), TrackParams(), (None, None))
    assert record["sampling"]["colourless_gain"] == sampling.colourless_gain


def test_turned_views_find_an_upside_down_face_centerface_alone_misses(shared_data: Path) -> None:
    rgb = np.ascontiguousarray(np.rot90(read_photo(shared_data / SOLDIER.photo).pixels, 2))
    face = upside_down(SOLDIER.box, rgb.shape[1], rgb.shape[0])
    centerface_only = dataclasses.replace(FAST, retina_sides=(), turns=())
    assert max((iou(d, face) for d in detect_faces(rgb, centerface_only)), default=0) < 0.3
    assert max(iou(d, face) for d in detect_faces(rgb, ACCURATE)) >= 0.5


def test_a_closer_look_keeps_an_upside_down_face_the_small_turned_view_scores_low(shared_data: Path) -> None:
    rgb = np.ascontiguousarray(np.rot90(read_photo(shared_data / PHOTOGRAPHER.photo).pixels, 2))
    face = upside_down(PHOTOGRAPHER.box, rgb.shape[1], rgb.shape[0])
    rows, turns = retina_candidates(rgb, FAST, RetinaFace())
    seen = [r for r, t in zip(rows, turns) if t == 2 and iou(Detection(*map(float, r)), face) >= 0.5]
    assert seen and max(r[4] for r in seen) < FAST.retina_threshold  # seen, but too weak to keep alone
    without_zoom = dataclasses.replace(FAST, zoom_floor=None)
    assert max((iou(d, face) for d in detect_faces(rgb, without_zoom)), default=0) < 0.3
    assert max(iou(d, face) for d in detect_faces(rgb, FAST)) >= 0.5


def test_the_closer_look_starts_low_enough_for_an_upside_down_mourner(shared_data: Path, tmp_path: Path) -> None:
    """The default looks again at RetinaFace boxes from 0.05 (and 30 px high): this mourner upside
    down, whom the small turned view scores under the earlier floor of 0.08, is found on the crop
    and hidden."""
    pixels = read_photo(shared_data / MOURNER.photo).pixels
    face = upside_down(MOURNER.box, pixels.shape[1], pixels.shape[0])
    rgb = np.ascontiguousarray(np.rot90(pixels, 2))
    source = tmp_path / "upside_down.png"
    Image.fromarray(rgb).save(source)  # lossless: the plan sees exactly `rgb`
    plan = plan_photo(source, FAST)
    assert plan.detection["zoom_floor"] == 0.05 and plan.detection["zoom_height"] == 30
    render_photo(plan, RenderSettings(mode="fill"), tmp_path / "out.png")
    assert (inner_part(read_photo(tmp_path / "out.png").pixels, face) <= 24).mean() >= 0.95
    assert max(iou(d, face) for d in detect_faces(rgb, FAST)) >= 0.5
    # (Without the search of the whole photo turned as well: it stands these mourners up and finds her.)
    earlier = dataclasses.replace(FAST, zoom_floor=0.08, zoom_height=40, standing_search=False)
    assert max((iou(d, face) for d in detect_faces(rgb, earlier)), default=0) < 0.3


def test_a_face_both_detectors_find_in_a_turned_view_is_hidden_around_the_turned_views_box(
        shared_data: Path, tmp_path: Path) -> None:
    """Upright CenterFace boxes a face lying on its side beside it; where a turned RetinaFace view
    agrees, the face is hidden around that view's box too, not around CenterFace's alone."""
    pixels = read_photo(shared_data / PATROL.photo).pixels
    x, y, w, h = PATROL.box
    lying = np.ascontiguousarray(np.rot90(pixels, 3))
    box = (pixels.shape[0] - y - h, x, h, w)
    source = tmp_path / "lying.png"
    Image.fromarray(lying).save(source)
    plan = plan_photo(source, ACCURATE)
    assert plan.detection["turned_kept"] is True
    render_photo(plan, RenderSettings(mode="fill"), tmp_path / "out.png")
    shown = read_photo(tmp_path / "out.png").pixels
    assert (inner_part(shown, box) <= 24).mean() >= 0.95


def test_a_loose_weak_box_is_hidden_around_the_tighter_box_that_confirms_it(shared_data: Path,
                                                                             tmp_path: Path) -> None:
    """A CenterFace box kept only on RetinaFace's agreement, more than 1.5 times the area of the
    RetinaFace box that confirms it, is hidden around that box: the swimmer's face stays hidden,
    and the water and arms around his head and shoulders no longer are."""
    source = shared_data / SWIMMER.photo
    hidden = {}
    for label, profile in (("tight", FAST), ("loose", dataclasses.replace(FAST, loose_ratio=None))):
        plan = plan_photo(source, profile)
        assert plan.detection["loose_ratio"] == profile.loose_ratio
        render_photo(plan, RenderSettings(mode="fill", color=(255, 0, 255)), tmp_path / f"{label}.png")
        shown = read_photo(tmp_path / f"{label}.png").pixels
        magenta = (shown == (255, 0, 255)).all(axis=2)
        assert inner_part(magenta, SWIMMER.box).mean() >= 0.95, label
        hidden[label] = magenta.mean()
    assert hidden["tight"] < 0.7 * hidden["loose"], hidden


def test_a_face_larger_than_the_picture_is_hidden_round_both_detectors_boxes() -> None:
    """A large RetinaFace box reaching past the picture's edge and CenterFace's box of the same
    face each cover a part the other does not: kept side by side, NMS kept RetinaFace's alone
    and left CenterFace's right edge visible. RetinaFace's box is kept grown to hold CenterFace's."""
    centerface = np.array([[0, 50, 500, 540, 0.8]], np.float32)
    retina = np.array([[-60, 30, 440, 560, 0.95]], np.float32)
    rows = select(centerface, retina, np.zeros(1, int), FAST, 960, 540)
    (face,) = fuse(rows, FAST.nms_iou, 960, 540)
    assert (face.x0, face.y0, face.x1, face.y1) == (0, 30, 500, 540)


def test_a_loose_box_round_two_faces_leaves_both_hidden() -> None:
    """A weak CenterFace box round two heads, confirmed by RetinaFace's box of each: tightened to
    the better one, the other face keeps its own RetinaFace box (it was dropped as a face both
    detectors had found, and left visible)."""
    loose = np.array([[100, 100, 200, 150, 0.08]], np.float32)
    faces = np.array([[103, 103, 148, 148, 0.9], [152, 103, 197, 148, 0.8]], np.float32)
    kept = select(loose, faces, np.zeros(2, int), FAST, 1000, 1000)
    for face in faces:
        assert any((row[:4] == face[:4]).all() for row in kept), kept


def test_video_frames_with_views_get_a_closer_look_too(shared_data: Path) -> None:
    """A sampled video frame that RetinaFace's views run on gets a closer look, as a photo does
    (from the floor the pan clips were measured with): the upside-down face they score low is kept."""
    rgb = np.ascontiguousarray(np.rot90(read_photo(shared_data / PHOTOGRAPHER.photo).pixels, 2))
    face = upside_down(PHOTOGRAPHER.box, rgb.shape[1], rgb.shape[0])
    frame_profile = VIDEO_DETECTION["fast"].frame
    assert frame_profile.zoom_floor is not None and frame_profile.zoom_side == FAST.zoom_side
    [with_views] = detect_frames([rgb], frame_profile, [True])
    assert max(iou(d, face) for d in with_views) >= 0.5
    [without_zoom] = detect_frames([rgb], dataclasses.replace(frame_profile, zoom_floor=None), [True])
    assert max((iou(d, face) for d in without_zoom), default=0) < 0.5


def test_video_frames_get_centerface_overview_pass(shared_data: Path) -> None:
    """The video profile runs CenterFace on each sampled frame downscaled too (as a photo's
    overview pass): a blurred crowd face the full-size pass boxes beside the face is found there,
    and the plan's record says the pass ran and at what threshold."""
    rgb = read_photo(shared_data / PARADE.photo).pixels
    scale = 960 / max(rgb.shape[:2])
    frame = cv2.resize(rgb, (round(rgb.shape[1] * scale / 2) * 2, round(rgb.shape[0] * scale / 2) * 2),
                       interpolation=cv2.INTER_AREA)
    face = tuple(v * scale for v in PARADE.box)
    sampling = VIDEO_DETECTION["fast"]
    assert sampling.overview_threshold is not None
    [full_only] = detect_frames([frame], sampling.frame, [False])
    assert max((iou(d, face) for d in full_only), default=0) < 0.3
    [with_overview] = detect_frames([frame], sampling.frame, [False], overview_threshold=sampling.overview_threshold)
    assert max(iou(d, face) for d in with_overview) >= 0.5
    # Where every call must keep one input shape (CUDA), the small frame sits in a blank
    # frame-size canvas: the same face is found.
    fixed = CenterFace()
    fixed.fixed_shapes = True
    [padded] = detect_frames([frame], sampling.frame, [False], 2, fixed, overview_threshold=sampling.overview_threshold)
    assert max(iou(d, face) for d in padded) >= 0.5
    record = video_detection_record(sampling, 2, 2, (frame.shape[1], frame.shape[0]), TrackParams(), (None, None))
    assert record["overview"] == {"longest_side": sampling.frame.overview_side,
                                  "threshold": sampling.overview_threshold}
    assert video_detection_record(sampling, 2, 2, (320, 180), TrackParams(), (None, None))["overview"] is None


def test_video_frames_are_seen_at_the_detectors_side_or_half_their_own() -> None:
    sampling = VIDEO_DETECTION["fast"]
    sides = {size: sampling.side_for(*size) for size in
             [(640, 360), (1280, 720), (1920, 1080), (1080, 1920), (2560, 1440), (3840, 2160), (2160, 3840), (7680, 4320)]}
    assert sides == {(640, 360): 960, (1280, 720): 960, (1920, 1080): 960, (1080, 1920): 960, (2560, 1440): 1280,
                     (3840, 2160): 1920, (2160, 3840): 1920, (7680, 4320): 3840}


@pytest.mark.parametrize("width, height, seen_at", [(3840, 2160, 1920), (7680, 1080, 3840)])
def test_a_large_video_is_seen_at_half_its_size_where_its_small_faces_are_found(shared_data: Path, tmp_path: Path,
                                                                                width: int, height: int,
                                                                                seen_at: int) -> None:
    """Shrunk to the default 960 px, a 3840x2160 frame's 28 px face is 7 px high, where CenterFace
    finds nothing sure; a frame over twice that size is seen at half its own, where the face
    scores high, and it is hidden. A strip of cameras 7680 px wide (or an 8K frame) was seen at a
    quarter (1,920 px at most): an attack review's crowds there leaked a tenth of their faces of
    20-40 px that the same faces 3840 px wide did not."""
    from veil.video import plan_video, render_video

    photo = read_photo(shared_data / MEETING.photo).pixels
    frame = np.ascontiguousarray(np.tile(photo, (3, 8, 1))[:height, :width])  # the face at its own size
    source, target = tmp_path / "large.mp4", tmp_path / "out.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "12", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(3):
            picture = av.VideoFrame.from_ndarray(frame, "rgb24")
            picture.pts = index
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    x, y, w, h = MEETING.box

    def best_score(media) -> float:
        return max((box.score or 0 for region in media.regions for index, box in region.boxes.items()
                    if index == 0 and box.x0 <= x + w / 2 <= box.x1 and box.y0 <= y + h / 2 <= box.y1), default=0)

    shrunk = plan_video(source, sampling=dataclasses.replace(VIDEO_DETECTION["fast"], max_side=960))
    assert shrunk.detection["passes"][0]["width"] == 960 and best_score(shrunk) < 0.5
    media = plan_video(source)
    assert media.detection["passes"][0]["width"] == seen_at and best_score(media) >= 0.5
    assert media.detection["sampling"]["max_side"] == VIDEO_DETECTION["fast"].max_side
    render_video(media, RenderSettings(mode="fill"), target)
    with av.open(str(target)) as c:
        shown = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert (inner_part(shown, MEETING.box) <= 24).all(axis=2).mean() >= 0.95


def test_a_picture_smeared_by_a_fast_pan_is_searched_squeezed_across(shared_data: Path):
    """A camera panning fast smears faces sideways, and CenterFace misses some of them: on such a
    frame a look squeezed to half its width finds them again. A sharp frame gets no such look."""
    name = "55--Sports_Coach_Trainer/55_Sports_Coach_Trainer_sportcoaching_55_774.jpg"
    lines = (shared_data / "wider_face_dev" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    at = lines.index(name)
    truth = [tuple(map(int, line.split()[:4])) for line in lines[at + 2:at + 2 + int(lines[at + 1])]]
    photo = Image.open(shared_data / WIDER / name).convert("RGB")
    # A 960x540 window over the photo's middle, as a pan across it would show it.
    width = photo.width * 0.6
    left, top = (photo.width - width) / 2, (photo.height - width * 540 / 960) / 2
    sharp = np.asarray(photo.resize((960, 540), Image.BILINEAR, box=(left, top, left + width, top + width * 540 / 960)))
    smeared = cv2.filter2D(sharp, -1, np.full((1, 15), 1 / 15, np.float32))  # 15 px of horizontal motion blur
    scale = 960 / width
    faces = [((x - left) * scale, (y - top) * scale, (x + w - left) * scale, (y + h - top) * scale) for x, y, w, h in truth]
    faces = [f for f in faces if f[3] - f[1] >= 20 and min(f[0], f[1]) >= 0 and f[2] <= 960 and f[3] <= 540]
    assert len(faces) >= 10
    sampling = VIDEO_DETECTION["fast"]

    def found(frame: np.ndarray, streak: float | None, fixed_shapes: bool = False) -> int:
        detector = CenterFace()
        detector.fixed_shapes = fixed_shapes  # CUDA's: the squeezed frame sits in a frame-size canvas
        boxes = detect_frames([frame], dataclasses.replace(sampling.frame, streak_threshold=streak), [False], 2, detector,
                              overview_threshold=sampling.overview_threshold)[0]
        return sum(any(x0 <= (b.x0 + b.x1) / 2 <= x1 and y0 - 0.3 * (y1 - y0) <= (b.y0 + b.y1) / 2 <= y1 for b in boxes)
                   for x0, y0, x1, y1 in faces)

    tilted = cv2.filter2D(sharp, -1, np.full((15, 1), 1 / 15, np.float32))  # a tilt: not looked for
    assert smeared_sideways(smeared) and not smeared_sideways(sharp) and not smeared_sideways(tilted)
    # An interlaced frame's fields differ wherever something moves: not a smear.
    woven = sharp.copy()
    woven[1::2] = np.roll(sharp, 12, axis=1)[1::2]
    assert not smeared_sideways(woven)
    streak = sampling.frame.streak_threshold
    assert streak is not None
    plain, squeezed = found(smeared, None), found(smeared, streak)
    assert squeezed > plain and squeezed >= 0.9 * len(faces), (plain, squeezed, len(faces))
    assert found(smeared, streak, fixed_shapes=True) == squeezed
    record = video_detection_record(sampling, 2, 2, (960, 540), TrackParams(), (None, None))
    assert record["streaks"] == {"sideways_change_ratio_below": 0.7, "width_squeezed_to": 0.5, "threshold": streak}

    # The same engine for a photo: a shaky shot is searched squeezed too, and its plan says so.
    def in_photo(picture: np.ndarray, profile) -> int:
        boxes = detect_faces(picture, profile)
        return sum(any(x0 <= (b.x0 + b.x1) / 2 <= x1 and y0 - 0.3 * (y1 - y0) <= (b.y0 + b.y1) / 2 <= y1 for b in boxes)
                   for x0, y0, x1, y1 in faces)

    assert in_photo(smeared, FAST) > in_photo(smeared, dataclasses.replace(FAST, streak_threshold=None))
    # A photo is also looked at for a smear up and down or along a diagonal (a video frame is not: see smear_axis).
    assert detection_record(FAST, 960, 540)["streaks"] == {
        **record["streaks"], "vertical_change_ratio_below": 0.7, "height_squeezed_to": 0.5,
        "diagonal_change_ratio_below": 0.85, "diagonal_fine_share_below": 0.9, "diagonal_coarse_step": 8,
        "diagonal_squeezed_to": 0.5}


def extreme_close_up(shared_data: Path, name: str = "biden2.jpg", share: float = 0.6, eyes_at: float = 0.42) -> np.ndarray:
    """A 960x540 frame `share` times as wide as a portrait's face, its middle `eyes_at` of the
    face's height down (at its eyes): brows, eyes and nose fill it; the rest of the head is out of frame."""
    folder = Path(name).stem.rstrip("0123456789")
    rgb = read_photo(shared_data / f"face_recognition_examples/examples/knn_examples/train/{folder}/{name}").pixels
    face = max(detect_faces(rgb), key=lambda d: d.x1 - d.x0)
    width = share * (face.x1 - face.x0)
    scale = 960 / width
    left, top = (face.x0 + face.x1) / 2 - width / 2, face.y0 + eyes_at * (face.y1 - face.y0) - 270 / scale
    shift = np.float32([[scale, 0, -left * scale], [0, scale, -top * scale]])
    return cv2.warpAffine(rgb[:, :, :3], shift, (960, 540), flags=cv2.INTER_CUBIC)


def test_a_face_larger_than_the_picture_is_found_in_a_pulled_back_view(shared_data: Path, tmp_path: Path) -> None:
    """An extreme close-up: no view that shows the picture edge to edge takes the eyes and brows that
    fill it for a face, at any scale; shrunk into the middle of a black square, they are one, and
    the whole picture is hidden, in a photo and in a video's frames."""
    from veil.video import plan_video, render_video

    frame = extreme_close_up(shared_data)
    edge_to_edge = faces_in(prepared(frame, dataclasses.replace(FAST, pulled_side=None)))
    assert not [d for d in edge_to_edge if (d.x1 - d.x0) * (d.y1 - d.y0) >= 0.25 * 960 * 540]
    assert FAST.pulled_side and detection_record(FAST, 960, 540)["pulled_side"] == FAST.pulled_side
    source, out = tmp_path / "close.png", tmp_path / "out.png"
    Image.fromarray(frame).save(source)
    render_photo(plan_photo(source, FAST), RenderSettings(mode="fill"), out)
    assert (read_photo(out).pixels[:, :, :3] <= 24).all(axis=2).mean() >= 0.95
    clip, target = tmp_path / "close.mp4", tmp_path / "out.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "12", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 960, 540, "yuv420p"
        for index in range(8):
            picture = av.VideoFrame.from_ndarray(np.roll(frame, index, axis=1), "rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    render_video(plan_video(clip), RenderSettings(mode="fill"), target)
    with av.open(str(target)) as container:
        for shown in container.decode(video=0):
            assert (shown.to_ndarray(format="rgb24") <= 24).all(axis=2).mean() >= 0.95


def test_a_face_larger_than_the_picture_that_the_pulled_back_view_scores_low_is_hidden(
        shared_data: Path, tmp_path: Path) -> None:
    """A close-up half as wide as the face, at its nose: the pulled-back view's box over it scored
    under the 0.9 a RetinaFace box needs on its own, and the whole face was left. A box covering a
    fifth of the picture or more is kept from a lower score (`large_share`), and the plan says so."""
    source, out = tmp_path / "close.png", tmp_path / "out.png"
    Image.fromarray(extreme_close_up(shared_data, "biden.jpg", share=0.5, eyes_at=0.55)).save(source)
    hidden = []
    for profile in (FAST, dataclasses.replace(FAST, large_share=None)):
        render_photo(plan_photo(source, profile), RenderSettings("fill", (255, 0, 255)), out, overwrite=True)
        hidden.append((read_photo(out).pixels[:, :, :3] == (255, 0, 255)).all(axis=2).mean())
    assert hidden[0] >= 0.95 and hidden[1] < 0.05, hidden
    assert detection_record(FAST, 960, 540)["large_share"] == FAST.large_share


def test_accurate_looks_closer_at_a_large_weak_box(shared_data: Path, tmp_path: Path) -> None:
    """A close-up of the hard-case bench (a dancer's WIDER face filling the picture, upscaled as a
    photo cropped from a larger one is) that the default hid and `--accurate` left whole: its
    views all scored the face low, and it had no closer look."""
    photo, crop, face = "4--Dancing/4_Dancing_Dancing_4_194.jpg", (766, 195, 856, 286), (789, 220, 829, 282)
    x0, y0, x1, y1 = crop
    k = 1024 / max(x1 - x0, y1 - y0)
    rgb = read_photo(shared_data / WIDER / photo).pixels[y0:y1, x0:x1, :3]
    source, out = tmp_path / "close.png", tmp_path / "out.png"
    Image.fromarray(cv2.resize(rgb, (round((x1 - x0) * k), round((y1 - y0) * k)), interpolation=cv2.INTER_CUBIC)).save(source)
    fx0, fy0, fx1, fy1 = (round((v - o) * k) for v, o in zip(face, (x0, y0, x0, y0)))
    hidden = {}
    for profile in (FAST, ACCURATE, dataclasses.replace(ACCURATE, zoom_floor=None, name="accurate, no closer look")):
        render_photo(plan_photo(source, profile), RenderSettings("fill", (255, 0, 255)), out, overwrite=True)
        hidden[profile.name] = (read_photo(out).pixels[fy0:fy1, fx0:fx1, :3] == (255, 0, 255)).all(axis=2).mean()
    assert hidden["fast"] >= 0.95 and hidden["accurate"] >= 0.95 and hidden["accurate, no closer look"] < 0.5, hidden
    assert VIDEO_DETECTION["accurate"].frame.zoom_floor is None  # measured on photos only


def test_a_large_box_of_a_turned_view_needs_the_usual_score(shared_data: Path) -> None:
    """The large-box rule holds for upright views only: turned a quarter, a fire-alarm sign's
    pointing hand, filling the photo, scored 0.61 as a face, and 59% of the photo was hidden."""
    rgb = read_photo(shared_data / "text/icdar2003/images/ryoungt_05.08.2002/aPICT0010.JPG").pixels
    assert not faces_in(prepared(rgb, FAST))


def faces_found(picture: np.ndarray, faces: list[tuple[int, int, int, int]], profile) -> int:
    """How many of `faces` (x0, y0, x1, y1) have a found box's centre on them (or on the head above)."""
    boxes = detect_faces(picture, profile)
    return sum(any(x0 <= (b.x0 + b.x1) / 2 <= x1 and y0 - 0.3 * (y1 - y0) <= (b.y0 + b.y1) / 2 <= y1 for b in boxes)
               for x0, y0, x1, y1 in faces)


def dev_faces(shared_data: Path, name: str, least: int = 20) -> list[tuple[int, int, int, int]]:
    """The ground truth's faces at least `least` px tall in one dev photo, as (x0, y0, x1, y1)."""
    lines = (shared_data / "wider_face_dev" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    at = lines.index(name)
    truth = [tuple(map(int, line.split()[:4])) for line in lines[at + 2:at + 2 + int(lines[at + 1])]]
    return [(x, y, x + w, y + h) for x, y, w, h in truth if h >= least]


@pytest.mark.parametrize("slant", ["falling", "rising"])
def test_a_photo_smeared_along_a_diagonal_is_searched_squeezed_along_it(shared_data: Path, tmp_path: Path,
                                                                          slant: str) -> None:
    """A camera swung or shaken at a slant smears faces along a diagonal, which changes a picture
    alike along x and y: no squeezed look ran, and the plain passes lost most faces (an attack
    review: 22 of 71 faces >= 80 px left visible). Such a photo is searched squeezed along that
    diagonal, and its plan says so; a photo merely turned (its lines slanting) is not taken for one."""
    name = "55--Sports_Coach_Trainer/55_Sports_Coach_Trainer_sportcoaching_55_774.jpg"
    faces = dev_faces(shared_data, name)
    sharp = read_photo(shared_data / WIDER / name).pixels[:, :, :3]
    line = np.eye(13, dtype=np.float32) / 13  # 13 px from top left to bottom right
    smeared = cv2.filter2D(sharp, -1, line if slant == "falling" else np.ascontiguousarray(line[:, ::-1]))
    assert smear_axis(smeared, diagonals=True) == slant and smear_axis(smeared) is None
    assert smear_axis(sharp, diagonals=True) is None
    unsqueezed_only = dataclasses.replace(FAST, streak_threshold=None)
    assert faces_found(smeared, faces, FAST) > faces_found(smeared, faces, unsqueezed_only)
    Image.fromarray(smeared).save(tmp_path / "swung.png")
    record = plan_photo(tmp_path / "swung.png").detection
    assert record["smeared_diagonally"] == slant and not record["smeared_sideways"] and not record["smeared_vertically"]
    assert record["streaks"]["diagonal_change_ratio_below"] == 0.85 and len(record["squeezed_to"]) == 2
    tilted = cv2.warpAffine(sharp, cv2.getRotationMatrix2D((sharp.shape[1] / 2, sharp.shape[0] / 2), 40, 1),
                            sharp.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    assert smear_axis(tilted, diagonals=True) is None


def test_a_long_photo_smeared_along_a_diagonal_is_squeezed_in_pieces(shared_data: Path) -> None:
    """Squeezed along a diagonal whole, a 20:1 panorama filled little of the upright rectangle that
    held it: several times its own pixels searched (52 s and 2.3 GB for a 20000x1000 photo). Long
    pictures are squeezed in overlapping pieces twice as long as wide, each face whole in one."""
    name = "55--Sports_Coach_Trainer/55_Sports_Coach_Trainer_sportcoaching_55_774.jpg"
    sharp = read_photo(shared_data / WIDER / name).pixels[:, :, :3]
    height, width = sharp.shape[:2]
    long = np.concatenate([np.full((height, width * 8, 3), 90, np.uint8), sharp], axis=1)  # about 19:1
    smeared = cv2.filter2D(long, -1, np.eye(13, dtype=np.float32) / 13)
    pieces = diagonal_pieces(smeared)
    assert len(pieces) > 1 and all(piece.shape[1] == 2 * height for _, piece in pieces)
    starts = [x for (x, _), _ in pieces]
    assert starts[0] == 0 and starts[-1] + 2 * height == long.shape[1]
    assert all(b - a <= height for a, b in zip(starts, starts[1:]))  # each overlaps the next by a face's height or more
    # What the pieces find lands where it was found, as on the photo alone.
    def on_faces(rows: np.ndarray, faces: list[tuple[float, float, float, float]]) -> int:
        return sum(any(x0 <= (r[0] + r[2]) / 2 <= x1 and y0 - 0.3 * (y1 - y0) <= (r[1] + r[3]) / 2 <= y1 for r in rows)
                   for x0, y0, x1, y1 in faces)

    faces = dev_faces(shared_data, name)
    alone = squeezed_candidates(smeared[:, 8 * width:], FAST, shared_detector(), "falling")
    within = squeezed_candidates(smeared, FAST, shared_detector(), "falling")
    moved = [(x0 + 8 * width, y0, x1 + 8 * width, y1) for x0, y0, x1, y1 in faces]
    assert on_faces(within, moved) >= on_faces(alone, faces) > 0
    assert len(diagonal_pieces(sharp)) == 1  # a photo of a usual shape: whole


def test_a_photo_smeared_up_and_down_is_searched_squeezed_along_its_height(shared_data: Path, tmp_path: Path) -> None:
    """A camera shaken or dropped smears faces up and down; the squeezed look, at first only
    across, left such a photo's faces to the plain passes, which lose many of them. A photo so
    smeared is also searched squeezed to half its height, and its plan says so (a video frame is
    not: line-doubled video is smeared so on every frame)."""
    name = "55--Sports_Coach_Trainer/55_Sports_Coach_Trainer_sportcoaching_55_774.jpg"
    faces = dev_faces(shared_data, name)
    sharp = read_photo(shared_data / WIDER / name).pixels[:, :, :3]
    smeared = cv2.filter2D(sharp, -1, np.full((15, 1), 1 / 15, np.float32))
    assert smear_axis(smeared) == "vertically" and smear_axis(sharp) is None and not smeared_sideways(smeared)
    unsqueezed_only = dataclasses.replace(FAST, streak_threshold=None)
    assert faces_found(smeared, faces, FAST) > faces_found(smeared, faces, unsqueezed_only)
    Image.fromarray(smeared).save(tmp_path / "shaken.png")
    record = plan_photo(tmp_path / "shaken.png").detection
    height, width = smeared.shape[:2]
    assert record["smeared_vertically"] is True and record["smeared_sideways"] is False
    assert record["squeezed_to"] == [width, round(height / 2)]
    assert record["streaks"]["vertical_change_ratio_below"] == 0.7 and record["streaks"]["height_squeezed_to"] == 0.5
