import cv2
import numpy as np
import pytest
import torch

from modules.data.preprocess import build_augmentation, load_rgb, preprocess


def test_load_rgb_returns_rgb_order(tmp_path):
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    rgb = load_rgb(tmp_path / "red.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 10, 3)
    assert (rgb[..., 0] == 200).all() and (rgb[..., 1:] == 0).all()


def test_load_rgb_names_the_file_it_cannot_read(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(OSError, match="broken.jpg"):
        load_rgb(broken)
    with pytest.raises(OSError, match="absent.jpg"):
        load_rgb(tmp_path / "absent.jpg")


def test_preprocess_gives_float_chw_in_uint8_range_without_scaling():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    image[0, 0] = 255  # a saturated corner survives INTER_AREA
    image[:10, :10] = 255
    x = preprocess(image, 32)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert x.shape == (3, 32, 32)
    assert x.min() >= 0 and x.max() == 255
    assert x.max() > 1.5  # not scaled to 0..1: the model scales inside itself


def test_preprocess_resizes_with_inter_area_and_keeps_channel_order():
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0], image[..., 2] = 10, 250
    image[:32, :, 1] = 100
    x = preprocess(image, 16).numpy()
    expected = cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    np.testing.assert_array_equal(x, expected.astype(np.float32))
    assert (x[0] == 10).all() and (x[2] == 250).all()


def test_preprocess_rejects_what_is_not_rgb_uint8():
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((8, 8, 3), np.float32), 8)
    with pytest.raises(ValueError, match="RGB"):
        preprocess(np.zeros((8, 8), np.uint8), 8)


def augmented(image, seed):
    augmentation = build_augmentation()
    augmentation.set_random_seed(seed)
    return augmentation(image=image)["image"]


def test_augmentation_is_a_function_of_its_seed():
    image = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    first = augmented(image, 5)
    np.testing.assert_array_equal(first, augmented(image, 5))
    outputs = [augmented(image, seed) for seed in range(6)]
    assert len({out.tobytes() for out in outputs}) > 1
    assert first.shape == image.shape and first.dtype == np.uint8
