"""Animated GIFs as frame sequences: every frame's face hidden, timing kept, nothing else carried."""

from __future__ import annotations

import csv
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageSequence

from veil.animation import plan_animation, render_animation
from veil.outputs import media_kind
from veil.imagefile import ImageError
from veil.plan import Plan, RenderSettings
from veil.render import region_mask
from photo_support import P3_HEIC, TWO_PEOPLE, gray_profile, share_near
from protection_support import inner_part

CLIP = "videos/youtube_faces/Aaron_Guiel5"
FRAMES = 14
DURATIONS = [80, 120] * (FRAMES // 2)  # uneven, so a writer that evens them out is caught
WHITE = RenderSettings(color=(255, 255, 255))


@pytest.fixture(scope="module")
def walking_gif(shared_data, tmp_path_factory) -> tuple[Path, list[tuple[float, float, float, float]]]:
    """The first frames of a real clip as an animated GIF, with the named person's box per frame."""
    with av.open(str(shared_data / f"{CLIP}.mp4")) as container:
        frames = [Image.fromarray(f.to_ndarray(format="rgb24")) for _, f in zip(range(FRAMES), container.decode(video=0))]
    with open(shared_data / f"{CLIP}_gt.csv", newline="") as file:
        rows = {int(r["frame_index"]): r for r in csv.DictReader(file)}
    boxes = [tuple(float(rows[i][k]) for k in ("x_left", "y_top", "width", "height")) for i in range(FRAMES)]
    path = tmp_path_factory.mktemp("gif") / "walking.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=DURATIONS, loop=0, comment=b"camera 42")
    return path, boxes


def gif_frames(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    with Image.open(path) as image:
        info = dict(image.info)
        frames = [(np.asarray(f.convert("RGB")), f.info.get("duration")) for f in ImageSequence.Iterator(image)]
    return [f for f, _ in frames], [d for _, d in frames], info


def test_every_frame_of_an_animated_gif_is_redacted_with_its_timing_kept(walking_gif, tmp_path):
    source, truth = walking_gif
    assert media_kind(source) == "animation"
    media = plan_animation(source)
    assert media.kind == "animation" and media.frame_count == FRAMES and media.regions
    assert media.frame_times == pytest.approx(np.concatenate([[0], np.cumsum(DURATIONS[:-1])]) / 1000)
    out = tmp_path / "out.gif"
    render_animation(media, WHITE, out)
    frames, durations, info = gif_frames(out)
    assert len(frames) == FRAMES and durations == DURATIONS and info.get("loop") == 0
    assert not {"comment", "xmp", "exif", "icc_profile"} & set(info), f"metadata carried: {set(info)}"
    originals, _, _ = gif_frames(source)
    for index, (x, y, w, h) in enumerate(truth):
        assert share_near(inner_part(originals[index], (x, y, w, h)), (255, 255, 255), 24) < 0.2
        assert share_near(inner_part(frames[index], (x, y, w, h)), (255, 255, 255), 24) >= 0.95, f"face shown in frame {index}"


def test_an_animations_metadata_is_named_in_its_plan_never_valued(walking_gif):
    # The audit report names the metadata a file carried and its output left out: an animation's
    # comment (here "camera 42") was not named.
    detection = plan_animation(walking_gif[0]).detection
    assert detection["metadata_not_written"] == ["comment"]
    assert "camera 42" not in repr(detection)


def test_an_animations_render_names_its_metadata_as_the_file_holds_it(walking_gif, tmp_path):
    # A plan saved before veil named metadata rendered with none named; and a colour profile,
    # converted and dropped (its description can name the device), was not named at all.
    media = plan_animation(walking_gif[0])
    del media.detection["metadata_not_written"]
    render_animation(media, WHITE, tmp_path / "out.gif")
    assert media.detection["metadata_not_written"] == ["comment"]
    apng = tmp_path / "profiled.png"
    with Image.open(walking_gif[0]) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    frames[0].save(apng, save_all=True, append_images=frames[1:], duration=100, icc_profile=srgb)
    for target, keep_icc, named in (("a.png", False, True), ("b.png", True, False), ("c.gif", True, True)):
        media = plan_animation(apng)
        render_animation(media, WHITE, tmp_path / target, keep_icc=keep_icc)
        assert ("ICC colour profile (the pixels written as sRGB)" in media.detection.get("metadata_not_written", [])) \
            == named, target


def test_an_animation_plan_round_trips(walking_gif, tmp_path):
    source, _ = walking_gif
    plan = Plan(media=[plan_animation(source)], render=WHITE)
    plan.save(tmp_path / "plan.json")
    loaded = Plan.load(tmp_path / "plan.json")
    render_animation(plan.media[0], plan.render, tmp_path / "direct.gif")
    render_animation(loaded.media[0], loaded.render, tmp_path / "loaded.gif")
    direct, loaded_frames = gif_frames(tmp_path / "direct.gif")[0], gif_frames(tmp_path / "loaded.gif")[0]
    assert all(np.array_equal(a, b) for a, b in zip(direct, loaded_frames, strict=True))


def test_still_images_are_not_animations_and_a_wrong_suffix_is_refused(shared_data, walking_gif, tmp_path):
    assert media_kind(shared_data / TWO_PEOPLE) == "image"
    single = tmp_path / "single.gif"
    Image.open(shared_data / TWO_PEOPLE).save(single)
    assert media_kind(single) == "image"
    source, _ = walking_gif
    with pytest.raises(ImageError, match="cannot write an animation as .jpg"):
        render_animation(plan_animation(source), WHITE, tmp_path / "out.jpg")


def test_people_in_an_animation_are_tracked_as_person_regions_around_every_face(walking_gif):
    source, _ = walking_gif
    media = plan_animation(source, hide=("person",))
    assert media.regions and {r.kind for r in media.regions} == {"person"}
    assert media.detection["hide"] == ["person"] and "people" in media.detection
    # Every frame looked at turned too; bodies from faces come from the face tracks, below each head
    # (people walking upright: no turn stands them up better).
    people = media.detection["people"]
    assert people["turns"] == [0, 1, 2, 3] and people["standing_turn_rule"]["times_upright"] == 1.5
    assert people["standing_turns"] == []
    faces = plan_animation(source)
    for face in faces.regions:  # every face hidden by `faces` lies inside some person region
        for frame, box in face.boxes.items():
            x0, y0, x1 = max(box.x0, 0), max(box.y0, 0), min(box.x1, media.width)  # bodies end at the edges
            assert any(frame in r.boxes and r.boxes[frame].x0 <= x0 + 1 and r.boxes[frame].y0 <= y0 + 1
                       and r.boxes[frame].x1 >= x1 - 1 for r in media.regions), frame


def test_a_frame_reaching_past_the_screen_is_searched_whole_and_written_cut_to_it(shared_data, tmp_path):
    # Browsers cut such a frame to the screen; Pillow grows its canvas, and the animation was
    # refused ("plan is for a 300x300 animation").
    from veil.detect import detect_faces

    with Image.open(shared_data / TWO_PEOPLE) as image:
        photo = np.asarray(image.convert("RGB"))
    face = max(detect_faces(photo), key=lambda f: f.score)
    left, top = max(0, int(face.x0) - 40), max(0, int(face.y0) - 40)  # its top-left part inside a 100 px screen
    # The face's inner part (its box less a fifth each side), where it lies on the screen.
    x, y = int(face.x0 - left + 0.2 * (face.x1 - face.x0)), int(face.y0 - top + 0.2 * (face.y1 - face.y0))
    assert x < 90 and y < 90
    big = Image.fromarray(np.ascontiguousarray(photo[top:top + 300, left:left + 300]))
    path = tmp_path / "past.gif"
    path.write_bytes(_gif_with_second_frame(Image.new("RGB", (100, 100), "gray"), big))
    out = tmp_path / "past-out.gif"
    render_animation(plan_animation(path), RenderSettings(), out)
    frames, _, _ = gif_frames(out)
    assert {f.shape[:2] for f in frames} == {(100, 100)}  # (frames alike after redaction are merged)
    assert share_near(frames[-1][y:100, x:100], (0, 0, 0), 24) >= 0.95  # the face's part on the screen


def _gif_parts(image: Image.Image) -> tuple[bytes, bytes, bytes]:
    """A one-frame GIF of `image` as Pillow writes it, cut into its screen's header (with its
    colour table), its image (descriptor and data) and its colour table alone."""
    buffer = io.BytesIO()
    image.save(buffer, format="GIF")
    data = buffer.getvalue()
    packed = data[10]
    table = 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0
    at = 13 + table
    while data[at] == 0x21:  # extensions: label, then sub-blocks up to an empty one
        at += 2
        while data[at]:
            at += data[at] + 1
        at += 1
    return data[:13 + table], data[at:-1], data[13:13 + table]


def _gif_with_second_frame(first: Image.Image, second: Image.Image) -> bytes:
    """A GIF whose screen is `first`'s size and whose second frame is `second`, however large:
    its own colour table goes with it (Pillow's writer makes every frame the screen's size)."""
    header, image, _ = _gif_parts(first)
    _, other, table = _gif_parts(second)
    descriptor = bytearray(other[:10])
    descriptor[9] = 0x80 | descriptor[9] & 0x40 | (len(table).bit_length() - 3)  # a local table; interlaced as it was
    return header + image + bytes(descriptor) + table + other[10:] + b";"


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_a_transparent_animation_stays_transparent_with_every_face_hidden(walking_gif, tmp_path, suffix):
    # A sticker: the person on a transparent background. Its frames came out opaque (transparent
    # pixels in whatever colour they stored).
    source, truth = walking_gif
    originals, _, _ = gif_frames(source)
    stickers = []
    for rgb, (x, y, w, h) in zip(originals, truth):
        alpha = np.zeros(rgb.shape[:2], np.uint8)
        alpha[max(0, int(y - h)):int(y + 2 * h), max(0, int(x - w)):int(x + 2 * w)] = 255  # the person's surroundings
        stickers.append(Image.fromarray(np.dstack([rgb, alpha])))
    sticker = tmp_path / f"sticker{suffix}"
    extra = {"lossless": True} if suffix == ".webp" else {"disposal": 2} if suffix == ".gif" else {}
    stickers[0].save(sticker, save_all=True, append_images=stickers[1:], duration=DURATIONS, loop=0, **extra)
    media = plan_animation(sticker)
    assert media.detection["transparent_frames"] == FRAMES
    out = tmp_path / f"out{suffix}"
    render_animation(media, WHITE, out)
    with Image.open(out) as image:
        frames = [np.asarray(f.convert("RGBA")) for f in ImageSequence.Iterator(image)]
    assert len(frames) == FRAMES
    by_frame = media.boxes_by_frame()
    for index, (frame, sticker_frame, (x, y, w, h)) in enumerate(zip(frames, stickers, truth)):
        alpha = np.asarray(sticker_frame)[:, :, 3]
        face = inner_part(frame, (x, y, w, h))
        assert share_near(face[:, :, :3], (255, 255, 255), 24) >= 0.95 and face[:, :, 3].min() == 255
        hidden = np.zeros(alpha.shape, bool)
        for region, box in by_frame.get(index, []):
            if (mask := region_mask(region.shape, box, *alpha.shape)) is not None:
                hidden[mask[0], mask[1]] |= mask[2]
        assert (frame[:, :, 3][(alpha == 0) & ~hidden] == 0).all(), "the transparent background came out opaque"
        assert (frame[:, :, 3][hidden] == 255).all(), "a hidden region is not opaque"
        assert (frame[:, :, 3][alpha == 255] == 255).all(), "an opaque part came out transparent"


@pytest.mark.parametrize("name, written_as", [("walking.apng", ("walking.redacted.apng", "PNG")),
                                               ("walking.bin", ("walking.bin.redacted.png", "PNG"))])
def test_an_animated_png_stays_a_png_with_its_fractional_delays(walking_gif, tmp_path, name, written_as):
    """An APNG named .apng (or with a suffix veil cannot write) was written as GIF, down to 256
    colours; and its 1/30 s delays were cut to 33 ms, so it ran 1% fast."""
    with Image.open(walking_gif[0]) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    source = tmp_path / name
    frames[0].save(source, format="PNG", save_all=True, append_images=frames[1:], duration=1000 / 30, loop=0)
    run = subprocess.run([sys.executable, "-m", "veil", str(source), "-q"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    output = tmp_path / written_as[0]
    with Image.open(output) as image:
        assert image.format == written_as[1] and image.n_frames == FRAMES
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(image)]
    assert sum(durations) == pytest.approx(FRAMES * 1000 / 30, abs=1e-6)


def test_an_animations_colour_profile_is_converted_or_kept_like_a_photos(shared_data, walking_gif, tmp_path):
    """An APNG with a Display P3 profile was written with its P3 values and no profile: its colours
    shifted in every viewer, and --keep-icc was ignored."""
    with Image.open(shared_data / P3_HEIC) as heic:
        icc = heic.info["icc_profile"]
    with Image.open(walking_gif[0]) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    source = tmp_path / "wide.png"
    frames[0].save(source, format="PNG", save_all=True, append_images=frames[1:], duration=100, icc_profile=icc)
    stored = np.asarray(frames[-1])
    converted = np.asarray(ImageCms.profileToProfile(frames[-1], ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                     ImageCms.createProfile("sRGB"), outputMode="RGB"))
    assert np.mean(np.any(stored != converted, axis=-1)) > 0.1
    for args, profile, values in (([], None, converted), (["--keep-icc"], icc, stored)):
        out = tmp_path / f"out{len(args)}.png"
        run = subprocess.run([sys.executable, "-m", "veil", str(source), "-o", str(out), "-q", *args],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0 and run.stderr == "", run.stderr
        with Image.open(out) as image:
            assert image.info.get("icc_profile") == profile
            image.seek(image.n_frames - 1)
            written = np.asarray(image.convert("RGB"))
        assert np.mean(np.all(np.abs(written.astype(int) - values) <= 1, axis=-1)) > 0.9  # all but the hidden face
    run = subprocess.run([sys.executable, "-m", "veil", str(source), "-o", str(tmp_path / "out.gif"), "-q",
                          "--keep-icc"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "--keep-icc: a .gif file holds no colour profile" in run.stderr, run.stderr
    # A grey profile fits no RGB frame: not written into one (libpng refused the file).
    frames[0].save(source, format="PNG", save_all=True, append_images=frames[1:], duration=100, icc_profile=gray_profile(2.2))
    run = subprocess.run([sys.executable, "-m", "veil", str(source), "-o", str(tmp_path / "grey.png"), "-q",
                          "--keep-icc"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    with Image.open(tmp_path / "grey.png") as image:
        assert "icc_profile" not in image.info and image.n_frames == FRAMES


def test_an_apng_is_read_in_the_primaries_its_chrm_chunk_names(walking_gif, tmp_path):
    """An APNG stored with red and blue swapped and a cHRM chunk that swaps them back, as a PNG
    photo's (test_imagefile): its frames were searched and written as stored."""
    with Image.open(walking_gif[0]) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    stored = io.BytesIO()
    swapped = [Image.fromarray(np.ascontiguousarray(np.asarray(frame)[:, :, ::-1])) for frame in frames]
    swapped[0].save(stored, format="PNG", save_all=True, append_images=swapped[1:], duration=100)
    chunk = b"cHRM" + struct.pack(">8I", 31270, 32900, 15000, 6000, 30000, 60000, 64000, 33000)  # red and blue swapped
    data = stored.getvalue()
    source = tmp_path / "swapped.png"
    source.write_bytes(data[:33] + struct.pack(">I", 32) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:])
    out = tmp_path / "out.png"
    run = subprocess.run([sys.executable, "-m", "veil", str(source), "-o", str(out), "-q"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    with Image.open(out) as image:
        assert "chromaticity" not in image.info
        image.seek(image.n_frames - 1)
        written = np.asarray(image.convert("RGB"))
    assert np.mean(np.all(np.abs(written.astype(int) - np.asarray(frames[-1])) <= 2, axis=-1)) > 0.9  # but the face


def test_an_apngs_fallback_image_stays_outside_its_animation(shared_data, tmp_path):
    """An APNG's first image may be only the picture shown where animation is not supported: it
    was written as the animation's first frame, of 0 ms, flashing in every viewer."""
    portrait = Image.open(shared_data / TWO_PEOPLE).convert("RGB")
    frames = [portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT), portrait]
    source = tmp_path / "fallback.png"
    portrait.save(source, save_all=True, append_images=frames, default_image=True, duration=[100, 250], loop=0)
    with Image.open(source) as image:
        assert image.info.get("default_image") and image.n_frames == 3
    plan = tmp_path / "plan.json"
    for output, fmt in ((tmp_path / "out.png", "PNG"), (tmp_path / "out.gif", "GIF")):
        run = subprocess.run([sys.executable, "-m", "veil", str(source), "-o", str(output), "-q", "--save-plan",
                              str(plan), "--overwrite"], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        with Image.open(output) as image:
            written = [(np.asarray(f.convert("RGB")), f.info.get("duration")) for f in ImageSequence.Iterator(image)]
            fallback = bool(image.info.get("default_image"))
        assert fallback == (fmt == "PNG")
        animated = written[1:] if fallback else written
        assert [duration for _, duration in animated] == [100, 250], "the animation's timing changed"
        boxes = Plan.load(plan).media[0].boxes_by_frame()
        assert all(len(boxes.get(index, [])) == 2 for index in range(3)), "two faces in every image, the fallback's too"
        for index, (pixels, _) in enumerate(written):
            planned = index + (0 if fallback else 1)  # the plan's frames count the fallback image
            shown = np.asarray([portrait, *frames][planned])
            for _, box in boxes[planned]:
                x0, y0 = max(0.0, box.x0), max(0.0, box.y0)  # a head box may reach past the picture's edge
                face = (x0, y0, min(box.x1, shown.shape[1]) - x0, min(box.y1, shown.shape[0]) - y0)
                changed = np.any(inner_part(pixels, face) != inner_part(shown, face), axis=-1)
                assert changed.mean() > 0.9, f"frame {index}: a face left as it was"
