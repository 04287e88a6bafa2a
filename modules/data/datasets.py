"""D-Fire, FASDD and the demo data -> `Sample`s with multi-label [smoke, fire] targets.

Nothing is silently relabelled or dropped: every file under a D-Fire split folder is kept or
skipped under a short reason with its name in a `LoadReport`, images are fully decoded at index
time (a truncated JPEG is skipped, not read as grey pixels), and conventions that decide a label
(D-Fire: no label file = neither) are counted as their own rows.
"""

from collections import Counter
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from modules.board.yolo_labels import boxes_to_target, read_yolo_label
from modules.data.demo_data import ensure_demo_dataset
from modules.data.folder_walk import walk_files
from modules.data.image_cache import load_or_build
from modules.data.preprocess import build_augmentation, load_rgb, preprocess, resize_square

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SUBSET_SEED = 20240607  # fixed: DS_LEN subsets and the D-Fire val slice never change between runs

# skip reasons and notes (row names of the report tables)
LABEL_WITHOUT_IMAGE = "label without image"
MISSING_IMAGE = "missing image"
UNREADABLE_IMAGE = "unreadable image"
TRUNCATED_IMAGE = "image does not fully decode (truncated or corrupt)"
NOT_AN_IMAGE = "file in images/ with no image extension"
NOT_A_LABEL = "file in labels/ that is not a .txt label"
DUPLICATE_LABEL = "second label file for the same image name"
OUTSIDE_LAYOUT = "not directly in images/ or labels/: not read"
IN_NO_LIST = "in images/ but in no split list"
KEYWORD_DISAGREES = "name keyword disagrees with boxes"
DFIRE_NO_LABEL = "images without label file: counted as neither (D-Fire convention)"
FASDD_NO_LABEL = "images without label file: no boxes, then checked against the name keyword"
NO_KEYWORD = "no class keyword in file name: not cross-checked"
DUPLICATE_ENTRY = "listed more than once: kept once"
BROKEN_LINK = "symbolic link to nothing"
FOLDER_SEEN_TWICE = "folders reached again through a symbolic link: read once"
FILES_SHOWN = 3  # skipped files named per reason in the printed table (all in `skip_list()`)

FASDD_SUBSETS = {  # DATASET value -> (subset name in the annotation folder, config key)
    "fasdd_cv": ("CV", "FASDD_CV_DIR"),
    "fasdd_uav": ("UAV", "FASDD_UAV_DIR"),
    "fasdd_rs": ("RS", "FASDD_RS_DIR"),
}
SOURCES = {  # DATASET value -> the sources it concatenates
    "demo": ["demo"],
    "dfire": ["dfire"],
    "fasdd": list(FASDD_SUBSETS),
    **{name: [name] for name in FASDD_SUBSETS},
    "dfire+fasdd": ["dfire", *FASDD_SUBSETS],
}
SPLITS = ("train", "val", "test")


@dataclass
class Sample:
    image_path: Path
    target: np.ndarray  # float32, one 0/1 entry per class in CLASSES order
    boxes: np.ndarray  # float32 (N, 5): class index in CLASSES, cx, cy, w, h (0..1); for detectors


def category_of(target, classes):
    """'none', a class name, or 'both' (every class present)."""
    present = [name for name, value in zip(classes, target, strict=True) if value > 0]
    if not present:
        return "none"
    if len(present) == len(classes) > 1:
        return "both"
    return "+".join(present)


@dataclass
class LoadReport:
    """What a split holds and what was left out of it, and why; print it or use `.table()`."""

    name: str
    classes: list
    kept: Counter  # category -> images kept
    skipped: Counter = field(default_factory=Counter)  # reason -> images left out
    notes: Counter = field(default_factory=Counter)  # convention or remark -> images concerned
    parts: list = field(default_factory=list)  # the sources' reports of a combined set
    skipped_files: dict = field(default_factory=dict)  # reason -> paths of the files skipped

    @property
    def n_kept(self):
        return sum(self.kept.values())

    @property
    def n_skipped(self):
        return sum(self.skipped.values())

    def table(self):
        """One row per kept category (zeros included), per note and per skip reason."""
        categories = ["none", *self.classes, "both"] if len(self.classes) == 2 else self.kept
        rows = [("kept", name, self.kept.get(name, 0)) for name in categories]
        rows += [("note", note, count) for note, count in sorted(self.notes.items())]
        rows += [("skipped", reason, count) for reason, count in sorted(self.skipped.items())]
        table = pd.DataFrame(rows, columns=["status", "item", "images"])
        table["files"] = [
            self.files_shown(item) if status == "skipped" else "" for status, item, _ in rows
        ]
        return table

    def files_shown(self, reason):
        files = self.skipped_files.get(reason, [])
        shown = ", ".join(Path(path).name for path in files[:FILES_SHOWN])
        return shown + (f" (+{len(files) - FILES_SHOWN} more)" if len(files) > FILES_SHOWN else "")

    def skip_list(self):
        """Every skipped file: one row per (set, reason, file); what the run's CSV holds."""
        rows = [
            (self.name, reason, str(path))
            for reason, files in sorted(self.skipped_files.items())
            for path in files
        ]
        return pd.DataFrame(rows, columns=["set", "reason", "file"])

    def __str__(self):
        lines = [f"{self.name}: {self.n_kept} images kept, {self.n_skipped} skipped"]
        lines += [
            f"  from {part.name}: {part.n_kept} kept, {part.n_skipped} skipped"
            for part in self.parts
        ]
        return "\n".join(lines + [self.table().to_string(index=False)])


