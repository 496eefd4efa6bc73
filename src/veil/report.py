"""The audit report: what was hidden, by whom, from which model, in which files."""

from __future__ import annotations

import json
from pathlib import Path

from veil.outputs import atomic_write_bytes
from veil.photo import file_sha256
from veil.plan import Plan


def build_report(plan: Plan, outputs: dict[str, str]) -> dict:
    return {
        "veil_version": plan.veil_version,
        "detection": plan.detection,
        "render": {"mode": plan.render.mode, "color": list(plan.render.color), "blocks": plan.render.blocks},
        "files": [
            {
                "input": media.path,
                "input_sha256": media.sha256,
                "output": outputs.get(media.path),
                "output_sha256": file_sha256(Path(outputs[media.path])) if media.path in outputs else None,
                "regions": [
                    {"id": r.id, "source": r.source, "first_frame": r.first_frame, "last_frame": r.last_frame,
                     "keep_visible": r.keep_visible, "reason": r.reason}
                    for r in media.regions
                ],
            }
            for media in plan.media
        ],
        "edits": [e.__dict__ for e in plan.edits],
    }


def write_report(plan: Plan, outputs: dict[str, str], path: Path) -> None:
    atomic_write_bytes(path, json.dumps(build_report(plan, outputs), indent=1).encode())
