"""Framework-free image transforms shared by the CIFAR and ImageNet pipelines (Pillow + numpy).

Everything here works on Pillow images or uint8 numpy arrays and produces NHWC float32 numpy
arrays normalised as ``(pixel - mean) / std`` on 0-255 pixel values, so the JAX and PyTorch
workloads see bit-identical inputs. All randomness comes from `numpy.random.Generator` objects the
caller seeds (see `example_rng`), so an augmented batch is a pure function of (seed, step, row).

Upstream (AlgoPerf v0.6) has two different ImageNet pipelines, TF for JAX and torchvision for
PyTorch. This module implements the torchvision one for both frameworks:

* train: `random_resized_crop_box` (scale (0.08, 1), ratio (3/4, 4/3), 10 attempts, then the
  ratio-clamped whole-image centre crop) resized to 224x224 **bilinear** (Pillow, antialiased),
  random horizontal flip, [ViT: `rand_augment`], normalise;
* eval: ``Resize(256)`` of the shorter side (the longer side truncated as torchvision does) then
  ``CenterCrop(224)``, bilinear.

Why the PyTorch variant: it is defined on Pillow-decoded images, which is what we decode with, so
it is reproduced exactly: `train_crop` crops then resizes and `eval_crop` resizes then crops, as
torchvision does on Pillow images, so the 224x224 uint8 views are bit-identical to upstream's
PyTorch preprocessing of the same decoded image (tests check this against a direct Pillow
implementation); normalisation then agrees up to float32 rounding. The JAX
variant relies on TF's DCT-domain ``decode_and_crop_jpeg`` and TF's non-antialiased bicubic
resize, which Pillow cannot reproduce bit for bit; bilinear is also the cheaper filter.

JPEG reduce-on-decode: `load_rgb` calls Pillow's ``draft()`` so libjpeg decodes at 1/2, 1/4 or 1/8
scale, but only while the region to be resized stays at least ``draft_gap`` (default 2) times the
output size (the margin of Pillow's own ``thumbnail(reducing_gap=2)``), and then resizes the
reduced image. Typical ImageNet images (~500x375) are never reduced, so for them the result is
exactly the full decode; large images decode much faster with a sub-grey-level difference.
benchmarks/image_pipeline.py measures speed and difference (mean absolute difference of the eval
view on 1600x1200 photos-like JPEGs: about 0.4 of 255 grey levels with gap 2, about 1 with gap 1).

RandAugment follows upstream's op pool and magnitudes (2 ops per image, magnitude 10 of 10, fill
128): AutoContrast, Equalize, Invert, Rotate (+-30 deg), Posterize (4 bits), Solarize (threshold
256, i.e. the identity at magnitude 10, as upstream), Color / Contrast / Brightness / Sharpness
(factor 1.9), ShearX / ShearY (+-0.3), TranslateX / TranslateY (+-100 px), Cutout (80x80 grey patch
centred uniformly, clipped at the borders: upstream JAX semantics) and SolarizeAdd (+110 below
128). Geometric ops use nearest-neighbour sampling and fill 128 (both upstream frameworks); the
enhance ops are Pillow's ``ImageEnhance`` (torchvision semantics). Signed ops flip sign with
probability 1/2.

Mixup (ViT): one weight per global batch, ``w ~ Beta(alpha, alpha)``, each example mixed with its
predecessor in the batch (``np.roll(x, 1, axis=0)``), labels turned into one-hot soft targets and
mixed the same way; see `mixup` and `mixup_weight`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageOps, UnidentifiedImageError

BILINEAR = Image.Resampling.BILINEAR
NEAREST = Image.Resampling.NEAREST

# Distinct stream tags so per-example, per-batch (mixup) and eval-subset generators never share a
# seed sequence, whatever the seed and step.
TAG_EXAMPLE = 0
TAG_MIXUP = 1
TAG_EVAL_SUBSET = 2

DEFAULT_DRAFT_GAP = 2.0


class ImageDecodeError(ValueError):
    """An image file that Pillow cannot read; the message names the file and the fix."""


# Random generators ---------------------------------------------------------------------------


def example_rng(seed: int, step: int, row: int) -> np.random.Generator:
    """The generator of one training example: a pure function of (seed, step, row in batch).

    Because every example draws from its own generator, a batch is identical whichever worker
    decodes which rows, and training resumed at `step` sees the same augmentations.
    """
    return np.random.default_rng([TAG_EXAMPLE, seed & 0xFFFFFFFF, step, row])


def batch_rng(seed: int, step: int, tag: int) -> np.random.Generator:
    """A per-batch generator (e.g. the mixup weight), independent of the per-example ones."""
    return np.random.default_rng([tag, seed & 0xFFFFFFFF, step])


# Decoding ------------------------------------------------------------------------------------


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open (not decode) an image; the size is known from the header alone."""
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise ImageDecodeError(
            f"{os.fspath(path)}: cannot read image ({e}); the file is corrupt or truncated, "
            "re-run the dataset preparation (it re-extracts missing files) after deleting it"
        ) from e


