"""YOLO txt labels (`class cx cy w h` per line, normalised 0..1) -> boxes and [smoke, fire] targets.

A label file either parses completely or the whole image is skipped with a short reason: one bad
line means the image's label is uncertain, and a wrong label is worse than a missing image.
The one parser of the project: training, `check-data` and the board runtime all read labels
here, so it ships in the board package (numpy only) and the repo imports it from there.
"""

from pathlib import Path

import numpy as np

# Skip reasons: short and stable, they are row names in the load reports.
WRONG_FIELD_COUNT = "wrong field count"
NON_NUMERIC = "non-numeric field"
UNKNOWN_CLASS_ID = "class id not in mapping"
OUTSIDE_UNIT_RANGE = "coordinates outside 0..1"
EMPTY_BOX = "box with zero or negative width or height"

# Writers print 6 decimals; rounding may step this far past the edge of the image.
COORD_TOLERANCE = 1e-6


def class_index_map(class_ids, classes):
    """{yolo class id: index in `classes`}; naming a class outside `classes` is a config bug."""
    unknown = sorted({name for name in class_ids.values() if name not in classes})
    if unknown:
        raise ValueError(
            f"class id mapping {class_ids} names {unknown}, which are not in CLASSES {classes}"
        )
    return {int(class_id): classes.index(name) for class_id, name in class_ids.items()}


def parse_line(line, index_of):
    """One non-blank line -> [class_index, cx, cy, w, h], or a skip reason string."""
    fields = line.split()
    if len(fields) != 5:
        return WRONG_FIELD_COUNT
    try:
        values = [float(field) for field in fields]
    except ValueError:
        return NON_NUMERIC
    if not np.all(np.isfinite(values)):
        return NON_NUMERIC
    class_id, coords = values[0], np.asarray(values[1:])
    if not class_id.is_integer() or int(class_id) not in index_of:
        return UNKNOWN_CLASS_ID
    if np.any(coords[2:] <= 0):
        return EMPTY_BOX
    if np.any(coords < -COORD_TOLERANCE) or np.any(coords > 1 + COORD_TOLERANCE):
        return OUTSIDE_UNIT_RANGE
    return [index_of[int(class_id)], *np.clip(coords, 0.0, 1.0)]


def parse_yolo_text(text, class_ids, classes):
    """Label text -> np.float32 (N, 5) [class_index, cx, cy, w, h], or the first skip reason."""
    index_of = class_index_map(class_ids, classes)
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = parse_line(line, index_of)
        if isinstance(row, str):
            return row
        rows.append(row)
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def read_yolo_label(path, class_ids, classes):
    """Parse one label file; an empty file means no objects (an image of neither class)."""
    # utf-8-sig drops a byte-order mark; undecodable bytes become U+FFFD -> "non-numeric field"
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    return parse_yolo_text(text, class_ids, classes)


def boxes_to_target(boxes, num_classes):
    """Multi-label target: 1.0 for every class that has at least one box."""
    target = np.zeros(num_classes, dtype=np.float32)
    target[boxes[:, 0].astype(np.int64)] = 1.0
    return target
