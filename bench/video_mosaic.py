"""High-resolution clips with exact face boxes: grids of 960x540 pan clips, frame by frame.

The dev clips are 960x540; phones film at 1920x1080 and 3840x2160. Upscaling a clip makes its
faces larger but not sharper, so it cannot show what a detector loses by seeing a large frame
shrunk. A grid of clips can: every face keeps its own pixels, and the frame is 2 or 4 times as
wide. 2x2 clips make a 1920x1080 clip, 4x4 a 3840x2160 one; each face box is moved into its
cell and cut at the cell's edges (the neighbouring cell shows another scene there).

    python bench/video_mosaic.py /tmp/pan30 /tmp/mosaic --grid 2 --count 4
    python bench/video_mosaic.py /tmp/pan30 /tmp/mosaic --grid 4 --count 1
    python bench/video_leaks.py --tools veil --sets "" --more /tmp/mosaic

Never committed: the clips are made from ../shared/data (through make_pan_videos.py clips).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import av
import numpy as np

CELL_W, CELL_H = 960, 540


def grid_clip(sources: list[Path], grid: int, output: Path) -> int:
    """Write the clips `sources` (grid x grid, row by row) as one clip; return its face instances."""
    inputs = [av.open(str(source)) for source in sources]
    written = 0
    try:
        frames = [container.decode(video=0) for container in inputs]
        with av.open(str(output), "w") as target:
            stream = target.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = CELL_W * grid, CELL_H * grid, "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
            for written, cells in enumerate(zip(*frames), 1):
                pictures = [cell.to_ndarray(format="rgb24") for cell in cells]
                mosaic = np.vstack([np.hstack(pictures[r * grid:(r + 1) * grid]) for r in range(grid)])
                for packet in stream.encode(av.VideoFrame.from_ndarray(mosaic, format="rgb24")):
                    target.mux(packet)
            for packet in stream.encode():
                target.mux(packet)
    finally:
        for container in inputs:
            container.close()
    rows = []
    for n, source in enumerate(sources):
        dx, dy = (n % grid) * CELL_W, (n // grid) * CELL_H
        with open(source.with_name(f"{source.stem}_gt.csv")) as f:
            for row in csv.DictReader(f):
                x, y = float(row["x_left"]), float(row["y_top"])
                x0, y0 = max(x, 0.0), max(y, 0.0)
                x1, y1 = min(x + float(row["width"]), CELL_W), min(y + float(row["height"]), CELL_H)
                if x1 > x0 and y1 > y0 and int(row["frame_index"]) < written:  # the grid ends with its shortest clip
                    rows.append([row["frame_index"], round(x0 + dx, 1), round(y0 + dy, 1), round(x1 - x0, 1), round(y1 - y0, 1)])
    with open(output.with_name(f"{output.stem}_gt.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame_index", "x_left", "y_top", "width", "height"])
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", type=Path, help="a folder of 960x540 clips with <clip>_gt.csv (make_pan_videos.py)")
    parser.add_argument("output", type=Path)
    parser.add_argument("--grid", type=int, default=2, help="clips per row and column: 2 for 1920x1080, 4 for 3840x2160")
    parser.add_argument("--count", type=int, default=1, help="grid clips to make, from the clips in name order")
    args = parser.parse_args()
    sources = sorted(p for p in args.clips.glob("*.mp4") if p.with_name(f"{p.stem}_gt.csv").exists())
    per = args.grid * args.grid
    if len(sources) < per * args.count:
        parser.error(f"{args.clips} has {len(sources)} clips with boxes; {per * args.count} are needed")
    args.output.mkdir(parents=True, exist_ok=True)
    for n in range(args.count):
        name = f"grid{args.grid}_{n}"
        instances = grid_clip(sources[n * per:(n + 1) * per], args.grid, args.output / f"{name}.mp4")
        print(name, f"{CELL_W * args.grid}x{CELL_H * args.grid}", instances, "face instances")


if __name__ == "__main__":
    main()
