"""Export MTCNN's refine (RNet) and output (ONet) networks to ONNX, for bench/photo_frontier.py.

Measured there: verifying CenterFace's weak candidates with these networks does not move
veil's recall / over-redaction trade-off enough to ship them (bench/README.md), so veil
does not include them. This script makes the measurement reproducible. Run it in a scratch
environment (torch must not become a dependency of veil):

    python -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 onnx
    /tmp/export/bin/pip install --no-deps facenet-pytorch==2.6.0   # MIT; weights 2 MB
    /tmp/export/bin/python tools/export_mtcnn.py                    # writes bench/out/mtcnn_*.onnx

Both networks take an NCHW float32 RGB batch normalised as (x - 127.5) / 128: RNet 24 x 24,
ONet 48 x 48. Outputs: box regression, (ONet: landmarks,) face probability (column 1).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch

MODELS = Path(__file__).resolve().parents[1] / "bench" / "out"


def load_mtcnn_module() -> types.ModuleType:
    """facenet-pytorch's mtcnn.py alone: the package's __init__ pulls in torchvision and
    requests for parts we do not export, so its parent packages are registered empty."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or spec.origin is None:
        sys.exit("facenet-pytorch is not installed: pip install --no-deps facenet-pytorch==2.6.0")
    root = Path(spec.origin).parent
    for name, folder in (("facenet_pytorch", root), ("facenet_pytorch.models", root / "models"),
                         ("facenet_pytorch.models.utils", root / "models" / "utils")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    # MTCNN's own detection loop (and its torchvision import) is not part of the export.
    stub = types.ModuleType("facenet_pytorch.models.utils.detect_face")
    stub.detect_face = stub.extract_face = None
    sys.modules[stub.__name__] = stub
    module_spec = importlib.util.spec_from_file_location("facenet_pytorch.models.mtcnn", root / "models" / "mtcnn.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def main() -> None:
    mtcnn = load_mtcnn_module()
    RNet, ONet = mtcnn.RNet, mtcnn.ONet
    MODELS.mkdir(parents=True, exist_ok=True)
    for name, network, side, outputs in (
        ("mtcnn_rnet.onnx", RNet(), 24, ["box", "prob"]),
        ("mtcnn_onet.onnx", ONet(), 48, ["box", "landmarks", "prob"]),
    ):
        network.eval()
        example = torch.zeros(1, 3, side, side)
        torch.onnx.export(
            network,
            (example,),
            str(MODELS / name),
            input_names=["image"],
            output_names=outputs,
            dynamic_axes={"image": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
            opset_version=17,
            dynamo=False,
        )
        print("wrote", MODELS / name, (MODELS / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
