"""Raw test inputs: uniform noise and a realistic mosaic (smooth scene, shot/read noise, 16-bit)."""

import numpy as np
import scipy.ndimage as ndi

from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY


def random_raw(n=2, size=32, seed=0):
    return np.random.default_rng(seed).random((n, size, size)).astype(np.float32)


def realistic_raw(camera, n=2, size=48, seed=0):
    """Mosaic a smooth scene (blobs and edges) through RGGB, add the camera's black level and noise."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        scene = ndi.gaussian_filter(g.random((size, size, 3)), (3, 3, 0))
        scene = (scene - scene.min()) / (np.ptp(scene) + 1e-12)
        yy, xx = np.mgrid[:size, :size]
        scene[(yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 5) ** 2] *= 0.3  # a dark "cell"
        if camera is RAW_MICROSCOPY:
            scene = 0.08 + 0.12 * scene  # dim bright-field raw: the released wb and M map it into [0, 1]
        else:
            scene = 0.05 + 0.5 * scene
        raw = np.zeros((size, size))
        raw[0::2, 0::2] = scene[0::2, 0::2, 0]
        raw[0::2, 1::2] = scene[0::2, 1::2, 1]
        raw[1::2, 0::2] = scene[1::2, 0::2, 1]
        raw[1::2, 1::2] = scene[1::2, 1::2, 2]
        electrons = g.poisson(raw * 20000) + g.normal(0, 5, raw.shape)
        bl = np.tile(np.array(camera.black_level).reshape(2, 2), (size // 2, size // 2))
        counts = np.clip(np.round((electrons / 20000 * (1 - bl.max()) + bl) * 65535), 0, 65535)
        out.append(counts / 65535)
    return np.stack(out).astype(np.float32)


CAMERAS = {"drone": RAW_DRONE, "microscopy": RAW_MICROSCOPY}
