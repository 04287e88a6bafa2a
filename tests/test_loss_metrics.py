import numpy as np
import pytest
import torch

from modules.board.decisions import agreement_percent, decide
from modules.training.loss import BCELoss
from modules.training.metrics import classification_metrics

CLASSES = ["smoke", "fire"]


def test_loss_is_sum_of_per_class_bce():
    logits = torch.tensor([[2.0, -1.0], [-0.5, 0.3]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    total, per_class = BCELoss(CLASSES, 1.0)(logits, targets)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = [bce(logits[:, i], targets[:, i]) for i in range(2)]
    assert torch.allclose(per_class, torch.stack(expected))
    assert torch.isclose(total, sum(expected))


def test_smoke_weight_scales_only_positive_smoke_terms():
    logits = torch.tensor([[0.2, 0.2]])
    positives = torch.ones(1, 2)
    _, full = BCELoss(CLASSES, 1.0)(logits, positives)
    _, weighted = BCELoss(CLASSES, 0.5)(logits, positives)
    assert torch.isclose(weighted[0], full[0] * 0.5) and torch.isclose(weighted[1], full[1])
    _, neg_full = BCELoss(CLASSES, 1.0)(logits, torch.zeros(1, 2))
    _, neg_weighted = BCELoss(CLASSES, 0.5)(logits, torch.zeros(1, 2))
    assert torch.allclose(neg_full, neg_weighted)  # false alarms keep their full cost


def test_metrics_against_hand_counts():
    targets = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]])
    decisions = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 1]])
    m = classification_metrics(targets, decisions, CLASSES)
    # smoke: tp=2 fp=1 fn=1 tn=1 ; fire: tp=2 fp=1 fn=0 tn=2
    assert np.isclose(m["smoke_precision"], 2 / 3) and np.isclose(m["smoke_recall"], 2 / 3)
    assert np.isclose(m["fire_precision"], 2 / 3) and np.isclose(m["fire_recall"], 1.0)
    assert np.isclose(m["fire_f1"], 0.8) and np.isclose(m["smoke_accuracy"], 0.6)
    assert np.isclose(m["mean_f1"], (2 / 3 + 0.8) / 2)


def test_empty_class_scores_zero_not_nan():
    m = classification_metrics(np.zeros((4, 2)), np.zeros((4, 2)), CLASSES)
    assert m["mean_f1"] == 0.0 and m["smoke_accuracy"] == 1.0


def test_decision_threshold_on_logits():
    logits = np.array([[-0.01, 0.0], [2.0, -3.0]])
    assert decide(logits).tolist() == [[0, 1], [1, 0]]
    # threshold 0.88 ~ logit 2.0
    assert decide(logits, 0.9).tolist() == [[0, 0], [0, 0]]


def test_agreement_counts_images_whose_every_class_agrees():
    a = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    b = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])
    assert agreement_percent(a, b) == 50.0
    assert agreement_percent(decide([[-1.0, 1.0]]), decide([[-3.2, 0.0]])) == 100.0
    with pytest.raises(ValueError, match="shape"):
        agreement_percent(a, b[:, :1])
