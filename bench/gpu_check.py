"""veil's CUDA path (onnxruntime-gpu) beside its CPU path: same detections, time per image and frame.

Needs an NVIDIA GPU and onnxruntime-gpu with CUDA and cuDNN in veil's venv, in place of onnxruntime
(`pip uninstall onnxruntime; pip install 'onnxruntime-gpu[cuda,cudnn]'`). Reads a CC BY 4.0 Intel clip
from ../shared/data unless given another video. Prints figures, asserts nothing.

    python bench/gpu_check.py [VIDEO]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import veil  # noqa: F401 -- before onnxruntime: veil switches its telemetry off before it loads
import av
import cv2
import numpy as np
import onnxruntime as ort

from veil.detect import ACCURATE, FAST, CenterFace, Detection, detect_faces
from veil.plan import RenderSettings
from veil.video import plan_video, render_video

DEFAULT = (Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "intel_walking_and_headpose"
           / "head-pose-face-detection-female-and-male.mp4")
# Photo sizes as a batch of mixed photos has them: each is a new input shape for the detector.
MIXED_SIZES = [(480, 270), (640, 427), (1024, 683), (800, 1200), (1024, 768), (333, 500), (1280, 720), (2000, 1300)]


def largest_box_difference(a: list[Detection], b: list[Detection]) -> float:
    pairs = zip(sorted(a, key=lambda d: (d.x0, d.y0)), sorted(b, key=lambda d: (d.x0, d.y0)))
    return max((max(abs(p.x0 - q.x0), abs(p.y0 - q.y0), abs(p.x1 - q.x1), abs(p.y1 - q.y1)) for p, q in pairs),
               default=0.0)


def timed_detection(images: list[np.ndarray], profile, detector: CenterFace) -> tuple[list[list[Detection]], float]:
    started = time.perf_counter()
    found = [detect_faces(image, profile, detector) for image in images]
    return found, (time.perf_counter() - started) / len(images) * 1000


def main() -> None:
    clip = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not clip.is_file():
        sys.exit(f"{clip} is absent: pass a video, or put ../shared/data beside the checkout")
    print("onnxruntime", ort.__version__, ort.get_available_providers())
    detectors = {"gpu": CenterFace(), "cpu": CenterFace(providers=["CPUExecutionProvider"])}
    print("default provider:", detectors["gpu"].provider)
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(40), container.decode(video=0))]
    mixed = [cv2.resize(frames[i % len(frames)], size) for i, size in enumerate(MIXED_SIZES)]

    for label, images in (("same-size frames", frames), ("mixed sizes", mixed)):
        for profile in (FAST, ACCURATE):
            results = {}
            for name, detector in detectors.items():
                detect_faces(images[0], profile, detector)  # warm-up
                results[name], ms = timed_detection(images, profile, detector)
                print(f"{label:16s} {profile.name:8s} {name}: {ms:7.1f} ms/image, {sum(map(len, results[name]))} faces")
            same = sum(len(g) == len(c) for g, c in zip(results["gpu"], results["cpu"]))
            diff = max(largest_box_difference(g, c) for g, c in zip(results["gpu"], results["cpu"]))
            print(f"{'':16s} same face count in {same}/{len(images)} images, largest box difference {diff:.2f} px")

    for name in ("gpu", "gpu", "cpu"):  # the first GPU run includes its one-time set-up
        started = time.perf_counter()
        media = plan_video(clip, detector=detectors[name])
        seconds = time.perf_counter() - started
        boxes = sum(len(r.boxes) for r in media.regions)
        target = Path(f"/tmp/veil-gpu-check-{name}.mp4")
        render_video(media, RenderSettings(), target)
        with av.open(str(target)) as container:
            rendered = sum(1 for _ in container.decode(video=0))
        print(f"video plan {name}: {media.frame_count} frames in {seconds:.1f} s ({media.frame_count / seconds:.0f} fps), "
              f"{len(media.regions)} tracks, {boxes} boxes; rendered {rendered} frames")


if __name__ == "__main__":
    main()