@dataclass
class Scan:
    """What reading one folder found, before any DS_LEN subset."""

    name: str
    samples: list
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    skipped_files: dict = field(default_factory=dict)

    def skip(self, reason, path):
        self.skipped[reason] += 1
        self.skipped_files.setdefault(reason, []).append(str(path))


def require_path(path, what, config_key):
    if not Path(path).exists():
        raise FileNotFoundError(
            f"{what} not found: {Path(path)} (set {config_key} in config.py to the dataset folder)"
        )


def image_problem(path):
    """None if the image decodes completely, else the skip reason. A JPEG is decoded at 1/8
    scale (PIL draft): that still reads every byte, so truncation is found, at a fraction of the
    cost of a full decode."""
    try:
        image = Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return UNREADABLE_IMAGE
    try:
        with image:
            image.draft("RGB", (1, 1))
            image.load()
        return None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return TRUNCATED_IMAGE


def record(scan, image_path, boxes, classes):
    """Keep the image, or count why not (`boxes` is a skip reason, or the image is damaged)."""
    if isinstance(boxes, np.ndarray):
        boxes = image_problem(image_path) or boxes
    if isinstance(boxes, str):
        scan.skip(boxes, image_path)
    else:
        scan.samples.append(Sample(Path(image_path), boxes_to_target(boxes, len(classes)), boxes))


def split_files(split_dir):
    """(images, label files, every other file, folders reached twice) under a D-Fire split
    folder, each sorted; symlinked folders are followed (`walk_files`), extensions match
    case-insensitively (.JPG, .TXT)."""
    images_dir, labels_dir = split_dir / "images", split_dir / "labels"
    images, labels, others = [], [], []
    files, repeated = walk_files(split_dir)
    for path in files:
        suffix = path.suffix.lower()
        if path.parent == images_dir and suffix in IMAGE_SUFFIXES and path.is_file():
            images.append(path)
        elif path.parent == labels_dir and suffix == ".txt" and path.is_file():
            labels.append(path)
        else:
            others.append(path)
    return images, labels, others, repeated


def other_file_reason(path, split_dir):
    if not path.exists():
        return BROKEN_LINK
    if path.parent == split_dir / "images":
        return NOT_AN_IMAGE
    if path.parent == split_dir / "labels":
        return NOT_A_LABEL
    return OUTSIDE_LAYOUT


def scan_dfire_split(root, split, class_ids, classes, config_key="DFIRE_DIR", name=None):
    """Read root/split/{images,labels}; an image's label is its stem + .txt. Every file under
    root/split is kept or skipped with a reason."""
    split_dir = Path(root) / split
    require_path(split_dir / "images", f"{split} images folder", config_key)
    require_path(split_dir / "labels", f"{split} labels folder", config_key)
    images, labels, others, repeated = split_files(split_dir)
    if not images:
        raise ValueError(
            f"{split_dir / 'images'} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            f"set {config_key} in config.py to the dataset folder"
        )
    scan = Scan(name or f"D-Fire {split}", [])
    if repeated:
        scan.notes[FOLDER_SEEN_TWICE] += len(repeated)
    label_of = {}
    for label in labels:
        label_of.setdefault(label.stem, label)
    for image_path in images:
        label_path = label_of.get(image_path.stem)
        if label_path is not None:
            boxes = read_yolo_label(label_path, class_ids, classes)
        else:
            scan.notes[DFIRE_NO_LABEL] += 1
            boxes = np.zeros((0, 5), dtype=np.float32)
        record(scan, image_path, boxes, classes)
    stems = {path.stem for path in images}
    for label in labels:
        if label.stem not in stems:
            scan.skip(LABEL_WITHOUT_IMAGE, label)
        elif label_of[label.stem] != label:
            scan.skip(DUPLICATE_LABEL, label)
    for path in others:
        scan.skip(other_file_reason(path, split_dir), path)
    return scan


