"""How strongly a face is hidden: fill, pixelate and blur on real photos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from veil.regions import head_box
from veil.imagefile import read_photo
from veil.photo import plan_photo
from veil.plan import Box, Region, RenderSettings
from veil.render import SHADING_SPREAD, pixelate_block_size, redact_frame, region_mask
from photo_support import GROUP, KIT_WITH_ROSE, OBAMA, TWO_PEOPLE, copy_in, face_slice, rgb_of, share_near, veil


@pytest.fixture(scope="module")
def obama(shared_data) -> np.ndarray:
    return read_photo(shared_data / OBAMA).pixels  # 1480x832, one large face


@pytest.fixture(scope="module")
def crowd(shared_data):
    """A real photo with several faces of different sizes, and its detected plan."""
    path = shared_data / KIT_WITH_ROSE
    return read_photo(path).pixels, plan_photo(path)


def render(pixels, boxes, secret: bytes | None = None, **settings) -> np.ndarray:
    """`boxes`: (shape, box) pairs, each hidden as a region of its own."""
    regions = [(Region(id=f"r{i}", source="detector", shape=shape, boxes={0: box}), box) for i, (shape, box) in enumerate(boxes)]
    return redact_frame(pixels.copy(), regions, RenderSettings(**settings), secret=secret)


def pixel_window(box: Box, shape) -> tuple[slice, slice]:
    """The pixels a box touches (its bounding rectangle, clipped to the image)."""
    height, width = shape[:2]
    return (
        slice(max(0, int(np.floor(box.y0))), min(height, int(np.ceil(box.y1)))),
        slice(max(0, int(np.floor(box.x0))), min(width, int(np.ceil(box.x1)))),
    )


def ellipse_centres(box: Box, shape) -> np.ndarray:
    """True for every pixel whose centre lies inside the ellipse inscribed in `box`."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return ((xs + 0.5 - cx) / (box.width / 2)) ** 2 + ((ys + 0.5 - cy) / (box.height / 2)) ** 2 <= 1


def runs(changes: np.ndarray) -> list[tuple[int, int]]:
    """Start and end of each run between the positions where `changes` is true."""
    edges = [0, *(np.flatnonzero(changes) + 1).tolist(), len(changes) + 1]
    return list(zip(edges[:-1], edges[1:]))


# --- pixelate ---------------------------------------------------------------------------------

BOXES = {
    "40 px at sub-pixel position": Box(300.5, 120.5, 340.5, 160.5),
    "40 px, exact pixels": Box(600, 300, 640, 340),
    "400 px": Box(520.3, 40.7, 920.3, 440.7),
    "900 px tall": Box(450.2, 0.4, 1100.6, 830.9),
    "half outside the photo": Box(-80.6, -60.2, 120.2, 140.9),
}


@pytest.mark.parametrize("name", BOXES)
@pytest.mark.parametrize("blocks", [8, 3])
def test_pixelate_leaves_at_most_n_blocks_each_the_mean_of_its_pixels(obama, name, blocks):
    box = BOXES[name]
    out = render(obama, [("box", box)], mode="pixelate", blocks=blocks)
    rows, cols = pixel_window(box, obama.shape)
    patch, original = out[rows, cols].astype(np.float64), obama[rows, cols].astype(np.float64)
    row_runs = runs(np.any(patch[1:] != patch[:-1], axis=(1, 2)))
    col_runs = runs(np.any(patch[:, 1:] != patch[:, :-1], axis=(0, 2)))
    assert len(col_runs) <= blocks and len(row_runs) <= blocks, (
        f"{len(col_runs)} x {len(row_runs)} blocks across a face: more detail than {blocks} blocks"
    )
    # A tile the frame's edge cuts shows the mean of its neighbour (the next test), so a block
    # there is the mean of its pixels past the cut.
    side = pixelate_block_size(box, blocks)
    cut_rows, cut_cols = int(np.floor(box.y0)) % side * (box.y0 < 0), int(np.floor(box.x0)) % side * (box.x0 < 0)
    for top, bottom in row_runs:
        for left, right in col_runs:
            block = patch[top:bottom, left:right]
            assert (block == block[0, 0]).all(), "a block is not uniform"
            own = original[max(top, cut_rows * (top == 0)):bottom, max(left, cut_cols * (left == 0)):right]
            assert np.abs(block[0, 0] - own.mean(axis=(0, 1))).max() <= 0.5, (
                "a block is not the mean of its own pixels (point-sampled?)"
            )
    outside = np.ones(obama.shape[:2], bool)
    outside[rows, cols] = False
    assert np.array_equal(out[outside], obama[outside])


