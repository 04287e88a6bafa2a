"""Seed 001's loss: BCE-with-logits on each output, summed; smoke weighted for precision."""

import torch
from torch import nn


class BCELoss(nn.Module):
    """Returns (total, per-class losses). `smoke_precision_weight` is the smoke pos_weight:
    below 1 a missed smoke costs less than a false smoke alarm, which raises smoke precision."""

    def __init__(self, classes, smoke_precision_weight=1.0):
        super().__init__()
        pos_weight = torch.ones(len(classes))
        pos_weight[classes.index("smoke")] = smoke_precision_weight
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits, targets):
        per_element = nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self.pos_weight, reduction="none"
        )
        per_class = per_element.mean(dim=0)
        return per_class.sum(), per_class.detach()
