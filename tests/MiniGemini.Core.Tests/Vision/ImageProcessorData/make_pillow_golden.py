"""Writes the Pillow reference images used by ImageProcessorTests (run from this folder with Pillow + numpy).

The files were produced with Pillow 9.4.0; Pillow's 8-bit bicubic resampling (libImaging/Resample.c) has not
changed since, so any recent Pillow gives the same bytes.
  resize_src.png              a 41x29 noisy RGB image
  resize_WxH.png              resize_src resized with Image.resize((W, H), BICUBIC, reducing_gap=None)
  pad_64.png                  the preprocess fixture's input.png, expand2square (122,116,104), bicubic to 64x64
  pad_768.sha256              SHA-256 of the same at 768x768 (raw RGB bytes, row-major), kept as a hash for size
  cmyk.jpg / cmyk_rgb.png     a CMYK JPEG written by Pillow and what Image.open(...).convert("RGB") gives for it
"""
import hashlib

import numpy as np
from PIL import Image

SIZES = [(13, 9), (101, 77), (41, 60), (7, 29), (64, 64), (200, 3), (1, 1)]

rng = np.random.default_rng(11)
yy, xx = np.mgrid[0:29, 0:41]
src = np.stack([xx * 6, yy * 8, (xx * yy) % 256], -1) + rng.normal(0, 30, (29, 41, 3))
src[5:12, 10:20] = [255, 0, 255]  # hard edges drive the cubic lobes past 0 and 255, so clipping is exercised
src = Image.fromarray(np.clip(src, 0, 255).astype(np.uint8), "RGB")
src.save("resize_src.png")
for w, h in SIZES:
    src.resize((w, h), Image.BICUBIC, reducing_gap=None).save(f"resize_{w}x{h}.png")

pil = Image.open("../../../fixtures/reference/preprocess/input.png").convert("RGB")
W, H = pil.size
sq = Image.new("RGB", (max(W, H),) * 2, (122, 116, 104))
sq.paste(pil, (0, (W - H) // 2) if W > H else ((H - W) // 2, 0))
sq.resize((64, 64), Image.BICUBIC, reducing_gap=None).save("pad_64.png")
raw768 = sq.resize((768, 768), Image.BICUBIC, reducing_gap=None).tobytes()
open("pad_768.sha256", "w").write(hashlib.sha256(raw768).hexdigest() + "\n")

c = np.zeros((12, 20, 4), np.uint8)
c[..., 0] = np.linspace(0, 255, 20)[None, :]
c[..., 1] = np.linspace(0, 255, 12)[:, None]
c[..., 2] = 90
c[..., 3] = np.tile([0, 60, 200], 80)[:240].reshape(12, 20)
Image.fromarray(c, "CMYK").save("cmyk.jpg", quality=95)
cmyk = Image.open("cmyk.jpg")
assert cmyk.mode == "CMYK"
cmyk.convert("RGB").save("cmyk_rgb.png")
