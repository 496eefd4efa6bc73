"""Copy the PP-OCRv6 small text detector out of the `rapidocr` 3.10.0 wheel into veil's models.

Run once by a developer:

    pip download --no-deps rapidocr==3.10.0 -d /tmp/wheels
    python tools/extract_text_detector.py /tmp/wheels/rapidocr-3.10.0-py3-none-any.whl

veil ships the file instead of depending on the wheel: rapidocr's own dependencies (requests,
omegaconf, shapely, pyclipper, ...) serve its network-fetching pipeline, which veil never runs.
The weights are copied byte for byte and checked against the SHA-256 the wheel's
MODEL_LICENSES.md records; the licence and that notice are written beside them.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "src" / "veil" / "models"
MEMBER = "rapidocr/models/PP-OCRv6_det_small.onnx"
SHA256 = "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"  # from MODEL_LICENSES.md
LICENCES = ("rapidocr-3.10.0.dist-info/licenses/LICENSE", "rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md")


def extract(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        weights = archive.read(MEMBER)
        if hashlib.sha256(weights).hexdigest() != SHA256:
            sys.exit(f"{MEMBER} does not match the SHA-256 its licence notice records")
        notice = b"\n\n".join(archive.read(name) for name in LICENCES)
    (MODELS / "ppocrv6_det_small.onnx").write_bytes(weights)
    (MODELS / "ppocrv6_det_small.LICENSE").write_bytes(notice)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    extract(Path(sys.argv[1]))