def name_keyword_category(image_path, classes):
    """FASDD names carry both / neither / smoke / fire; None when no single keyword is found."""
    words = set("".join(c if c.isalpha() else " " for c in Path(image_path).stem.lower()).split())
    found = words & {"both", "neither", *classes}
    if found == {"both"} or found == set(classes):
        return "both"
    if found == {"neither"}:
        return "none"
    return found.pop() if len(found) == 1 else None


def resolve_listed_image(entry, root, list_dir, images_dir):
    """A list entry -> an existing image path (the listed path first, then by name in images/)."""
    listed = Path(entry.strip().replace("\\", "/"))
    candidates = [listed] if listed.is_absolute() else [root / listed, list_dir / listed]
    candidates.append(images_dir / listed.name)
    return next((path for path in candidates if path.is_file()), None)


def fasdd_boxes(image_path, labels_dir, class_ids, classes, notes):
    """Boxes of one FASDD image, or a skip reason (label error, or the name keyword disagrees)."""
    label_path = labels_dir / f"{image_path.stem}.txt"
    if label_path.exists():
        boxes = read_yolo_label(label_path, class_ids, classes)
        if isinstance(boxes, str):
            return boxes
    else:
        notes[FASDD_NO_LABEL] += 1
        boxes = np.zeros((0, 5), dtype=np.float32)
    expected = name_keyword_category(image_path, classes)
    if expected is None:
        notes[NO_KEYWORD] += 1
    elif expected != category_of(boxes_to_target(boxes, len(classes)), classes):
        return KEYWORD_DISAGREES
    return boxes


def scan_fasdd_split(root, subset, split, class_ids, classes, config_key, name=None):
    """Read a FASDD subset: images/ and annotations/YOLO_<subset>/{labels/, <split>.txt}."""
    root = Path(root)
    annotations = root / "annotations" / f"YOLO_{subset}"
    images_dir, labels_dir = root / "images", annotations / "labels"
    list_file = annotations / f"{split}.txt"
    require_path(images_dir, f"FASDD_{subset} images folder", config_key)
    require_path(labels_dir, f"FASDD_{subset} labels folder", config_key)
    require_path(list_file, f"FASDD_{subset} {split} list file", config_key)
    scan, seen = Scan(name or f"FASDD_{subset} {split}", []), set()
    entries = [e for e in list_file.read_text(encoding="utf-8-sig").splitlines() if e.strip()]
    if not entries:
        raise ValueError(f"{list_file} lists no images; set {config_key} to the dataset folder")
    for entry in entries:
        image_path = resolve_listed_image(entry, root, list_file.parent, images_dir)
        if image_path is None:
            scan.skip(MISSING_IMAGE, entry.strip())
        elif image_path.resolve() in seen:
            scan.notes[DUPLICATE_ENTRY] += 1
        else:
            seen.add(image_path.resolve())
            boxes = fasdd_boxes(image_path, labels_dir, class_ids, classes, scan.notes)
            record(scan, image_path, boxes, classes)
    return scan


def deterministic_subset(items, n):
    """The first n of a fixed-seed shuffle: stable across calls, and subset(n) ⊂ subset(n + k)."""
    if n is None or n >= len(items):
        return list(items)
    order = np.random.default_rng(SUBSET_SEED).permutation(len(items))
    return [items[i] for i in order[:n]]


def carve_val(scan, fraction):
    """Split a train scan into (train, val) by a fixed-seed shuffle; D-Fire has no val split."""
    if not 0 < fraction < 1:
        raise ValueError(f"config.VAL_FRACTION = {fraction!r}; it must lie strictly in (0, 1)")
    order = np.random.default_rng(SUBSET_SEED).permutation(len(scan.samples))
    n_val = round(fraction * len(scan.samples))
    val_ids, train_ids = sorted(order[:n_val]), sorted(order[n_val:])
    moved = f"moved to val (VAL_FRACTION={fraction})"
    carved = f"carved from {scan.name} (VAL_FRACTION={fraction}); its skips are reported there"
    train = Scan(
        scan.name,
        [scan.samples[i] for i in train_ids],
        scan.skipped,
        scan.notes + Counter({moved: n_val}),
        scan.skipped_files,
    )
    val = Scan(
        scan.name.replace("train", "val"),
        [scan.samples[i] for i in val_ids],
        notes=Counter({carved: n_val}),
    )
    return train, val


