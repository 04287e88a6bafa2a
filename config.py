"""Every knob of the pipeline, as plain editable values.

Nothing happens at import: no folders are created and no files are read. Notebooks and tests
change values without editing this file through `apply(profile, **overrides)`; `snapshot()`
returns the values in force (it is what checkpoints record).
"""

import copy
import sys

# ---------------------------------------------------------------- logs and run folders
RUNS_DIR = "runs"  # every run gets RUNS_DIR/RUN_NAME/{logs,plots,weights,onnx,notebooks}
RUN_NAME = "default"

# ---------------------------------------------------------------- classes and datasets
CLASSES = ["smoke", "fire"]  # order of the model's two outputs
# YOLO class id in each dataset's label files -> our class name
DFIRE_CLASS_IDS = {0: "smoke", 1: "fire"}
FASDD_CLASS_IDS = {0: "fire", 1: "smoke"}

DATASET = "demo"  # demo | dfire | fasdd | fasdd_cv | fasdd_uav | fasdd_rs | dfire+fasdd
DEMO_DIR = "data/demo"  # generated on first use, git-ignored
DFIRE_DIR = "data/D-Fire"  # train/{images,labels}, test/{images,labels}
FASDD_CV_DIR = "data/FASDD_CV"  # images/, annotations/YOLO_CV/{labels/, train.txt, ...}
FASDD_UAV_DIR = "data/FASDD_UAV"
FASDD_RS_DIR = "data/FASDD_RS"
DS_LEN = None  # None = whole split; an int takes a deterministic subset of that size
VAL_FRACTION = 0.15  # D-Fire has no val split: this share of train becomes val

# demo data generator (modules/data/demo_data.py)
DEMO_SEED = 1234
DEMO_SPLITS = {"train": 1200, "val": 240, "test": 400}
DEMO_IMAGE_SIZE = 160  # written size; IMG_SIZE below is what the model sees

IMG_SIZE = 224

# ---------------------------------------------------------------- model
MODEL = "mobilenetv2_mini_resnet"  # or "mobilenetv2" (the original cfgs)
WIDTH_MULT = 1.0
BREVITAS_MODEL = False  # False: FP32 torch model; True: Brevitas quantized model
LOAD_MODEL = False  # True: resume from LOAD_MODEL_FILE (the run's last checkpoint if None)
LOAD_MODEL_FILE = None

# ---------------------------------------------------------------- training
SEED = 42
DEVICE = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
AMP = True  # mixed precision for FP32 training on CUDA (bf16, else fp16 + grad scaler); QAT: FP32
CHANNELS_LAST = "auto"  # auto (on CUDA) | True | False: NHWC memory layout for convolutions
SYNC_BATCHNORM = True  # under torchrun on GPUs: batch-norm statistics over all ranks' batches
OPTIMIZER = "adam"  # adam | sgd
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
MOMENTUM = 0.9  # sgd only
SCHEDULER_FACTOR = 0.5  # ReduceLROnPlateau on validation mean F1
SCHEDULER_PATIENCE = 2
EPOCHS = 30
BATCH_SIZE = 64
NUM_WORKERS = "auto"  # loader processes per rank; auto: 0 on <= 4 cores (cached data), else 4
# decoded training-size uint8 images, decoded once: "disk" (memory-mapped file under CACHE_DIR,
# reused across runs) | "memory" | "off" (decode every time)
IMAGE_CACHE = "disk"
CACHE_DIR = "data/cache"
AUGMENT = True
# BCE pos_weight of the smoke output: < 1 trades smoke recall for precision (fewer false alarms)
SMOKE_PRECISION_WEIGHT = 0.8
DECISION_THRESHOLD = 0.5  # on sigmoid(logit)
MIN_TEST_MEAN_F1 = None  # notebooks assert the test mean F1 reaches this (None: no floor)

# ---------------------------------------------------------------- quantization (Brevitas, FINN)
INPUT_BIT_WIDTH = 8
FIRST_LAYER_WEIGHT_BIT_WIDTH = 8
WEIGHT_BIT_WIDTH = 4
ACT_BIT_WIDTH = 4
LAST_LAYER_WEIGHT_BIT_WIDTH = 8
BIAS_BIT_WIDTH = 8
QAT_EPOCHS = None  # epochs of notebook 02 (None: EPOCHS); fewer suffice after FP32 init
QAT_INIT_FROM_FP32 = True  # start QAT from the run's fp32_best.pt when it exists
EQUIVALENCE_IMAGES = 32  # test images run through every exported graph and compared

