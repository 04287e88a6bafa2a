"""The classifier's one decision rule and the one agreement figure (numpy only: runs on the board).

A class is present iff sigmoid(logit) >= threshold, evaluated on the logit as
logit >= log(t / (1 - t)); at the default 0.5 that is logit >= 0, which is also what a bipolar
output (+1 / -1) means, so logits and bipolar outputs go through the same rule.
"""

import math

import numpy as np


def logit_threshold(threshold=0.5):
    if not 0 < threshold < 1:
        raise ValueError(f"decision threshold must be in (0, 1), got {threshold}")
    return math.log(threshold / (1.0 - threshold))


def decide(outputs, threshold=0.5):
    """Logits or bipolar outputs (N, classes) -> int 0/1 decisions (N, classes)."""
    return (np.asarray(outputs) >= logit_threshold(threshold)).astype(np.int64)


def agreement_percent(decisions_a, decisions_b):
    """Share of images (rows) whose decisions agree on every class, in percent."""
    a = np.asarray(decisions_a).reshape(len(decisions_a), -1).astype(bool)
    b = np.asarray(decisions_b).reshape(len(decisions_b), -1).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"decision arrays differ in shape: {a.shape} vs {b.shape}")
    return 100.0 * float(np.mean(np.all(a == b, axis=1))) if len(a) else float("nan")