def standing_alone(regions: list) -> list:
    """Regions whose box overlaps no other region's (a neighbour's edge is not the face's detail)."""

    def overlaps(a, b) -> bool:
        return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1

    alone = [r for r in regions if not any(overlaps(r.boxes[0], o.boxes[0]) for o in regions if o is not r)]
    assert alone, "the test photo needs faces that stand alone"
    return alone


def test_pixelate_coarseness_follows_each_detected_face(crowd):
    pixels, media = crowd
    assert len(media.regions) >= 2
    out = render(pixels, [("ellipse", r.boxes[0]) for r in media.regions], mode="pixelate", blocks=8)
    # Where two heads overlap, the later region's grid is laid over the earlier one's: judge
    # each face's coarseness where it stands alone.
    for region in standing_alone(media.regions):
        box = region.boxes[0]
        rows, cols = pixel_window(box, pixels.shape)
        inside = ellipse_centres(box, pixels.shape)[rows, cols]
        patch = out[rows, cols]
        # Along any line through the face at most 8 different values, however large the face.
        for line in (patch[patch.shape[0] // 2][inside[patch.shape[0] // 2]], patch[:, patch.shape[1] // 2][inside[:, patch.shape[1] // 2]]):
            changes = np.any(line[1:] != line[:-1], axis=-1)
            assert 1 + np.count_nonzero(changes) <= 8


def test_pixelate_keeps_16_bit_and_grayscale(obama):
    box = BOXES["400 px"]
    rows, cols = pixel_window(box, obama.shape)
    for pixels in (obama.astype(np.uint16) * 257 + 3, obama[:, :, 1]):
        out = render(pixels, [("box", box)], mode="pixelate")
        assert out.dtype == pixels.dtype and out.shape == pixels.shape
        assert len(np.unique(out[rows, cols].reshape(-1, 1 if out.ndim == 2 else 3), axis=0)) <= 64


# --- fill ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("colour", [(0, 0, 0), (10, 200, 30)])
def test_fill_covers_every_pixel_of_each_head_ellipse(crowd, colour):
    pixels, media = crowd
    boxes = [r.boxes[0] for r in media.regions]
    out = render(pixels, [("ellipse", b) for b in boxes], mode="fill", color=colour)
    covered = np.zeros(pixels.shape[:2], bool)
    for box in boxes:
        inside = ellipse_centres(box, pixels.shape)
        assert inside.any()
        assert (out[inside] == colour).all(), f"{np.count_nonzero((out[inside] != colour).any(-1))} pixels of a head left"
        rows, cols = pixel_window(box, pixels.shape)
        covered[rows, cols] = True
    assert np.array_equal(out[~covered], pixels[~covered]), "pixels away from any face changed"


def test_fill_of_a_dense_crowd_hides_exactly_each_regions_own_mask(obama):
    """Fill draws all regions at once, as runs of pixels per row; the union must be each
    region's own mask, pixel for pixel: fractional, tiny, huge, overlapping and cut by the
    frame's edges or by the bands fill works in."""
    rng = np.random.default_rng(7)
    height, width = obama.shape[:2]
    boxes = []
    for _ in range(600):
        x, y = rng.uniform(-60, width), rng.uniform(-60, height)
        w = rng.choice([rng.uniform(0.2, 2), rng.uniform(4, 80), rng.uniform(200, 900)], p=[0.1, 0.8, 0.1])
        boxes.append(("box" if rng.random() < 0.2 else "ellipse", Box(x, y, x + w, y + w * rng.uniform(0.8, 1.5))))
    out = render(obama, boxes, color=(255, 0, 255))
    expected = np.zeros((height, width), bool)
    for i, (shape, box) in enumerate(boxes):
        found = region_mask(shape, box, height, width)
        if found is not None:
            rows, cols, mask = found
            expected[rows, cols] |= mask
        if shape == "ellipse" and i % 20 == 0:  # the inscribed ellipse, by the test's own rule (slow)
            assert expected[ellipse_centres(box, obama.shape)].all()
    assert (out[expected] == (255, 0, 255)).all(), "a pixel of a region left"
    assert np.array_equal(out[~expected], obama[~expected]), "a pixel outside every region changed"
    # Whole and half pixels put pixel centres exactly on the curve. Apart, where no other
    # region can cover a pixel one misses: a grid of cells, one box in each.
    cell = 86
    for _ in range(6):
        apart = []
        for top in range(0, height - cell, cell):
            for left in range(0, width - cell, cell):
                w, h = int(rng.integers(1, 81)), int(rng.integers(1, 81))
                x, y = left + int(rng.integers(0, 82 - w)), top + int(rng.integers(0, 82 - h)) + rng.choice([0, 0.5])
                apart.append(("ellipse", Box(float(x), float(y), float(x + w), float(y + h))))
        out = render(obama, apart, color=(255, 0, 255))
        expected = np.zeros((height, width), bool)
        for shape, box in apart:
            rows, cols, mask = region_mask(shape, box, height, width)
            expected[rows, cols] = mask
        assert (out[expected] == (255, 0, 255)).all()
        assert np.array_equal(out[~expected], obama[~expected])


def test_fill_box_covers_the_whole_rectangle_and_ellipse_spares_the_corners(obama):
    box = BOXES["400 px"]
    rows, cols = pixel_window(box, obama.shape)
    filled_box = render(obama, [("box", box)], color=(255, 255, 255))
    assert (filled_box[rows, cols] == 255).all()
    filled_ellipse = render(obama, [("ellipse", box)], color=(255, 255, 255))
    patch, original = filled_ellipse[rows, cols], obama[rows, cols]
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert np.array_equal(patch[corner], original[corner])
    inside = ellipse_centres(box, obama.shape)[rows, cols]
    middle_row, middle_col = patch.shape[0] // 2, patch.shape[1] // 2
    assert inside[middle_row].sum() >= 399 and inside[:, middle_col].sum() >= 399
    assert (patch[middle_row][inside[middle_row]] == 255).all() and (patch[:, middle_col][inside[:, middle_col]] == 255).all()


def test_fill_on_grayscale_rgba_and_16_bit(obama):
    box = BOXES["40 px, exact pixels"]
    rows, cols = pixel_window(box, obama.shape)
    gray = render(obama[:, :, 0], [("box", box)], color=(255, 255, 255))
    assert (gray[rows, cols] == 255).all()
    rgba = np.dstack([obama, np.full(obama.shape[:2], 77, np.uint8)])
    out = render(rgba, [("box", box)], color=(255, 0, 0))
    assert (out[rows, cols, :3] == (255, 0, 0)).all()
    outside = np.ones(obama.shape[:2], bool)
    outside[rows, cols] = False
    # Opaque where hidden (else the silhouette survives in the alpha), untouched elsewhere.
    assert (out[rows, cols, 3] == 255).all() and (out[:, :, 3][outside] == 77).all()
    deep = render(obama.astype(np.uint16) * 257, [("box", box)], color=(255, 128, 0))
    assert (deep[rows, cols] == (65535, 128 * 257, 0)).all()


def test_unanalysed_photo_is_covered_completely(obama):
    out = redact_frame(obama.copy(), [], RenderSettings(), cover_all=True)
    assert (out == 0).all()


# --- blur ------------------------------------------------------------------------------------------


def test_blur_removes_the_detail_of_each_face(crowd):
    pixels, media = crowd
    boxes = [r.boxes[0] for r in media.regions]
    out = render(pixels, [("box", b) for b in boxes], mode="blur")
    for region in standing_alone(media.regions):
        face = region.boxes[0]
        rows, cols = pixel_window(face, pixels.shape)
        before = cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(pixels[rows, cols]), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
        after = cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(out[rows, cols]), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
        assert after < 0.05 * before, f"blur kept {after / before:.0%} of the face's fine detail"
        assert np.abs(out[rows, cols].astype(int) - pixels[rows, cols]).mean() > 5


@pytest.mark.parametrize("mode", ["fill", "blur"])
def test_a_region_inside_another_leaves_no_second_pattern(obama, mode):
    """A detector may also report part of a face it found whole: the head is hidden once, with
    no smaller blob of another shading drawn inside it."""
    head = BOXES["400 px"]
    part = Box(head.x0 + 120, head.y0 + 150, head.x1 - 120, head.y1 - 100)
    secret = b"one export's key"
    both = render(obama, [("ellipse", part), ("ellipse", head)], secret=secret, mode=mode)
    off_picture = Box(-50, -50, -10, -10)  # keeps the head the second region, as above (same shading)
    head_only = render(obama, [("ellipse", off_picture), ("ellipse", head)], secret=secret, mode=mode)
    assert np.array_equal(both, head_only)
    assert not np.array_equal(head_only, obama)


def test_each_blur_export_shades_a_face_differently(obama):
    """Two blurred copies of one face must not match each other: each export draws its own shading."""
    box = BOXES["400 px"]
    first, second = (render(obama, [("box", box)], mode="blur") for _ in range(2))
    rows, cols = pixel_window(box, obama.shape)
    difference = first[rows, cols].astype(int) - second[rows, cols]
    assert np.abs(difference).mean() > SHADING_SPREAD / 4
    # Brightness only, the same for the three channels, so the blob keeps its hue (where
    # no channel is clipped at black or white).
    unclipped = np.all((first[rows, cols] % 255 != 0) & (second[rows, cols] % 255 != 0), axis=2)
    assert unclipped.mean() > 0.5
    assert np.abs(difference - difference.mean(axis=2, keepdims=True))[unclipped].max() <= 1
    outside = np.ones(obama.shape[:2], bool)
    outside[rows, cols] = False
    assert (first[outside] == obama[outside]).all() and (second[outside] == obama[outside]).all()


def test_blur_shading_follows_a_face_through_the_frames_of_one_export(obama):
    """Within one export a region keeps its shading as it moves: no flicker for a viewer, and
    nothing an attacker could average away over frames."""
    secret = b"one export's key"
    box = BOXES["400 px"]
    moved = Box(box.x0 + 40, box.y0 + 24, box.x1 + 40, box.y1 + 24)
    shifted = np.roll(obama, (24, 40), axis=(0, 1))  # the same picture, moved with the face (no wrap reaches it)
    still = render(obama, [("box", box)], secret=secret, mode="blur")
    later = render(shifted, [("box", moved)], secret=secret, mode="blur")
    rows, cols = pixel_window(box, obama.shape)
    moved_rows, moved_cols = pixel_window(moved, obama.shape)
    assert np.array_equal(later[moved_rows, moved_cols], still[rows, cols])
    other_export = render(obama, [("box", box)], secret=b"another export", mode="blur")
    assert np.abs(other_export[rows, cols].astype(int) - still[rows, cols]).mean() > SHADING_SPREAD / 4


# --- end to end ----------------------------------------------------------------------------------


def test_every_face_found_in_a_group_photo_is_covered(shared_data, tmp_path):
    """A WIDER FACE group photo through the command: each detected face box is at least 95% fill."""
    source = copy_in(shared_data, GROUP, tmp_path)
    out = tmp_path / "out.png"
    result = veil(source, "-o", out, "--color", "#ff00ff", "--save-plan", tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    from veil import detect

    faces = detect(read_photo(source).pixels)
    regions = json.loads((tmp_path / "plan.json").read_text())["media"][0]["regions"]
    assert len(faces) == len(regions) >= 15
    planned = sorted(tuple(round(v, 1) for v in r["boxes"][0][1:5]) for r in regions)
    assert planned == sorted(tuple(round(v, 1) for v in head_box(f)) for f in faces)
    pixels = rgb_of(out)
    for face in faces:
        share = share_near(pixels[face_slice(face)], (255, 0, 255), 0)
        assert share >= 0.95, f"face at {face.x0:.0f},{face.y0:.0f} only {share:.0%} covered"


@pytest.mark.parametrize("mode", ["fill", "pixelate", "blur"])
def test_every_mode_changes_the_faces_of_a_real_photo(shared_data, tmp_path, mode):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    out = tmp_path / f"{mode}.png"
    assert veil(source, "--mode", mode, "-o", out, "--shape", "box").exit_code == 0
    from veil import detect

    original, pixels = rgb_of(source), rgb_of(out)
    for face in detect(read_photo(source).pixels):
        region = face_slice(face)
        assert np.abs(pixels[region].astype(int) - original[region]).mean() > 10


@pytest.mark.parametrize("cut_by", ["top", "left"])
def test_a_pixelated_box_cut_by_the_frame_keeps_its_grid_on_the_box(cut_by: str):
    # A head near the frame's top or left edge: its box's blocks were laid from the frame's edge,
    # so the grid stood still while the face moved under it, and frames combined gave back detail
    # finer than a block (bench/reid_video.py's attack). The grid moves with the box, as inside.
    size = 240
    ramp = np.arange(size, dtype=np.uint8)[:, None].repeat(size, axis=1)
    picture = np.dstack([ramp if cut_by == "top" else ramp.T] * 3)
    region = Region(id="r", source="detector", kind="face", shape="box")
    settings = RenderSettings(mode="pixelate", blocks=6)
    for start in (-40.0, -37.0, -31.0, 40.0, 43.0):
        box = Box(60.0, start, 180.0, start + 120.0) if cut_by == "top" else Box(start, 60.0, start + 120.0, 180.0)
        out = redact_frame(picture.copy(), [(region, box)], settings)[:, :, 0].astype(int)
        line = out[:, 120] if cut_by == "top" else out[120, :]
        edges = [k for k in range(max(1, int(start) + 1), int(start) + 120) if line[k] != line[k - 1]]
        assert [round(k - start) % 20 for k in edges] == [0] * len(edges), (start, edges)


@pytest.mark.parametrize("edge", ["top", "left", "bottom", "right"])
def test_a_mosaic_tile_cut_by_the_frame_shows_nothing_of_its_own_pixels(edge: str):
    # A face leaving the frame: the tile the frame's edge cuts was the mean of the columns still
    # in the frame, one fewer each frame, so two frames differenced gave back one column of the
    # face. The cut tile shows its neighbour's mean, and nothing of the pixels under it.
    size, length = 240, 120
    picture = np.random.default_rng(7).integers(0, 256, (size, size, 3), dtype=np.uint8)
    region = Region(id="r", source="detector", kind="face", shape="box")
    settings = RenderSettings(mode="pixelate", blocks=6)
    for overhang in (7.0, 11.0, 19.0, 38.0):  # the grid's 20 px blocks cut at 13, 9, 1 and 2 px
        start = -overhang if edge in ("top", "left") else size + overhang - length
        box = Box(60.0, start, 180.0, start + length) if edge in ("top", "bottom") else Box(start, 60.0, start + length, 180.0)
        block = pixelate_block_size(box, settings.blocks)
        cut = np.floor(start) % block if edge in ("top", "left") else (size - np.floor(start)) % block
        assert 0 < cut < block
        hidden_under = slice(0, int(cut)) if edge in ("top", "left") else slice(size - int(cut), size)
        changed = picture.copy()
        along = changed[hidden_under] if edge in ("top", "bottom") else changed[:, hidden_under]
        along[...] = 255 - along
        before = redact_frame(picture.copy(), [(region, box)], settings)
        after = redact_frame(changed.copy(), [(region, box)], settings)
        inside = (slice(int(max(0, start)), int(min(size, start + length))), slice(60, 180))
        if edge in ("left", "right"):
            inside = inside[::-1]
        assert np.array_equal(before[inside], after[inside]), (edge, overhang)
