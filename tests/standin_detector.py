"""A tiny conv detector with the Darknet detector's interface, for tests only: UINT8-valued
float input (N, 3, H, W), raw head (N, anchors * (5 + classes), H / 32, W / 32) out."""

import torch


class StandIn(torch.nn.Module):
    def __init__(self, anchors=3, classes=2):
        super().__init__()
        chans = [3, 16, 32, 32, 64, 64]
        layers = []
        for cin, cout in zip(chans, chans[1:], strict=False):
            layers += [torch.nn.Conv2d(cin, cout, 3, 2, 1), torch.nn.BatchNorm2d(cout)]
            layers += [torch.nn.ReLU()]
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Conv2d(64, anchors * (5 + classes), 1)
        self.num_anchors, self.classes = anchors, classes

    def forward(self, x):
        return self.head(self.body(x / 255.0))
