"""Dense CRF post-processing of segmentation predictions (Krähenbühl & Koltun, NIPS 2011): the
step after which DeepLab numbers on VOC are usually reported.

Rules (config `segmentation.crf`, off by default):
- input: one image's softmax probabilities (C, H, W) at its full size, after the inference
  scales are fused, and the image's own colours, RGB uint8 (H, W, 3). (deeplab-pytorch, whose
  step the paper's code copies, hands the CRF its mean-subtracted BGR network input cast to
  uint8, which wraps the negative values; here the CRF sees the true colours.)
- unary: -log p, p clipped below at 1e-5 (pydensecrf's `unary_from_softmax`).
- pairwise, Potts compatibility: a Gaussian kernel over position (`pos_xy_std` pixels,
  weight `pos_w`) that smooths, and a bilateral kernel over position and colour
  (`bi_xy_std` pixels, `bi_rgb_std` colour levels, weight `bi_w`) that pulls labels to colour
  edges; `iter_max` mean-field iterations give the approximate marginals (C, H, W).
- defaults (the schema's): deeplab-pytorch's configs/voc12.yaml, which the paper's code
  (I2CRC, segmentation/configs/voc12.yaml) copies unchanged and applies both to its val
  predictions and to the training-image predictions that its label refinement reads.

pydensecrf2 is an optional extra (`pip install -e '.[crf]'`), imported only where a CRF runs;
without it, asking for the CRF is one ConfigError line naming the key or option that asked.
The CRF holds Python's GIL, so `DenseCRF` spreads a batch's images over worker processes.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from ..infra.errors import ConfigError

INSTALL_HINT = "pip install -e '.[crf]'"
# The unary's floor on a probability (pydensecrf's unary_from_softmax default).
MIN_PROBABILITY = 1e-5


def require_pydensecrf(asked_by: str) -> None:
    """ConfigError naming `asked_by` (a config key or a command-line option) unless the
    optional package pydensecrf2 imports."""
    try:
        import pydensecrf.densecrf  # noqa: F401  (only whether it imports)
    except ImportError:
        raise ConfigError(
            f"{asked_by}: the dense CRF needs the optional package pydensecrf2; install it with "
            f"{INSTALL_HINT}"
        ) from None


def settings(crf_config: dict) -> dict | None:
    """The keyword arguments of `dense_crf` from a `segmentation.crf` config section, or None
    when it is disabled: what a rule passes as its param, so that the parameters of a disabled
    CRF rerun nothing."""
    if not crf_config["enabled"]:
        return None
    return {key: value for key, value in crf_config.items() if key != "enabled"}


def dense_crf(
    probabilities: np.ndarray,
    image: np.ndarray,
    *,
    iter_max: int,
    pos_w: float,
    pos_xy_std: float,
    bi_w: float,
    bi_xy_std: float,
    bi_rgb_std: float,
) -> np.ndarray:
    """Refined probabilities float32 (C, H, W) of `probabilities` (C, H, W, summing to 1 over C)
    on `image`, RGB uint8 (H, W, 3)."""
    require_pydensecrf("segmentation.crf")
    import pydensecrf.densecrf as dcrf

    classes, height, width = probabilities.shape
    unary = -np.log(np.maximum(probabilities, MIN_PROBABILITY), dtype=np.float32)
    crf = dcrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.reshape(classes, -1)))
    crf.addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)
    crf.addPairwiseBilateral(
        sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=np.ascontiguousarray(image), compat=bi_w
    )
    return np.asarray(crf.inference(iter_max), dtype=np.float32).reshape(classes, height, width)


def _crf_labels(probabilities: np.ndarray, image: np.ndarray, crf_settings: dict) -> np.ndarray:
    return dense_crf(probabilities, image, **crf_settings).argmax(axis=0).astype(np.uint8)


class DenseCRF:
    """`crf(probabilities (N, C, H, W), images uint8 (N, H, W, 3))` -> labels uint8 (N, H, W),
    the argmax of `dense_crf` per image. With `workers` > 1 a context manager, whose processes
    live from enter to exit (forked: the stages run as scripts, which a spawned process would
    run again); with one, callable as it is."""

    def __init__(self, crf_settings: dict, workers: int = 1):
        self._labels = partial(_crf_labels, crf_settings=crf_settings)
        self._workers = workers
        self._pool = None

    def __enter__(self) -> "DenseCRF":
        if self._workers > 1:
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("fork")
            )
            # a forking pool starts all its workers at the first task: now, before the
            # stage's writer thread runs, so that no child inherits a lock that thread holds
            self._pool.submit(int).result()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        return False

    def __call__(self, probabilities: np.ndarray, images: np.ndarray) -> np.ndarray:
        mapped = map if self._pool is None or len(images) == 1 else self._pool.map
        return np.stack(list(mapped(self._labels, probabilities, images)))
