"""The board runtime with a detector package: the head leaves the accelerator as NHWC integers,
the host applies the graph's Transpose and Mul, decodes with detect_spec.json and maps boxes
back through the letterbox (modules/board/accelerator.py, inference.py, preprocess.py)."""

import json

import cv2
import numpy as np
import pytest

from modules.board.accelerator import EmulatedAccelerator, load_io_spec
from modules.board.detect import DetectSettings, detect_raw, presence
from modules.board.inference import process_files
from modules.deployment.package import _check_head_scale
from modules.quantization.detect_head import write_detect_spec

ANCHORS, CLASSES, GRID, SIZE, SCALE = ((10.0, 14.0), (30.0, 20.0)), ["smoke", "fire"], 2, 64, 0.125
CHANNELS = len(ANCHORS) * (5 + len(CLASSES))


def port(shape):
    return {"finn_datatype": "INT8", "shape_normal": shape, "shape_folded": [*shape[:-1], 1,
            shape[-1]]}  # fmt: skip


@pytest.fixture
def package(tmp_path):
    """io_spec.json + detect_spec.json as notebook 04 writes them for a 2x2-grid detector."""
    settings = DetectSettings(ANCHORS, SIZE, conf_threshold=0.3, iou_threshold=0.4, max_det=10)
    quant = {"scale": SCALE, "zero_point": 0.0, "bit_width": 8, "signed": True}
    write_detect_spec(tmp_path / "detect_spec.json", quant, settings, CLASSES)
    io_spec = {
        "classes": CLASSES,
        "input": {
            **port([1, SIZE, SIZE, 3]),
            "finn_datatype": "UINT8",
            "layout": "NHWC",
            "host_layout": "NCHW",
            "host_shape": [1, 3, SIZE, SIZE],
        },  # fmt: skip
        "output": {
            **port([1, GRID, GRID, CHANNELS]),
            "host_ops": [
                {"op": "Transpose", "perm": [0, 3, 1, 2]},
                {"op": "Mul", "value": [SCALE]},
            ],
        },  # fmt: skip
        "detect_spec": "detect_spec.json",
    }
    (tmp_path / "io_spec.json").write_text(json.dumps(io_spec))
    return tmp_path


def head_with_one_box(rng):
    """Integer NHWC head: everything unlikely except one confident fire box in cell (0, 1)."""
    raw = np.full((1, GRID, GRID, CHANNELS), -100.0, np.float32)
    raw[0, 0, 1, 0:4] = rng.integers(-8, 8, 4)  # anchor 0: x, y, w, h
    raw[0, 0, 1, 4] = 40  # objectness 5.0 after the scale
    raw[0, 0, 1, 6] = 40  # class 1 (fire)
    return raw


def test_detections_use_the_graph_host_ops_and_the_spec(package):
    io_spec = load_io_spec(package / "io_spec.json")
    raw = head_with_one_box(np.random.default_rng(0))
    accelerator = EmulatedAccelerator(io_spec, lambda x: raw)
    got = accelerator.detections(raw)
    # the integer path the board spec describes: NCHW integers, the spec's own scale
    want = detect_raw(raw.transpose(0, 3, 1, 2), package / "detect_spec.json")
    assert len(got[0]) == 1 and got[0][0, 5] == 1  # the fire box alone
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    assert accelerator.decisions(raw).tolist() == [[False, True]]
    assert accelerator.is_detector and accelerator.postprocess(raw)[0].shape == (1, 6)


def test_process_files_maps_boxes_to_the_file_pixels(package, tmp_path):
    """A 32x64 image is letterboxed into 64x64 with 16 px of padding at the top: the box the
    accelerator reports in the square moves up by 16 px in the file's own pixels."""
    io_spec = load_io_spec(package / "io_spec.json")
    raw = head_with_one_box(np.random.default_rng(1))
    seen = []

    def hw_graph(x):
        seen.append(x.copy())
        return raw

    accelerator = EmulatedAccelerator(io_spec, hw_graph)
    image = tmp_path / "wide.png"
    cv2.imwrite(str(image), np.full((32, 64, 3), 200, np.uint8))
    results, times = process_files(accelerator, [image])
    square = accelerator.detections(raw)[0]
    np.testing.assert_allclose(results[0][:, [0, 2]], np.clip(square[:, [0, 2]], 0, 64))
    np.testing.assert_allclose(results[0][:, [1, 3]], np.clip(square[:, [1, 3]] - 16, 0, 32))
    assert (seen[0][0, :16] == 114).all() and (seen[0][0, 16:48] == 200).all()  # letterbox
    assert set(times) == {"preprocess", "accelerator", "postprocess"}


def test_process_files_leaves_out_unreadable_files_when_asked(package, tmp_path):
    io_spec = load_io_spec(package / "io_spec.json")
    raw = head_with_one_box(np.random.default_rng(1))
    accelerator = EmulatedAccelerator(io_spec, lambda x: raw)
    image, broken = tmp_path / "ok.png", tmp_path / "broken.jpg"
    cv2.imwrite(str(image), np.full((32, 64, 3), 200, np.uint8))
    broken.write_bytes(b"\xff\xd8 cut")
    unreadable = {}
    results, times = process_files(accelerator, [broken, image, broken], unreadable)
    assert len(results) == 1 and len(times["accelerator"]) == 1
    assert list(unreadable) == [broken] and "cannot read image" in unreadable[broken]
    with pytest.raises(OSError, match="broken.jpg"):  # without the dict: an error, as before
        process_files(accelerator, [image, broken])


def test_a_head_scale_that_disagrees_with_the_graph_is_refused(tmp_path):
    host_ops = [{"op": "Transpose", "perm": [0, 3, 1, 2]}, {"op": "Mul", "value": [0.25]}]
    spec = {"head": {"scale": 0.125}}
    with pytest.raises(ValueError, match="does not match the graph's output Mul"):
        _check_head_scale(spec, host_ops, tmp_path / "detect_spec.json")
    _check_head_scale({"head": {"scale": 0.25}}, host_ops, tmp_path / "detect_spec.json")


def test_presence_is_one_per_class_with_a_box():
    dets = [np.array([[0, 0, 1, 1, 0.9, 1], [0, 0, 1, 1, 0.8, 1]], np.float32),
            np.zeros((0, 6), np.float32)]  # fmt: skip
    assert presence(dets, 2).tolist() == [[False, True], [False, False]]


def test_a_missing_detect_spec_is_named(package):
    (package / "detect_spec.json").unlink()
    with pytest.raises(FileNotFoundError, match="detect_spec.json"):
        load_io_spec(package / "io_spec.json")