# ---------------------------------------------------------------- FINN (notebook 03)
BOARD = "Pynq-Z2"  # or "Pynq-Z1": both carry the same xc7z020 part
BOARD_PARTS = {"Pynq-Z2": "xc7z020clg400-1", "Pynq-Z1": "xc7z020clg400-1"}
CLOCK_MHZ = 100
TARGET_FPS = 1000
FOLDING_CONFIG_FILE = None  # a folding JSON (PE/SIMD/ram_style per layer) instead of the search
RESOURCE_BUDGET_FRACTION = 0.9  # LUT, BRAM and DSP each at most this share of the part
FIT_TO_PART = True  # lower the target FPS until the design fits the budget
# FINN's default (36) caps an MVAU's weight stream per PE; the 8-bit stem (27 inputs) needs
# 8*27 bits to reach high frame rates at 224x224
MVAU_WWIDTH_MAX = 216
STANDALONE_THRESHOLDS = True  # thresholds as own layers: lets FINN use DSP-based RTL MVAUs
FINN_VERIFY_IMAGES = 32  # test images through every FINN stage (python execution is slow)

# ---------------------------------------------------------------- bitstream and board (04, 05)
# BOARD, BOARD_PARTS and CLOCK_MHZ above apply (Vivado targets a period of 1000 / CLOCK_MHZ ns)
BUILD_DIR_NAME = "build"  # RUNS_DIR/RUN_NAME/build: model, build config, run_build.sh, FINN output
GENERATE_BITFILE = True  # False: stop after the stitched IP (no bitfile, driver or package)
# out-of-context synthesis of the accelerator alone: its utilisation is what the estimates predict
OOC_SYNTH = True
DEPLOY_DIR_NAME = "deploy"  # RUNS_DIR/RUN_NAME/deploy: what gets copied to the board
FINN_PLUS_DRIVER_VERSION = "1.6.1"  # board-side runtime on PyPI; it pins numpy<2 like PYNQ images
ACCELERATOR_BACKEND = "auto"  # auto (board if pynq + bitfile, else emulator) | board | emulator

# ---------------------------------------------------------------- profiles
# Named sets of overrides. `demo` is what `make run` uses; `tiny` is what the tests use.
PROFILES = {
    "default": {},
    "demo": {
        "RUN_NAME": "demo",
        "DATASET": "demo",
        "IMG_SIZE": 96,
        "EPOCHS": 12,
        "QAT_EPOCHS": 6,
        "BATCH_SIZE": 32,
        "LEARNING_RATE": 3e-3,
        "SCHEDULER_PATIENCE": 1,
        "SCHEDULER_FACTOR": 0.3,
        "MIN_TEST_MEAN_F1": 0.95,
    },
    "tiny": {
        "RUN_NAME": "tiny",
        "DATASET": "demo",
        "DEMO_DIR": "data/demo_tiny",
        "DEMO_SPLITS": {"train": 48, "val": 16, "test": 16},
        "DEMO_IMAGE_SIZE": 64,
        "IMG_SIZE": 32,
        "EPOCHS": 2,
        "BATCH_SIZE": 16,
        "NUM_WORKERS": 0,
        "EQUIVALENCE_IMAGES": 4,
        "FINN_VERIFY_IMAGES": 4,
        "TARGET_FPS": 20000,
    },
}


def _knob_names():
    module = sys.modules[__name__]
    return [name for name in vars(module) if name.isupper() and name != "PROFILES"]


def snapshot():
    """The values in force, as a plain dict (safe to store in a checkpoint)."""
    module = sys.modules[__name__]
    return {name: getattr(module, name) for name in _knob_names()}


def apply(profile=None, **overrides):
    """Reset to the file's values, then set a profile's values, then `overrides`.

    Unknown names are errors, so a typo in a notebook parameter cannot pass silently.
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"config: unknown profile {profile!r}; known: {sorted(PROFILES)}")
    # deep copies: a run that mutates a list or dict value must not change the profiles
    values = copy.deepcopy({**PROFILES.get(profile, {}), **overrides})
    known = set(_knob_names())
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"config: unknown key(s) {unknown}; see config.py for the knobs")
    module = sys.modules[__name__]
    for name, value in {**copy.deepcopy(_FILE_VALUES), **values}.items():
        setattr(module, name, value)
    return snapshot()


_FILE_VALUES = copy.deepcopy(snapshot())
