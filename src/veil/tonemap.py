"""HDR video frames (PQ, HLG) as SDR pictures, for the detectors and the reviewer's eyes.

Read as they stand, a PQ frame's code values make a dim, flat, colourless picture (PQ puts
reference white at 58% of its scale), in which the face detector misses small faces; the
reviewer sees it grey. Here the frame's light is decoded with its own transfer function and
primaries (BT.2100), reference white (BT.2408: 203 nits) taken to SDR white, brighter light rolled
off into the top of the scale, and coded as BT.709 8-bit. The written video keeps its HDR signal;
only what looks at it sees this. FFmpeg's tone mapping needs the zimg library, which PyAV's
FFmpeg does not carry.
"""

from __future__ import annotations

from functools import lru_cache

import av
import numpy as np

# Transfer characteristics (FFmpeg's AVColorTransferCharacteristic numbers).
TRC_PQ, TRC_HLG = 16, 18  # SMPTE ST 2084 (HDR10), ARIB STD-B67 (phones' default HDR recording)
TRC_NAMES = {TRC_PQ: "smpte2084 (PQ)", TRC_HLG: "arib-std-b67 (HLG)"}
SDR_WHITE_NITS = 203.0  # BT.2408's HDR reference white, where SDR white goes
HLG_PEAK_NITS = 1000.0  # BT.2100's reference HLG display (system gamma 1.2)
KNEE = 0.8  # of SDR white: light above it is rolled off into the rest of the scale
# Linear BT.2020 RGB to linear BT.709 RGB (the inverse of BT.2087's BT.709 -> BT.2020 matrix).
BT2020_TO_709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]],
                         np.float32)


@lru_cache(maxsize=None)
def _linear(trc: int) -> np.ndarray:
    """16-bit R'G'B' code -> linear light relative to SDR white (1.0: 203 nits)."""
    e = np.arange(65536, dtype=np.float64) / 65535.0
    if trc == TRC_PQ:  # ST 2084's EOTF
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
        p = e ** (1 / m2)
        nits = 10000.0 * (np.maximum(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1)
    else:  # HLG's inverse OETF, then its OOTF per channel (exact for greys) on a 1,000-nit display
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - c) / a) + b) / 12)
        nits = HLG_PEAK_NITS * scene ** 1.2
    return (nits / SDR_WHITE_NITS).astype(np.float32)


def tone_mapped(rgb48: np.ndarray, trc: int) -> np.ndarray:
    """A PQ or HLG picture (BT.2020 R'G'B', 16 bits) as an SDR BT.709 one, 8 bits."""
    linear = np.clip(_linear(trc)[rgb48] @ BT2020_TO_709.T, 0.0, None)
    over = np.maximum(linear - KNEE, 0.0)
    linear = np.minimum(linear, KNEE) + over * (1 - KNEE) / (over + (1 - KNEE))
    return (np.clip(linear, 0.0, 1.0) ** (1 / 2.4) * 255.0 + 0.5).astype(np.uint8)


def frame_rgb(frame: av.VideoFrame, hdr: tuple[int, ...] = (TRC_PQ, TRC_HLG), **size: int) -> np.ndarray:
    """The frame as 8-bit RGB (its own matrix and range; `size`: width, height); a frame whose
    transfer is one of `hdr` tone-mapped to SDR."""
    range_ = frame.color_range or None
    if frame.color_trc in hdr:
        return tone_mapped(frame.to_ndarray(format="rgb48le", src_color_range=range_, **size), frame.color_trc)
    return frame.to_ndarray(format="rgb24", src_color_range=range_, **size)


def tone_map_record(trc: int) -> dict:
    return {"transfer": TRC_NAMES[trc], "reference_white_nits": SDR_WHITE_NITS, "knee": KNEE,
            "hlg_display_nits": HLG_PEAK_NITS if trc == TRC_HLG else None, "to": "BT.709 SDR, 8 bits"}