def load_rgb(
    image: Image.Image,
    region: tuple[float, float, float, float] | None,
    out_size: tuple[int, int],
    draft_gap: float | None = DEFAULT_DRAFT_GAP,
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Decode `image` as RGB, at a reduced JPEG scale when that keeps enough resolution.

    Args:
        image: an image from `open_image` (not yet loaded).
        region: (left, top, right, bottom) in original pixels that will be resized to `out_size`;
            None for the whole image.
        out_size: (width, height) the region will be resized to.
        draft_gap: decode at scale 1/s (s in 1, 2, 4, 8) only while the region stays at least
            `draft_gap` times `out_size`; None disables reduce-on-decode.

    Returns:
        The decoded RGB image and `region` in the decoded image's coordinates.
    """
    width, height = image.size
    if region is None:
        region = (0.0, 0.0, float(width), float(height))
    scale = 1.0
    if draft_gap is not None and image.format == "JPEG":
        rw, rh = region[2] - region[0], region[3] - region[1]
        # Pillow picks the largest s with width // s >= request_w (and the same for height).
        request = (
            max(1, math.ceil(width * out_size[0] * draft_gap / max(rw, 1e-6))),
            max(1, math.ceil(height * out_size[1] * draft_gap / max(rh, 1e-6))),
        )
        drafted = image.draft("RGB", request)
        if drafted is not None and drafted[1][2] > 0:
            scale = width / drafted[1][2]
    try:
        image.load()
        rgb = image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(
            f"{getattr(image, 'filename', '<image>')}: cannot decode image ({e}); the file is "
            "corrupt or truncated, delete it and re-run the dataset preparation"
        ) from e
    if scale != 1.0:
        region = tuple(c / scale for c in region)  # type: ignore[assignment]
    return rgb, region


# Geometry ------------------------------------------------------------------------------------


def random_resized_crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """Inception-style crop box (left, top, width, height), torchvision's RandomResizedCrop rule.

    Up to `attempts` tries of area fraction ~ U(scale) and log aspect ratio ~ U(log ratio); if
    none fits, the whole image centre-cropped to the nearest allowed aspect ratio.
    """
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = round(w / min(ratio))
    elif in_ratio > max(ratio):
        h = height
        w = round(h * max(ratio))
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def resize_center_crop_params(
    width: int, height: int, resize_size: int = 256, crop_size: int = 224
) -> tuple[int, int, int, int]:
    """(new_width, new_height, left, top) of ``Resize(resize_size)`` + ``CenterCrop(crop_size)``.

    torchvision's rules: the shorter side becomes `resize_size`, the longer
    ``int(resize_size * long / short)``; the crop offsets are ``int(round((resized - crop) / 2))``
    (Python's round half to even).
    """
    if width <= height:
        new_w, new_h = resize_size, int(resize_size * height / width)
    else:
        new_w, new_h = int(resize_size * width / height), resize_size
    return new_w, new_h, round((new_w - crop_size) / 2.0), round((new_h - crop_size) / 2.0)


def resize_center_crop_box(
    width: int, height: int, resize_size: int = 256, crop_size: int = 224
) -> tuple[float, float, float, float]:
    """The source region (original pixels) that the eval view's centre crop shows."""
    new_w, new_h, left, top = resize_center_crop_params(width, height, resize_size, crop_size)
    sx, sy = width / new_w, height / new_h
    return (left * sx, top * sy, (left + crop_size) * sx, (top + crop_size) * sy)


def train_crop(
    path: str | os.PathLike[str],
    rng: np.random.Generator,
    size: int = 224,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    draft_gap: float | None = DEFAULT_DRAFT_GAP,
) -> Image.Image:
    """Random resized crop to ``size x size`` (bilinear) and random horizontal flip of one file.

    Without reduce-on-decode this is exactly torchvision's ``resized_crop`` on a Pillow image
    (crop, then resize); a reduced decode resizes the scaled region directly.
    """
    image = open_image(path)
    with image:
        left, top, w, h = random_resized_crop_box(*image.size, rng, scale, ratio)
        flip = rng.random() < 0.5
        box = (left, top, left + w, top + h)
        rgb, region = load_rgb(image, box, (size, size), draft_gap)
        if region == box:
            out = rgb.crop(box).resize((size, size), BILINEAR)
        else:
            out = rgb.resize((size, size), BILINEAR, box=region)
    if flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def eval_crop(
    path: str | os.PathLike[str],
    size: int = 224,
    resize_size: int = 256,
    draft_gap: float | None = DEFAULT_DRAFT_GAP,
) -> Image.Image:
    """Deterministic eval view of one file: ``Resize(resize_size)`` + ``CenterCrop(size)``.

    Bit-identical to torchvision's transforms on a Pillow image whenever the JPEG is decoded at
    full scale (always for images under ``2 * 256`` pixels on the short side with the default
    `draft_gap`); a reduced decode is resized to the same size, so only the filter input differs.
    """
    image = open_image(path)
    with image:
        width, height = image.size
        new_w, new_h, left, top = resize_center_crop_params(width, height, resize_size, size)
        region = resize_center_crop_box(width, height, resize_size, size)
        rgb, _ = load_rgb(image, region, (size, size), draft_gap)
        resized = rgb.resize((new_w, new_h), BILINEAR)
    return resized.crop((left, top, left + size, top + size))


# RandAugment ---------------------------------------------------------------------------------

RANDAUGMENT_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Cutout",
    "SolarizeAdd",
)
_MAX_LEVEL = 10.0


def _affine(img: Image.Image, coeffs: Sequence[float], fill: int) -> Image.Image:
    # Pillow's affine maps output (x, y) to input (a x + b y + c, d x + e y + f).
    return img.transform(
        img.size, Image.Transform.AFFINE, tuple(coeffs), NEAREST, fillcolor=(fill,) * 3
    )


def _cutout(img: Image.Image, pad: int, fill: int, rng: np.random.Generator) -> Image.Image:
    width, height = img.size
    cy = int(rng.integers(0, height))
    cx = int(rng.integers(0, width))
    arr = np.array(img)
    arr[max(0, cy - pad) : min(height, cy + pad), max(0, cx - pad) : min(width, cx + pad)] = fill
    return Image.fromarray(arr)


def _solarize_add(img: Image.Image, addition: int, threshold: int = 128) -> Image.Image:
    arr = np.asarray(img)
    added = np.minimum(arr.astype(np.int16) + addition, 255).astype(np.uint8)
    return Image.fromarray(np.where(arr < threshold, added, arr))


def apply_randaugment_op(
    img: Image.Image,
    op: str,
    rng: np.random.Generator,
    magnitude: float = 10.0,
    fill: int = 128,
) -> Image.Image:
    """Apply one RandAugment op at `magnitude` (0-10); draws the sign (and cutout centre) from rng."""
    level = magnitude / _MAX_LEVEL

    def signed(value: float) -> float:
        return -value if rng.random() < 0.5 else value

    if op == "AutoContrast":
        return ImageOps.autocontrast(img)
    if op == "Equalize":
        return ImageOps.equalize(img)
    if op == "Invert":
        return ImageOps.invert(img)
    if op == "Rotate":
        return img.rotate(signed(level * 30.0), NEAREST, fillcolor=(fill,) * 3)
    if op == "Posterize":
        return ImageOps.posterize(img, int(level * 4))
    if op == "Solarize":
        return ImageOps.solarize(img, int(level * 256))
    if op in ("Color", "Contrast", "Brightness", "Sharpness"):
        enhancer = getattr(ImageEnhance, op)
        return enhancer(img).enhance(level * 1.8 + 0.1)
    if op == "ShearX":
        return _affine(img, (1.0, signed(level * 0.3), 0.0, 0.0, 1.0, 0.0), fill)
    if op == "ShearY":
        return _affine(img, (1.0, 0.0, 0.0, signed(level * 0.3), 1.0, 0.0), fill)
    if op == "TranslateX":
        return _affine(img, (1.0, 0.0, signed(level * 100.0), 0.0, 1.0, 0.0), fill)
    if op == "TranslateY":
        return _affine(img, (1.0, 0.0, 0.0, 0.0, 1.0, signed(level * 100.0)), fill)
    if op == "Cutout":
        return _cutout(img, int(level * 40), fill, rng)
    if op == "SolarizeAdd":
        return _solarize_add(img, int(level * 110))
    raise ValueError(f"unknown RandAugment op {op!r}; expected one of {RANDAUGMENT_OPS}")


def rand_augment(
    img: Image.Image,
    rng: np.random.Generator,
    num_ops: int = 2,
    magnitude: float = 10.0,
    fill: int = 128,
) -> Image.Image:
    """RandAugment: `num_ops` ops drawn uniformly (with replacement) from `RANDAUGMENT_OPS`."""
    for _ in range(num_ops):
        op = RANDAUGMENT_OPS[int(rng.integers(len(RANDAUGMENT_OPS)))]
        img = apply_randaugment_op(img, op, rng, magnitude, fill)
    return img


# Normalisation, CIFAR augmentation, mixup -----------------------------------------------------


@functools.lru_cache(maxsize=16)
def _normalize_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(channels, 256) float32: ``(float32(v) - mean) / std`` for every uint8 value v."""
    values = np.arange(256, dtype=np.float32)[None, :]
    table = (values - np.asarray(mean, np.float32)[:, None]) / np.asarray(std, np.float32)[:, None]
    table.setflags(write=False)
    return table


def normalize(
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``(images - mean) / std`` in float32, per channel (last axis), on 0-255 pixel values.

    uint8 input is looked up in a 256-entry table per channel (the same float32 arithmetic,
    about twice as fast as computing it per pixel).
    """
    if out is None:
        out = np.empty(images.shape, dtype=np.float32)
    if images.dtype == np.uint8:
        table = _normalize_table(tuple(float(m) for m in mean), tuple(float(s) for s in std))
        for c in range(images.shape[-1]):
            np.take(table[c], images[..., c], out=out[..., c])
        return out
    np.subtract(images, np.asarray(mean, dtype=np.float32), out=out, dtype=np.float32)
    np.divide(out, np.asarray(std, dtype=np.float32), out=out)
    return out


def pad_crop_flip(images: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """CIFAR train augmentation of a uint8 NHWC batch: zero-pad, random crop, random flip.

    Pads `pad` black pixels on every side (torchvision ``RandomCrop(32, padding=4)``; upstream's
    TF pipeline pads only 2 per side), takes a random crop of the original size and flips each
    image horizontally with probability 1/2. One vectorised gather; offsets and flips are drawn
    per row from `rng` (the per-batch generator), so row i's augmentation depends only on
    (seed, step, i).
    """
    n, height, width = images.shape[:3]
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flip = rng.random(n) < 0.5
    rows = dy[:, None] + np.arange(height)[None, :]
    cols_fwd = np.arange(width)[None, :]
    cols = dx[:, None] + np.where(flip[:, None], width - 1 - cols_fwd, cols_fwd)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def mixup_weight(rng: np.random.Generator, alpha: float) -> float:
    """The mixup weight ``w ~ Beta(alpha, alpha)`` (upstream: Gamma(a) / (Gamma(a) + Gamma(a)))."""
    return float(rng.beta(alpha, alpha))


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 one-hot rows; labels outside [0, num_classes) raise."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def mixup(
    batch: dict[str, np.ndarray],
    rng: np.random.Generator,
    alpha: float = 0.2,
    num_classes: int = 1000,
) -> dict[str, np.ndarray]:
    """Mixup of a whole (global) batch: ``x' = w x + (1 - w) roll(x, 1)``, same for soft labels.

    `batch['targets']` may be integer labels (turned into one-hot) or soft targets (B, C). Returns
    a new dict with float32 'inputs' and (B, num_classes) float32 'targets'; other keys are kept.
    A workload may call this on host batches; the ImageNet pipeline applies the same formula
    inside its workers (with the weight from `batch_rng(seed, step, TAG_MIXUP)`).
    """
    weight = np.float32(mixup_weight(rng, alpha))
    inputs = np.asarray(batch["inputs"], dtype=np.float32)
    targets = np.asarray(batch["targets"])
    if targets.ndim == 1:
        targets = one_hot(targets, num_classes)
    targets = targets.astype(np.float32, copy=False)
    out = dict(batch)
    out["inputs"] = weight * inputs + (1 - weight) * np.roll(inputs, 1, axis=0)
    out["targets"] = weight * targets + (1 - weight) * np.roll(targets, 1, axis=0)
    return out


def to_array(img: Image.Image) -> np.ndarray:
    """HWC uint8 view of an RGB Pillow image."""
    return np.asarray(img, dtype=np.uint8)


__all__: list[str] = [
    "RANDAUGMENT_OPS",
    "ImageDecodeError",
    "apply_randaugment_op",
    "batch_rng",
    "eval_crop",
    "example_rng",
    "load_rgb",
    "mixup",
    "mixup_weight",
    "normalize",
    "one_hot",
    "open_image",
    "pad_crop_flip",
    "rand_augment",
    "random_resized_crop_box",
    "resize_center_crop_box",
    "resize_center_crop_params",
    "to_array",
    "train_crop",
]
