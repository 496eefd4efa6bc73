"""The camera's motion measured on real frames (veil.motion)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from veil import motion
from veil.motion import CameraPath


def _frames(photo: np.ndarray, corners: np.ndarray, size: tuple[int, int]) -> list[av.VideoFrame]:
    width, height = size
    return [av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y:y + height, x:x + width]), "rgb24")
            for x, y in corners.tolist()]


def test_a_shaken_cameras_drift_is_measured_to_a_pixel(shared_data: Path):
    """A 480x270 window jolted over a real photo by up to 12 px a frame: the picture moves the
    opposite way, each step measured within a pixel."""
    photo = np.asarray(Image.open(shared_data / "face_recognition_examples" / "examples" / "two_people.jpg")
                       .convert("RGB").resize((640, 376)))
    rng = np.random.default_rng(4)
    corners = np.clip(80 + np.cumsum(rng.integers(-12, 13, (30, 2)), axis=0), 0, (640 - 480, 376 - 270))
    camera = CameraPath(480, 270)
    for frame in _frames(photo, corners, (480, 270)):
        camera.add_frame(frame, 0)
    assert np.abs(np.array(camera.steps[1:]) + np.diff(corners, axis=0)).max() < 1.0


def test_no_motion_is_taken_into_a_blank_frame_out_of_it_or_across_a_cut(shared_data: Path):
    photo = np.asarray(Image.open(shared_data / "face_recognition_examples" / "examples" / "two_people.jpg")
                       .convert("RGB").resize((640, 376)))
    frames = _frames(photo, np.array([[0, 0], [10, 0], [20, 0], [30, 0], [40, 0]]), (480, 270))
    frames[2] = av.VideoFrame.from_ndarray(np.full((270, 480, 3), 90, np.uint8), "rgb24")
    camera = CameraPath(480, 270)
    for index, frame in enumerate(frames):
        camera.add_frame(frame, 0, cut=index == 4)
    assert abs(camera.steps[1][0] + 10) < 1
    assert camera.steps[0] == camera.steps[2] == camera.steps[3] == camera.steps[4] == (0.0, 0.0)


def test_a_rotated_frames_motion_is_measured_upright(shared_data: Path):
    """A phone's clip stored on its side: the picture moving right in the upright view moves
    down in the stored frames; the drift is the upright one, as the boxes are."""
    photo = np.asarray(Image.open(shared_data / "face_recognition_examples" / "examples" / "two_people.jpg")
                       .convert("RGB").resize((640, 376)))
    upright = [np.ascontiguousarray(photo[40:310, x:x + 270]) for x in (100, 92, 84)]
    camera = CameraPath(270, 270)
    for picture in upright:
        stored = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(picture, -1)), "rgb24")
        camera.add_frame(stored, 1)
    assert np.abs(camera.drift()[-1] - (16, 0)).max() < 1.5


def test_a_shift_is_taken_only_where_it_explains_the_change(shared_data: Path):
    """A correlation peak can come from anywhere (a flash, a crowd moving one way): the shift is
    taken only where moving the frame back by it brings the two closer, and never from or into a
    flat frame."""
    photo = np.asarray(Image.open(shared_data / "face_recognition_examples" / "examples" / "two_people.jpg")
                       .convert("L").resize((320, 188)), np.float32)
    before, after = photo[10:170, 10:300], photo[10:170, 16:306]  # the picture moved 6 px left
    assert motion._explains(before, after, -6.0, 0.0)
    assert motion._explains(before, after, -5.6, 0.3)
    assert not motion._explains(before, after, 6.0, 0.0)
    assert not motion._explains(before, after, -30.0, 12.0)
    flat = np.full_like(before, 90.0)
    assert not motion._explains(before, flat, 0.0, 0.0) and not motion._explains(flat, after, 0.0, 0.0)
