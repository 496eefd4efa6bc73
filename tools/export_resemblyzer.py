"""One-time export of resemblyzer's GE2E speaker encoder to ONNX, for bench/voice.py's attacker.

Run in a scratch venv with torch (never a veil dependency) and resemblyzer installed without
its dependencies (its audio module needs webrtcvad and librosa; only its weights are used):

    python -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 onnx numpy
    /tmp/export/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/export/bin/python tools/export_resemblyzer.py bench/models/resemblyzer_ge2e.onnx

The network is rebuilt here as resemblyzer's VoiceEncoder defines it (3-layer LSTM 40 -> 256,
linear 256, ReLU, L2 normalisation) and loaded from its pretrained.pt (Apache-2.0). The export
is checked against torch on random input.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / torch.norm(raw, dim=1, keepdim=True)


def main(target: Path) -> None:
    weights = Path(importlib.util.find_spec("resemblyzer").origin).parent / "pretrained.pt"
    model = Encoder()
    state = torch.load(weights, map_location="cpu", weights_only=False)["model_state"]
    missing = model.load_state_dict(state, strict=False)
    assert not missing.missing_keys, missing
    model.eval()
    example = torch.rand(2, 160, 40)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (example,), str(target), input_names=["mels"], output_names=["embeddings"],
                      dynamic_axes={"mels": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}},
                      opset_version=17, dynamo=False)
    import onnxruntime as ort

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    probe = torch.rand(3, 160, 40) * 5
    with torch.no_grad():
        expected = model(probe).numpy()
    got = session.run(None, {"mels": probe.numpy()})[0]
    print(f"wrote {target}; max difference from torch {np.abs(got - expected).max():.2e}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/models/resemblyzer_ge2e.onnx"))
