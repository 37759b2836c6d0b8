"""Periodic noise textures and their lookups: the raw material of every field in the world."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

F32 = np.float32

# --- noise -----------------------------------------------------------------------------------
# Periodic 4-channel noise textures, made once per process from a fixed generator: they are part
# of the code, not of the world. A lookup returns all four channels at once, and each channel
# has its own spectrum, so one lookup gives four unrelated fields. The world seed picks each
# lookup's rotation and offset, so each seed is a different world.

_N = 512  # texture side (a power of two: lookups wrap with a bit mask)


def _spectral_texture(rng: np.random.Generator, spectra) -> np.ndarray:
    """Periodic noise, one channel per amplitude spectrum A(fx, fy) (cycles per texture), std 1.

    Padded to (N+1, N+1, C) with the first row and column repeated, so a bilinear lookup can
    read texel i+1 without wrapping.
    """
    fy = (np.fft.fftfreq(_N) * _N)[:, None]
    fx = (np.fft.rfftfreq(_N) * _N)[None, :]
    channels = []
    for amplitude in spectra:
        a = amplitude(fx, fy, np.maximum(np.hypot(fx, fy), 1.0))
        noise = rng.standard_normal(a.shape) + 1j * rng.standard_normal(a.shape)
        spectrum = noise * a
        spectrum[0, 0] = 0.0
        tex = np.fft.irfft2(spectrum, s=(_N, _N))
        channels.append((tex - tex.mean()) / tex.std())
    tex = np.stack(channels, axis=-1)
    return np.ascontiguousarray(np.pad(tex, ((0, 1), (0, 1), (0, 0)), mode="wrap"), dtype=F32)


def _fbm(slope: float, low: float = 1.0, high: float = 200.0):
    """Fractal spectrum f^-slope between wavelengths N/low and N/high texels."""
    return lambda fx, fy, f: f ** -slope * np.exp(-(f / high) ** 2) * (1 - np.exp(-(f / low) ** 4))


def _band(center: float, width: float):
    """A narrow ring of frequencies: smooth noise whose zero isolines meander evenly."""
    return lambda fx, fy, f: np.exp(-((f - center) / width) ** 2)


@lru_cache(maxsize=1)
def _textures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return {
        # large scale, 12 m/texel: forest, lakes, terrain, a road network
        "land_a": _spectral_texture(rng, [_fbm(1.6, 1, 120), _fbm(1.7, 1, 120), _fbm(2.2), _band(4, 1.2)]),
        # large scale, 19.7 m/texel: forest, lakes (summed with land_a's), rivers, another road network
        "land_b": _spectral_texture(rng, [_fbm(1.6, 1, 120), _fbm(1.7, 1, 120), _band(4, 1.0), _band(6, 1.5)]),
        # medium scale, 2.5 m/texel: ragged forest edges, stand type, stand height, meadow patches
        "land_c": _spectral_texture(rng, [_fbm(1.3, 6, 120), _fbm(2.0, 1, 12), _fbm(2.0, 1, 40), _fbm(1.4, 2, 160)]),
        # detail, 0.12 m/texel near the camera and 1.2 m/texel far: grain, blotches, ripples, leaves
        "detail": _spectral_texture(rng, [
            _fbm(0.3, 1, 256), _fbm(1.2, 1, 200),
            lambda fx, fy, f: np.exp(-(fx / 6.0) ** 2) * np.exp(-((np.abs(fy) - 60) / 30) ** 2),
            _fbm(0.6, 20, 160)]),
        # clouds on a plane 1.5 km up, 30 m/texel: cumulus, overcast, cirrus streaks, variation
        "sky": _spectral_texture(rng, [
            _fbm(1.5, 2, 150), _fbm(1.2, 1, 100),
            lambda fx, fy, f: np.exp(-(fx / 3.0) ** 2) * f ** -0.8 * np.exp(-(f / 120) ** 2), _fbm(2.0)]),
    }


def _lookup(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a padded periodic texture at texel coordinates (u, v): shape (n, C).

    The four corners are gathered as (n, C) rows and interpolated as flat arrays, with the
    weights repeated per channel: numpy is several times slower on a (n, C) * (n, 1) broadcast.
    """
    channels = tex.shape[-1]
    u0 = np.floor(u)
    v0 = np.floor(v)
    fu = np.repeat((u - u0).astype(F32), channels)
    fv = np.repeat((v - v0).astype(F32), channels)
    idx = (v0.astype(np.int32) & (_N - 1)) * (_N + 1) + (u0.astype(np.int32) & (_N - 1))
    flat = tex.reshape(-1, channels)
    a = flat.take(idx, axis=0).ravel()
    b = flat.take(idx + 1, axis=0).ravel()
    c = flat.take(idx + _N + 1, axis=0).ravel()
    d = flat.take(idx + _N + 2, axis=0).ravel()
    top = a + (b - a) * fu
    return (top + (c + (d - c) * fu - top) * fv).reshape(-1, channels)


# lookup name -> (texture, metres per texel)
_LOOKUPS = {
    "land_a": ("land_a", 12.0),
    "land_b": ("land_b", 19.7),
    "land_c": ("land_c", 2.5),
    "near": ("detail", 0.12),
    "far": ("detail", 1.2),
    "sky": ("sky", 30.0),
}


def _noise(world: dict, name: str, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The (n, 4) channels of a lookup at world points (scale > 1 stretches the texture)."""
    tex, c, s, ou, ov = world["lookups"][name]
    if scale != 1.0:
        c, s = c / F32(scale), s / F32(scale)
    return _lookup(tex, x * c - y * s + ou, x * s + y * c + ov)


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - F32(a)) * F32(1 / (b - a)), 0, 1)
    return t * t * (3 - 2 * t)