def make_report(name, scans, samples, classes, parts=()):
    kept = Counter(category_of(sample.target, classes) for sample in samples)
    skipped = sum((scan.skipped for scan in scans), Counter())
    notes = sum((scan.notes for scan in scans), Counter())
    files = {}
    for scan in scans:
        for reason, paths in scan.skipped_files.items():
            files.setdefault(reason, []).extend(paths)
    return LoadReport(name, list(classes), kept, skipped, notes, list(parts), files)


def finish(name, scans, classes, ds_len):
    """Concatenate scans, take the DS_LEN subset, and report what was kept and skipped."""
    if ds_len is not None and (not isinstance(ds_len, Integral) or ds_len < 1):
        raise ValueError(f"config.DS_LEN = {ds_len!r}; use None (all) or a positive int")
    everything = [sample for scan in scans for sample in scan.samples]
    samples = deterministic_subset(everything, ds_len)
    parts = [make_report(s.name, [s], s.samples, classes) for s in scans] if len(scans) > 1 else []
    report = make_report(name, scans, samples, classes, parts)
    if len(samples) < len(everything):
        report.notes[f"left out by DS_LEN={ds_len}"] = len(everything) - len(samples)
    return samples, report


def load_dfire_split(root, split, class_ids, classes, ds_len=None, config_key="DFIRE_DIR"):
    """D-Fire layout root/{train,test}/{images,labels} -> (samples, report)."""
    scan = scan_dfire_split(root, split, class_ids, classes, config_key)
    return finish(scan.name, [scan], classes, ds_len)


def load_fasdd_split(root, subset, split, class_ids, classes, ds_len=None, config_key=None):
    """One FASDD subset ("CV", "UAV", "RS") -> (samples, report)."""
    config_key = config_key or f"FASDD_{subset}_DIR"
    scan = scan_fasdd_split(root, subset, split, class_ids, classes, config_key)
    return finish(scan.name, [scan], classes, ds_len)


def scan_source(cfg, source, split):
    if source == "demo":
        root = ensure_demo_dataset(cfg)
        return scan_dfire_split(
            root, split, cfg.DFIRE_CLASS_IDS, cfg.CLASSES, "DEMO_DIR", name=f"demo {split}"
        )
    if source == "dfire":
        args = (cfg.DFIRE_CLASS_IDS, cfg.CLASSES, "DFIRE_DIR")
        if split == "test":
            return scan_dfire_split(cfg.DFIRE_DIR, "test", *args)
        train, val = carve_val(scan_dfire_split(cfg.DFIRE_DIR, "train", *args), cfg.VAL_FRACTION)
        return train if split == "train" else val
    subset, key = FASDD_SUBSETS[source]
    return scan_fasdd_split(getattr(cfg, key), subset, split, cfg.FASDD_CLASS_IDS, cfg.CLASSES, key)


def build_split(cfg, split):
    """cfg.DATASET's `split` ("train", "val", "test") -> (samples, report); prints the report."""
    if cfg.DATASET not in SOURCES:
        raise ValueError(f"config.DATASET = {cfg.DATASET!r}; choose one of {list(SOURCES)}")
    if split not in SPLITS:
        raise ValueError(f"split = {split!r}; choose one of {list(SPLITS)}")
    scans = [scan_source(cfg, source, split) for source in SOURCES[cfg.DATASET]]
    name = scans[0].name if len(scans) == 1 else f"{cfg.DATASET} {split}"
    samples, report = finish(name, scans, cfg.CLASSES, cfg.DS_LEN)
    print(report)
    if not samples:
        raise ValueError(
            f"{name}: no usable images, all {report.n_skipped} skipped (see the table above)"
        )
    return samples, report


CHECKABLE = ("demo", "dfire", *FASDD_SUBSETS)  # single-folder datasets for `check_folder`


def split_scanner(dataset, root, classes, dfire_ids, fasdd_ids):
    """split -> a function scanning it, for the splits the folder has (D-Fire layout: split
    folders; FASDD: list files)."""
    root = Path(root)
    require_path(root, f"{dataset} folder", "--dir")
    if dataset in FASDD_SUBSETS:
        subset, key = FASDD_SUBSETS[dataset]
        lists = root / "annotations" / f"YOLO_{subset}"
        return {
            split: lambda s=split: scan_fasdd_split(root, subset, s, fasdd_ids, classes, key)
            for split in SPLITS
            if (lists / f"{split}.txt").is_file()
        }
    key = "DEMO_DIR" if dataset == "demo" else "DFIRE_DIR"
    return {
        split: lambda s=split: scan_dfire_split(root, s, dfire_ids, classes, key)
        for split in SPLITS
        if (root / split).is_dir()
    }


