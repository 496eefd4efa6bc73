"""HDR (HLG, PQ) and SDR 10-bit control variants of bench/video_variants.py's 10 clips with GT:
faces in the video phones record (HLG by default on iPhones and most Android phones; PQ: HDR10).

Each SDR frame's light is turned into the HDR signal a phone would record:
  BT.709 code value -> display linear (BT.1886, gamma 2.4) -> BT.2020 primaries (BT.2087 matrix)
  pq    : SDR white at 203 nits (BT.2408), PQ inverse EOTF (ST 2084)
  hlg   : SDR white at 203 nits on a 1000-nit HLG display: inverse OOTF (gamma 1.2) -> HLG OETF
          (SDR white lands at 75% HLG signal, BT.2408's reference white)
  sdr10 : control, the same 709 frames coded as 10-bit x265 with BT.709 tags (isolates the codec)
then Y'CbCr BT.2020 NCL (BT.709 for sdr10), limited range 10-bit, 4:2:0, libx265 crf 18, tags set.

    python bench/video_variants.py /tmp/variants --variants base    # their GT is copied from there
    python bench/hdr_variants.py /tmp/variants --variants hlg,pq,sdr10
    python bench/video_leaks.py --tools veil --sets "" --more /tmp/variants/pq --more /tmp/variants/hlg

GT copied unchanged (same geometry). Made by a review helper (2026-12-01). Real phone recordings
have highlights above reference white and Dolby Vision layers; these do not.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import video_variants as vv  # noqa: E402

M709_TO_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
K2020 = (0.2627, 0.0593)  # Kr, Kb
K709 = (0.2126, 0.0722)
WHITE = 203.0


def pq_oetf(nits: np.ndarray) -> np.ndarray:
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = np.clip(nits / 10000.0, 0, 1) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def hlg_oetf(e: np.ndarray) -> np.ndarray:
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = np.clip(e, 0, 1)
    return np.where(e <= 1 / 12, np.sqrt(3 * e), a * np.log(np.maximum(12 * e - b, 1e-12)) + c)


def signal(rgb8: np.ndarray, kind: str) -> np.ndarray:
    """Non-linear R'G'B' in [0,1] of the HDR (or sdr10) signal."""
    v = rgb8.astype(np.float64) / 255.0
    if kind == "sdr10":
        return v
    lin = (v ** 2.4) @ M709_TO_2020.T  # display linear, SDR white = 1
    lin = np.clip(lin, 0, None)
    if kind == "pq":
        return pq_oetf(lin * WHITE)
    # hlg: display light F_D = lin * 203 nits on a 1000-nit display, alpha = 1000, gamma = 1.2
    fd = lin * WHITE / 1000.0
    yd = fd @ np.array([K2020[0], 1 - K2020[0] - K2020[1], K2020[1]])
    gamma = 1.2
    scene = fd * np.maximum(yd, 1e-9)[..., None] ** ((1 - gamma) / gamma)
    return hlg_oetf(scene)


def yuv_frame(rgb: np.ndarray, kind: str) -> av.VideoFrame:
    kr, kb = K709 if kind == "sdr10" else K2020
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    h, w = y.shape

    def sub(c):
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    Y = np.clip(np.round(64 + 876 * y), 0, 1023).astype(np.uint16)
    U = np.clip(np.round(512 + 896 * sub(cb)), 0, 1023).astype(np.uint16)
    V = np.clip(np.round(512 + 896 * sub(cr)), 0, 1023).astype(np.uint16)
    packed = np.concatenate([Y.ravel(), U.ravel(), V.ravel()]).reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(packed, format="yuv420p10le")


TAGS = {  # primaries, trc, matrix (AVCOL_* numbers) and x265 names
    "hlg": (9, 18, 9, "bt2020", "arib-std-b67", "bt2020nc"),
    "pq": (9, 16, 9, "bt2020", "smpte2084", "bt2020nc"),
    "sdr10": (1, 1, 1, "bt709", "bt709", "bt709"),
}


def write(dest: Path, clip: vv.Clip, kind: str) -> None:
    prim, trc, mat, xprim, xtrc, xmat = TAGS[kind]
    h, w = clip.frames[0].shape[:2]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dest), "w") as container:
        stream = container.add_stream("libx265", rate=clip.rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p10le"
        cc = stream.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = prim, trc, mat, 1
        params = f"colorprim={xprim}:transfer={xtrc}:colormatrix={xmat}:range=limited:pools=1:frame-threads=1:log-level=error"
        if kind == "pq":
            params += ":hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400"
        stream.options = {"crf": "18", "preset": "fast", "x265-params": params}
        stream.thread_count = 1
        for rgb8 in clip.frames:
            frame = yuv_frame(signal(np.ascontiguousarray(rgb8), kind), kind)
            frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = prim, trc, mat, 1
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--variants", default="hlg,pq,sdr10")
    p.add_argument("--clips", default="")
    a = p.parse_args()
    for kind in a.variants.split(","):
        for source in vv.sources():
            if a.clips not in source.name:
                continue
            clip = vv.load(source)
            dest = a.out / kind / f"{source.name}.mp4"
            write(dest, clip, kind)
            shutil.copy(a.out / "base" / f"{source.name}_gt.csv", a.out / kind / f"{source.name}_gt.csv")  # base variant GT (boxes >= half inside)
            with av.open(str(dest)) as c:
                s = c.streams.video[0]
                f = next(c.decode(video=0))
                print(kind, source.name[:40], s.codec_context.name, s.format.name, f.color_primaries, f.color_trc,
                      f.colorspace, f.color_range, s.frames, flush=True)


if __name__ == "__main__":
    main()
