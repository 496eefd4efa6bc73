#!/usr/bin/env bash
# Create the benchmark venv (.bench-venv) beside the project's .venv.
#
# It holds the tools veil is compared with, which cannot live in veil's own venv:
#   deface==1.5.0            (pulls opencv-python, which clashes with veil's opencv-python-headless)
#   dlib-bin                 (dlib's Python binding, prebuilt)
#   face-recognition-models  (dlib's ResNet face recogniser + shape predictor weights)
#   onnx                     (with onnxruntime, which veil brings, deface picks its faster onnxrt backend)
#   setuptools               (pkg_resources, used by some of the above)
# and veil itself, installed editable, so the benchmarks import the working tree.
#
# Safe to run again, and safe to run while another shell runs it (flock).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.bench-venv}"
PY="${PYTHON:-python3}"

exec 9>"${TMPDIR:-/tmp}/veil-bench-venv.lock"
flock 9

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet -e "$ROOT"
"$VENV/bin/pip" install --quiet "deface==1.5.0" onnx face-recognition-models dlib-bin setuptools
# deface's opencv-python and veil's opencv-python-headless both provide the cv2 module;
# whichever was installed last owns it. Reinstall the full opencv-python last so cv2 is complete.
CV_VERSION="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("opencv-python"))')"
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps "opencv-python==$CV_VERSION"
"$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
import cv2, dlib, deface, veil
spec = importlib.util.find_spec("face_recognition_models")
models = pathlib.Path(spec.origin).parent / "models"
for name in ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"):
    assert (models / name).is_file(), models / name
print(f"bench venv ready: veil {veil.__version__}, deface {deface.__version__ if hasattr(deface, '__version__') else '1.5.0'}, "
      f"dlib {dlib.__version__}, cv2 {cv2.__version__}")
PY
