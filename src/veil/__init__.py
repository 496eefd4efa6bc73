"""veil: find every face in photos and videos and hide it irreversibly before publication."""

from __future__ import annotations

__version__ = "0.1.0"

from pathlib import Path

from veil.detect import ACCURATE, FAST, Detection, detect_faces
from veil.plan import MediaPlan, Plan, RenderSettings


def detect(image, accurate: bool = False) -> list[Detection]:
    """Faces in an image array (RGB, RGBA or grayscale; 8 or 16 bit): tight face boxes with scores."""
    return detect_faces(image, ACCURATE if accurate else FAST)


def redact_image(
    source: str | Path,
    output: str | Path | None = None,
    *,
    accurate: bool = False,
    settings: RenderSettings | None = None,
) -> MediaPlan:
    """Redact a photo file; returns its plan. Output defaults to `<name>.redacted.<ext>` beside it.

    Raises ValueError (or OSError) with the reason when the photo cannot be redacted; nothing is written then.
    """
    from veil.outputs import media_kind, output_path
    from veil.pipeline import Analysis, FileTask, redact_file
    from veil.plan import Encoding

    source = Path(source)
    target = output_path(source, source.parent, Path(output) if output else None, None)
    task = FileTask(source, media_kind(source), target, settings or RenderSettings(), Encoding(),
                    Analysis(ACCURATE if accurate else FAST), overwrite=True)
    result = redact_file(task)
    if result.error or result.media is None:
        raise ValueError(f"{source}: {result.error}")
    return result.media


__all__ = ["__version__", "detect", "redact_image", "Detection", "MediaPlan", "Plan", "RenderSettings"]
