import numpy as np
import pytest

from modules.board.yolo_labels import (
    EMPTY_BOX,
    NON_NUMERIC,
    OUTSIDE_UNIT_RANGE,
    UNKNOWN_CLASS_ID,
    WRONG_FIELD_COUNT,
    boxes_to_target,
    parse_yolo_text,
    read_yolo_label,
)

CLASSES = ["smoke", "fire"]
DFIRE_IDS = {0: "smoke", 1: "fire"}
FASDD_IDS = {0: "fire", 1: "smoke"}


def test_parses_boxes_into_class_indices_of_classes():
    boxes = parse_yolo_text("0 0.5 0.5 0.2 0.3\n1 0.1 0.2 0.05 0.05\n", DFIRE_IDS, CLASSES)
    assert boxes.dtype == np.float32 and boxes.shape == (2, 5)
    np.testing.assert_allclose(boxes[0], [0, 0.5, 0.5, 0.2, 0.3])
    np.testing.assert_allclose(boxes[1], [1, 0.1, 0.2, 0.05, 0.05])


def test_the_mapping_decides_the_class_not_the_raw_id():
    # FASDD writes fire as 0: it must land on CLASSES.index("fire") == 1
    boxes = parse_yolo_text("0 0.5 0.5 0.2 0.3", FASDD_IDS, CLASSES)
    assert boxes[0, 0] == 1
    np.testing.assert_array_equal(boxes_to_target(boxes, 2), [0, 1])


def test_empty_text_and_blank_lines_mean_no_objects():
    for text in ["", "\n\n", "  \n\t\n"]:
        boxes = parse_yolo_text(text, DFIRE_IDS, CLASSES)
        assert boxes.shape == (0, 5)
        np.testing.assert_array_equal(boxes_to_target(boxes, 2), [0, 0])


def test_blank_lines_between_boxes_are_fine():
    boxes = parse_yolo_text("\n0 0.5 0.5 0.2 0.3\n\n1 0.5 0.5 0.2 0.3\n\n", DFIRE_IDS, CLASSES)
    np.testing.assert_array_equal(boxes_to_target(boxes, 2), [1, 1])


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("0 0.5 0.5 0.2", WRONG_FIELD_COUNT),
        ("0 0.5 0.5 0.2 0.3 0.9", WRONG_FIELD_COUNT),
        ("0 0.5 abc 0.2 0.3", NON_NUMERIC),
        ("0 0.5 nan 0.2 0.3", NON_NUMERIC),
        ("smoke 0.5 0.5 0.2 0.3", NON_NUMERIC),
        ("2 0.5 0.5 0.2 0.3", UNKNOWN_CLASS_ID),
        ("-1 0.5 0.5 0.2 0.3", UNKNOWN_CLASS_ID),
        ("0.5 0.5 0.5 0.2 0.3", UNKNOWN_CLASS_ID),
        ("0 1.2 0.5 0.2 0.3", OUTSIDE_UNIT_RANGE),
        ("0 0.5 -0.1 0.2 0.3", OUTSIDE_UNIT_RANGE),
        ("1 0.5 0.5 0.2 1.5", OUTSIDE_UNIT_RANGE),
    ],
)
def test_one_bad_line_skips_the_whole_image_with_its_reason(bad_line, reason):
    text = f"0 0.5 0.5 0.2 0.3\n{bad_line}\n1 0.5 0.5 0.1 0.1\n"
    assert parse_yolo_text(text, DFIRE_IDS, CLASSES) == reason


def test_integral_float_class_id_and_rounding_past_the_edge_are_accepted():
    boxes = parse_yolo_text("1.0 0.5 0.5 0.2 1.0000004", DFIRE_IDS, CLASSES)
    assert boxes[0, 0] == 1 and boxes[0, 4] == 1.0


def test_read_file_handles_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.3\r\n1 0.4 0.4 0.1 0.1\r\n")
    np.testing.assert_array_equal(
        boxes_to_target(read_yolo_label(path, DFIRE_IDS, CLASSES), 2), [1, 1]
    )


def test_undecodable_bytes_are_a_non_numeric_field(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"0 0.5 0.\xff5 0.2 0.3\n")
    assert read_yolo_label(path, DFIRE_IDS, CLASSES) == NON_NUMERIC


def test_mapping_that_names_an_unknown_class_is_a_config_error():
    with pytest.raises(ValueError, match="flame"):
        parse_yolo_text("0 0.5 0.5 0.2 0.3", {0: "smoke", 1: "flame"}, CLASSES)


@pytest.mark.parametrize("line", ["0 0.5 0.5 0 0.2", "1 0.5 0.5 0.2 0.0", "0 0.5 0.5 0.2 -0.1"])
def test_box_without_area_has_its_own_reason(line):
    assert parse_yolo_text("0 0.5 0.5 0.2 0.2\n" + line, DFIRE_IDS, CLASSES) == EMPTY_BOX
