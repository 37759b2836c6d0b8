"""Near-duplicates: the same view uploaded twice, resized, re-compressed or lightly edited.

Each photo gets a 64-bit perceptual hash (imagehash.phash: the signs of the low DCT frequencies).
Photos are visited from the largest (in pixels) down; each one either joins the first kept photo
within `radius` bits (and is rejected, naming it) or is kept itself. So the kept photo of a group
is its largest, every reject lies within `radius` of the photo named in its reason, and there is
no chaining (A near B near C does not join A and C).

On the real samples, re-encoded, resized (1/2), blurred (sigma 2) and brightened (+20%) copies
lie 0-2 bits from their original, a 10% crop 12 bits, and the closest two different photos 18.
The default radius of 8 sits between.

Cost: O(N x kept) 64-bit comparisons, vectorised; 10^4 photos take about a second. The funnel
runs this stage late, on the photos that survived the scene and people filters.
"""

from __future__ import annotations

import imagehash
import numpy as np

from .quality import ImageError, open_rgb


def phash(im) -> int:
    return int(str(imagehash.phash(im)), 16)


def judge(paths, ids, radius: int = 8) -> list[tuple[bool, str, float | None]]:
    """(keep, reason, score) per path; the score is the Hamming distance to the kept photo (0 if kept)."""
    ids = list(ids)
    hashes = np.zeros(len(ids), dtype=np.uint64)
    pixels = np.full(len(ids), -1, dtype=np.int64)  # -1: unreadable
    out: list = [None] * len(ids)
    for i, path in enumerate(paths):
        try:
            im = open_rgb(path)
        except ImageError as e:
            out[i] = (False, str(e), None)
            continue
        hashes[i] = phash(im)
        pixels[i] = im.width * im.height

    kept = np.zeros(len(ids), dtype=np.uint64)  # hashes of kept photos, the first n_kept in use
    kept_index: list[int] = []
    for i in sorted(np.flatnonzero(pixels >= 0), key=lambda i: (-pixels[i], i)):  # largest first, then file order
        distances = np.bitwise_count(kept[:len(kept_index)] ^ hashes[i])
        if len(distances) and distances.min() <= radius:
            j = kept_index[int(distances.argmin())]
            out[i] = (False, f"near-duplicate of {ids[j]} (distance {int(distances.min())})",
                      float(distances.min()))
        else:
            kept[len(kept_index)] = hashes[i]
            kept_index.append(i)
            out[i] = (True, "", 0.0)
    return out
