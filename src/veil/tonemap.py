"""HDR video frames (PQ, HLG) as SDR pictures, for the detectors and the reviewer's eyes.

Read as they stand, a PQ frame's code values make a dim, flat, colourless picture (PQ puts
reference white at 58% of its scale), in which the face detector misses small faces; the
reviewer sees it grey. Here the frame's light is decoded with its own transfer function (BT.2100)
and, where its primaries are BT.2020's, converted to BT.709's; light is scaled so that reference
white (BT.2408: 203 nits) would be SDR white, then everything above 80% of that is rolled off
softly (reference white lands at 90%, the brightest light near 100%), and coded as BT.709 8-bit.
The written video keeps its HDR signal; only what looks at it sees this. FFmpeg's tone mapping
needs the zimg library, which PyAV's FFmpeg does not carry.
"""

from __future__ import annotations

from functools import lru_cache

import av
import cv2
import numpy as np

PRIMARIES_BT2020 = 9  # FFmpeg's AVColorPrimaries number
# Rows converted at a time: a 4K frame's float copies would otherwise take hundreds of MiB.
ROWS = 256
# Transfer characteristics (FFmpeg's AVColorTransferCharacteristic numbers).
TRC_PQ, TRC_HLG = 16, 18  # SMPTE ST 2084 (HDR10), ARIB STD-B67 (phones' default HDR recording)
TRC_NAMES = {TRC_PQ: "smpte2084 (PQ)", TRC_HLG: "arib-std-b67 (HLG)"}
SDR_WHITE_NITS = 203.0  # BT.2408's HDR reference white, where SDR white goes
HLG_PEAK_NITS = 1000.0  # BT.2100's reference HLG display (system gamma 1.2)
KNEE = 0.8  # of SDR white: light above it is rolled off into the rest of the scale
# Linear BT.2020 RGB to linear BT.709 RGB (the inverse of BT.2087's BT.709 -> BT.2020 matrix).
BT2020_TO_709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]],
                         np.float32)
PRIMARIES_P3 = 12  # Display P3 (P3's primaries, D65 white), as phones' photos name it
# Linear light in wide primaries (FFmpeg's and H.273's numbers) to linear BT.709 (sRGB's) light.
TO_BT709 = {PRIMARIES_BT2020: BT2020_TO_709,
            PRIMARIES_P3: np.array([[1.2249, -0.2249, 0.0], [-0.0421, 1.0421, 0.0], [-0.0196, -0.0786, 1.0983]],
                                   np.float32)}


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


def tone_mapped(rgb48: np.ndarray, trc: int, to_709: np.ndarray | None = BT2020_TO_709) -> np.ndarray:
    """A PQ or HLG picture (R'G'B', 16 bits) as an SDR BT.709 one, 8 bits; `to_709`: its primaries'
    matrix to BT.709's in linear light (TO_BT709), None where they are BT.709's."""
    out = np.empty(rgb48.shape, np.uint8)
    code_to_light = _linear(trc)
    for top in range(0, rgb48.shape[0], ROWS):
        linear = code_to_light[rgb48[top:top + ROWS]]
        if to_709 is not None:
            linear = cv2.transform(linear, to_709)
            np.maximum(linear, 0.0, out=linear)
        over = linear - KNEE
        np.maximum(over, 0.0, out=over)
        np.minimum(linear, KNEE, out=linear)
        linear += over * (1 - KNEE) / (over + (1 - KNEE))
        cv2.pow(linear, 1 / 2.4, linear)
        out[top:top + ROWS] = cv2.convertScaleAbs(linear, alpha=255.0)
    return out


def frame_rgb(frame: av.VideoFrame, hdr: tuple[int, ...] = (TRC_PQ, TRC_HLG), **size: int) -> np.ndarray:
    """The frame as 8-bit RGB (its own matrix and range; `size`: width, height); a frame whose
    transfer is one of `hdr` tone-mapped to SDR."""
    range_ = frame.color_range or None
    if frame.color_trc in hdr:
        return tone_mapped(frame.to_ndarray(format="rgb48le", src_color_range=range_, **size), frame.color_trc,
                           BT2020_TO_709 if frame.color_primaries == PRIMARIES_BT2020 else None)
    return frame.to_ndarray(format="rgb24", src_color_range=range_, **size)


def tone_map_record(trc: int) -> dict:
    return {"transfer": TRC_NAMES[trc], "reference_white_nits": SDR_WHITE_NITS, "knee": KNEE,
            "hlg_display_nits": HLG_PEAK_NITS if trc == TRC_HLG else None,
            "primaries": "BT.2020 converted to BT.709 where the frame's are BT.2020", "to": "BT.709 SDR, 8 bits"}