def scan_fasdd_unlisted(root, subset):
    """FASDD files no split reads: images/ files in no list, labels without an image, and other
    files in images/ or the YOLO labels folder (the "unlisted" row of `check_folder`)."""
    root = Path(root)
    annotations = root / "annotations" / f"YOLO_{subset}"
    images_dir, labels_dir = root / "images", annotations / "labels"
    require_path(images_dir, f"FASDD_{subset} images folder", f"FASDD_{subset}_DIR")
    require_path(labels_dir, f"FASDD_{subset} labels folder", f"FASDD_{subset}_DIR")
    listed = {
        path.resolve()
        for split in SPLITS
        if (annotations / f"{split}.txt").is_file()
        for entry in (annotations / f"{split}.txt").read_text(encoding="utf-8-sig").splitlines()
        if entry.strip()
        and (path := resolve_listed_image(entry, root, annotations, images_dir)) is not None
    }
    scan = Scan(f"FASDD_{subset} unlisted", [])
    images = sorted(p for p in images_dir.iterdir() if p.is_file())
    stems = {p.stem for p in images if p.suffix.lower() in IMAGE_SUFFIXES}
    for path in images:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            scan.skip(NOT_AN_IMAGE, path)
        elif path.resolve() not in listed:
            scan.skip(IN_NO_LIST, path)
    for path in sorted(p for p in labels_dir.iterdir() if p.is_file()):
        if path.suffix.lower() != ".txt":
            scan.skip(NOT_A_LABEL, path)
        elif path.stem not in stems:
            scan.skip(LABEL_WITHOUT_IMAGE, path)
    return scan


def check_folder(dataset, root, classes, dfire_ids, fasdd_ids):
    """{split: LoadReport, or the error that stops it} for every split of a dataset folder,
    without subsets or a val carve-out: what is on disk, file by file."""
    if dataset not in CHECKABLE:
        raise ValueError(f"dataset {dataset!r}: choose one of {list(CHECKABLE)}")
    scanners = split_scanner(dataset, root, classes, dfire_ids, fasdd_ids)
    if not scanners:
        raise FileNotFoundError(f"{root} holds no split ({', '.join(SPLITS)}) of a {dataset} set")
    results = {}
    for split, scan in scanners.items():
        try:
            found = scan()
            results[split] = make_report(found.name, [found], found.samples, classes)
        except (FileNotFoundError, ValueError) as error:
            results[split] = error
    if dataset in FASDD_SUBSETS:
        found = scan_fasdd_unlisted(root, FASDD_SUBSETS[dataset][0])
        results["unlisted"] = make_report(found.name, [found], [], classes)
    return results


class FireSmokeDataset(torch.utils.data.Dataset):
    """Samples -> (image float32 CHW 0..255, target float32), optionally augmented.

    The augmentation of item i in epoch e is seeded from (seed, e, i) alone, so it is the same
    whatever the worker count or the order of access, and a resumed run sees the same images.
    The epoch lives in shared memory: persistent loader workers see `set_epoch` (call it before
    the epoch's iterator is created). `images`, when set (see `use_cache`), holds every image
    decoded at img_size (modules/data/image_cache.py); augmentation then runs on those arrays.
    """

    def __init__(self, samples, img_size, augment, seed):
        self.samples, self.img_size, self.seed = list(samples), img_size, seed
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.augmentation = build_augmentation() if augment else None
        self.images = None

    def use_cache(self, settings, name):
        """Decode every image once into the cache (or reuse it); returns self."""
        paths = [sample.image_path for sample in self.samples]
        self.images = load_or_build(settings, name, paths, self.img_size)
        return self

    @property
    def epoch(self):
        return int(self._epoch.item())

    def set_epoch(self, epoch):
        self._epoch.fill_(int(epoch))

    def __len__(self):
        return len(self.samples)

    def augmentation_seed(self, index):
        return int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])

    def image(self, index):
        """Image `index` as RGB HWC uint8 at img_size."""
        if self.images is not None:
            return self.images[index]
        return resize_square(load_rgb(self.samples[index].image_path), self.img_size)

    def __getitem__(self, index):
        rgb = self.image(index)
        if self.augmentation is not None:
            # augment at model resolution: cheaper, and blur/noise strength is then size-stable
            self.augmentation.set_random_seed(self.augmentation_seed(index))
            rgb = self.augmentation(image=rgb)["image"]
        target = torch.from_numpy(self.samples[index].target.copy())
        return preprocess(rgb, self.img_size), target
