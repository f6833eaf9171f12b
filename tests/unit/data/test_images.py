"""Shared image transforms: crops, eval view, reduce-on-decode, RandAugment, CIFAR aug, mixup."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from algoperf.data import images as I


def _photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like uint8 image (coarse random field upsampled, mild noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (h // 16 + 2, w // 16 + 2, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), np.float32)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _jpeg(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB", fmt: str = "JPEG") -> Path:
    img = Image.fromarray(_photo(w, h, seed))
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return path


# Random resized crop ---------------------------------------------------------------------------


def test_random_resized_crop_box_stays_inside_and_respects_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        w, h = int(rng.integers(20, 600)), int(rng.integers(20, 600))
        left, top, cw, ch = I.random_resized_crop_box(w, h, rng)
        assert left >= 0 and top >= 0 and cw > 0 and ch > 0
        assert left + cw <= w and top + ch <= h
        fraction = cw * ch / (w * h)
        # Rounding to whole pixels moves the sampled area and ratio a little.
        if not (cw == w or ch == h):
            assert 0.08 * 0.8 <= fraction <= 1.0
            assert 3 / 4 * 0.85 <= cw / ch <= 4 / 3 * 1.15


def test_random_resized_crop_box_falls_back_to_ratio_clamped_centre_crop():
    # A 1000x10 strip: no sampled crop fits, so the fallback keeps the full height at ratio 4/3.
    box = I.random_resized_crop_box(1000, 10, np.random.default_rng(0))
    assert box == (493, 0, 13, 10)
    box = I.random_resized_crop_box(10, 1000, np.random.default_rng(0))
    assert box == (0, 493, 10, 13)  # the full width at ratio 3/4
    # An image within the ratio range falls back to the whole image when attempts=0.
    assert I.random_resized_crop_box(400, 300, np.random.default_rng(0), attempts=0) == (
        0,
        0,
        400,
        300,
    )


def test_random_resized_crop_box_is_a_function_of_the_generator():
    a = [I.random_resized_crop_box(500, 375, I.example_rng(1, 2, r)) for r in range(20)]
    b = [I.random_resized_crop_box(500, 375, I.example_rng(1, 2, r)) for r in range(20)]
    c = [I.random_resized_crop_box(500, 375, I.example_rng(1, 3, r)) for r in range(20)]
    assert a == b
    assert a != c
    assert len(set(a)) > 15  # rows get different crops


def test_train_crop_is_torchvision_resized_crop_and_flip(tmp_path):
    """torchvision on a Pillow image: img.crop(box).resize((s, s), BILINEAR), then maybe flip."""
    path = _jpeg(tmp_path / "a.jpg", 160, 120)
    full = Image.open(path).convert("RGB")
    flips = set()
    for row in range(12):
        left, top, w, h = I.random_resized_crop_box(160, 120, I.example_rng(0, 0, row))
        out = np.asarray(I.train_crop(path, I.example_rng(0, 0, row), size=32))
        ref = np.asarray(
            full.crop((left, top, left + w, top + h)).resize((32, 32), Image.Resampling.BILINEAR)
        )
        if np.array_equal(out, ref):
            flips.add(False)
        else:
            np.testing.assert_array_equal(out, ref[:, ::-1])
            flips.add(True)
    assert flips == {False, True}


# Eval view -------------------------------------------------------------------------------------


def test_resize_center_crop_params_follow_torchvision_rules():
    # 500x375: shorter side 375 -> 256, longer int(256 * 500 / 375) = 341; offsets round(58.5)
    # = 58 (round half to even, as torchvision's Python round) and 16.
    assert I.resize_center_crop_params(500, 375) == (341, 256, 58, 16)
    assert I.resize_center_crop_params(333, 500) == (256, 384, 16, 80)
    assert I.resize_center_crop_params(256, 256) == (256, 256, 16, 16)
    box = I.resize_center_crop_box(500, 375)
    assert box == pytest.approx((58 * 500 / 341, 16 * 375 / 256, 282 * 500 / 341, 240 * 375 / 256))


@pytest.mark.parametrize("size", [(500, 375), (333, 500), (256, 256), (180, 140)])
def test_eval_crop_is_torchvision_resize_then_center_crop(tmp_path, size):
    path = _jpeg(tmp_path / "a.jpg", *size)
    img = Image.open(path).convert("RGB")
    w, h = size
    new = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    resized = img.resize(new, Image.Resampling.BILINEAR)
    top, left = round((new[1] - 224) / 2), round((new[0] - 224) / 2)
    ref = np.asarray(resized)[top : top + 224, left : left + 224]
    np.testing.assert_array_equal(np.asarray(I.eval_crop(path)), ref)


# Reduce-on-decode ------------------------------------------------------------------------------


def test_draft_leaves_typical_images_untouched(tmp_path):
    path = _jpeg(tmp_path / "a.jpg", 500, 375)
    np.testing.assert_array_equal(
        np.asarray(I.eval_crop(path, draft_gap=2.0)), np.asarray(I.eval_crop(path, draft_gap=None))
    )
    rng_a, rng_b = I.example_rng(0, 1, 2), I.example_rng(0, 1, 2)
    np.testing.assert_array_equal(
        np.asarray(I.train_crop(path, rng_a, draft_gap=2.0)),
        np.asarray(I.train_crop(path, rng_b, draft_gap=None)),
    )


def test_draft_reduces_large_images_with_small_difference(tmp_path):
    path = _jpeg(tmp_path / "big.jpg", 1600, 1200)
    img = I.open_image(path)
    rgb, region = I.load_rgb(img, None, (224, 224), draft_gap=2.0)
    assert rgb.size == (800, 600)  # decoded at half scale: 600 >= 2 x 224 still
    assert region == pytest.approx((0, 0, 800, 600))
    img = I.open_image(path)
    rgb, _ = I.load_rgb(img, I.resize_center_crop_box(1600, 1200), (224, 224), draft_gap=2.0)
    assert rgb.size == (800, 600)  # the eval crop shows 1050 px: 1/2 keeps 525 >= 448
    full = np.asarray(I.eval_crop(path, draft_gap=None), np.float32)
    drafted = np.asarray(I.eval_crop(path, draft_gap=2.0), np.float32)
    assert np.abs(full - drafted).mean() < 1.0  # well under one grey level on average
    # Without the margin (gap 1) libjpeg may go to 1/4 scale: larger difference.
    gap1 = np.asarray(I.eval_crop(path, draft_gap=1.0), np.float32)
    assert np.abs(full - gap1).mean() > np.abs(full - drafted).mean()


def test_decode_handles_grey_cmyk_and_png_named_jpeg(tmp_path):
    for name, mode, fmt in [
        ("g.JPEG", "L", "JPEG"),
        ("c.JPEG", "CMYK", "JPEG"),
        ("p.JPEG", "RGB", "PNG"),
    ]:
        path = _jpeg(tmp_path / name, 120, 90, mode=mode, fmt=fmt)
        assert np.asarray(I.eval_crop(path)).shape == (224, 224, 3)
        assert np.asarray(I.train_crop(path, I.example_rng(0, 0, 0))).shape == (224, 224, 3)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.JPEG"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(I.ImageDecodeError, match=r"broken\.JPEG"):
        I.eval_crop(bad)
    truncated = tmp_path / "truncated.JPEG"
    truncated.write_bytes(_jpeg(tmp_path / "ok.jpg", 200, 150).read_bytes()[:300])
    with pytest.raises(I.ImageDecodeError, match=r"truncated\.JPEG"):
        I.eval_crop(truncated)


# RandAugment -----------------------------------------------------------------------------------


@pytest.fixture
def square() -> Image.Image:
    return Image.fromarray(_photo(224, 224, seed=3))


def test_randaugment_pool_is_upstreams_sixteen_ops():
    assert len(I.RANDAUGMENT_OPS) == 16
    assert set(I.RANDAUGMENT_OPS) == {
        "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color",
        "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY",
        "Cutout", "SolarizeAdd",
    }  # fmt: skip


def test_randaugment_pixel_ops(square):
    x = np.asarray(square)
    rng = np.random.default_rng(0)

    def op(name):
        return np.asarray(I.apply_randaugment_op(square, name, rng))

    np.testing.assert_array_equal(op("Invert"), 255 - x)
    np.testing.assert_array_equal(op("Posterize"), x & 0xF0)  # 4 bits at magnitude 10
    np.testing.assert_array_equal(op("Solarize"), x)  # threshold 256: identity, as upstream
    added = np.where(x < 128, np.minimum(x.astype(int) + 110, 255), x)
    np.testing.assert_array_equal(op("SolarizeAdd"), added)
    np.testing.assert_array_equal(op("AutoContrast"), np.asarray(ImageOps.autocontrast(square)))
    np.testing.assert_array_equal(op("Equalize"), np.asarray(ImageOps.equalize(square)))
    for name in ("Color", "Contrast", "Brightness", "Sharpness"):
        ref = getattr(ImageEnhance, name)(square).enhance(1.9)
        np.testing.assert_array_equal(op(name), np.asarray(ref))


def test_randaugment_geometric_ops_fill_128(square):
    x = np.asarray(square)
    # Translate by +-100 pixels: the vacated 100 columns are grey, the rest is shifted.
    signs = set()
    for seed in range(8):
        out = np.asarray(I.apply_randaugment_op(square, "TranslateX", np.random.default_rng(seed)))
        if (out[:, -100:] == 128).all():
            np.testing.assert_array_equal(out[:, :124], x[:, 100:])
            signs.add("left")
        else:
            assert (out[:, :100] == 128).all()
            np.testing.assert_array_equal(out[:, 100:], x[:, :124])
            signs.add("right")
    assert signs == {"left", "right"}
    for name in ("Rotate", "ShearX", "ShearY", "TranslateY"):
        out = np.asarray(I.apply_randaugment_op(square, name, np.random.default_rng(1)))
        corners = out[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert (corners == 128).all(axis=1).any(), name  # some corner left the image: filled grey


def test_randaugment_cutout_is_a_clipped_80px_grey_square(square):
    x = np.asarray(square)
    for seed in range(10):
        out = np.asarray(I.apply_randaugment_op(square, "Cutout", np.random.default_rng(seed)))
        changed = np.argwhere((out != x).any(axis=-1))
        ys, xs = changed[:, 0], changed[:, 1]
        assert ys.max() - ys.min() < 80 and xs.max() - xs.min() < 80
        patch = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert (patch == 128).all()


def test_randaugment_is_deterministic_and_rejects_unknown_ops(square):
    a = np.asarray(I.rand_augment(square, np.random.default_rng(5)))
    b = np.asarray(I.rand_augment(square, np.random.default_rng(5)))
    np.testing.assert_array_equal(a, b)
    changed = sum(
        not np.array_equal(
            np.asarray(I.rand_augment(square, np.random.default_rng(s))), np.asarray(square)
        )
        for s in range(20)
    )
    assert changed >= 15  # only Solarize (identity) twice leaves an image unchanged
    with pytest.raises(ValueError, match="unknown RandAugment op"):
        I.apply_randaugment_op(square, "Blur", np.random.default_rng(0))


# Normalisation, CIFAR augmentation, mixup ------------------------------------------------------


def test_normalize_is_mean_std_on_255_scale():
    x = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    out = I.normalize(x, mean, std)
    assert out.dtype == np.float32
    ref = (x.astype(np.float64) - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def test_pad_crop_flip_takes_crops_of_the_zero_padded_image():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (64, 32, 32, 3)).astype(np.uint8)  # no zeros in the input
    out = I.pad_crop_flip(images, np.random.default_rng(7))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    offsets, flips = set(), set()
    for i in range(64):
        found = [
            (dy, dx, f)
            for dy in range(9)
            for dx in range(9)
            for f in (False, True)
            if np.array_equal(
                out[i],
                padded[i, dy : dy + 32, dx : dx + 32][:, ::-1]
                if f
                else padded[i, dy : dy + 32, dx : dx + 32],
            )
        ]
        assert found, f"row {i} is not a (flipped) crop of its padded image"
        offsets.add(found[0][:2])
        flips.add(found[0][2])
    assert flips == {False, True}
    assert len(offsets) > 20
    np.testing.assert_array_equal(out, I.pad_crop_flip(images, np.random.default_rng(7)))


def test_mixup_mixes_each_example_with_its_predecessor():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4, 4, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 1])
    out = I.mixup(
        {"inputs": x, "targets": labels, "weights": np.ones(5)}, np.random.default_rng(9), 0.2, 4
    )
    w = I.mixup_weight(np.random.default_rng(9), 0.2)
    np.testing.assert_allclose(out["inputs"], w * x + (1 - w) * np.roll(x, 1, axis=0), atol=1e-6)
    assert out["targets"].shape == (5, 4) and out["targets"].dtype == np.float32
    np.testing.assert_allclose(out["targets"].sum(axis=1), 1.0, rtol=1e-6)
    soft = out["targets"].astype(np.float64)
    assert soft[1, 1] == pytest.approx(w, abs=1e-6)
    assert soft[1, 0] == pytest.approx(1 - w, abs=1e-6)
    assert soft[0, 1] == pytest.approx(1 - w, abs=1e-6)  # row 0 mixes with the last row (label 1)
    assert "weights" in out
    with pytest.raises(ValueError, match="labels"):
        I.one_hot(np.array([4]), 4)


def test_mixup_weight_is_beta_alpha_alpha():
    from scipy import stats

    rng = np.random.default_rng(0)
    w = np.array([I.mixup_weight(rng, 0.2) for _ in range(4000)])
    assert ((w >= 0) & (w <= 1)).all()
    for q in (0.05, 0.25, 0.5):
        expected = stats.beta.cdf(q, 0.2, 0.2)
        assert abs((w < q).mean() - expected) < 0.03


def test_per_example_and_per_batch_generators_are_independent_streams():
    draws = {
        (s, t, r): I.example_rng(s, t, r).random()
        for s in range(2)
        for t in range(3)
        for r in range(3)
    }
    assert len(set(draws.values())) == len(draws)
    assert I.example_rng(1, 2, 0).random() == draws[(1, 2, 0)]
    assert I.batch_rng(1, 2, I.TAG_MIXUP).random() != I.example_rng(1, 2, I.TAG_MIXUP).random()
    assert math.isfinite(I.batch_rng(-5, 0, I.TAG_MIXUP).random())  # negative seeds are fine
