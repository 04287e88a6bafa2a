"""YOLOv5's loss for one stride-32 head: anchor-ratio matching with neighbour cells, CIoU box
loss, objectness BCE towards the IoU, multi-label class BCE.

The box parametrisation (xy = 2 sigmoid - 0.5 + cell, wh = (2 sigmoid)^2 * anchor) is the one
`modules.board.detect.decode_head` inverts on the host.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# a target is also assigned to the neighbouring cell on the side its centre leans to (YOLOv5)
NEIGHBOUR_OFFSET = 0.5
NEIGHBOURS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32)


def ciou(box1, box2, eps=1e-7):
    """Complete IoU of matching rows of box1 and box2 (N, 4) given as cx, cy, w, h."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(1), box2.unbind(1)
    inter_w = (torch.min(x1 + w1 / 2, x2 + w2 / 2) - torch.max(x1 - w1 / 2, x2 - w2 / 2)).clamp(0)
    inter_h = (torch.min(y1 + h1 / 2, y2 + h2 / 2) - torch.max(y1 - h1 / 2, y2 - h2 / 2)).clamp(0)
    inter = inter_w * inter_h
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    # enclosing box diagonal and centre distance (DIoU), aspect consistency term (CIoU)
    cw = torch.max(x1 + w1 / 2, x2 + w2 / 2) - torch.min(x1 - w1 / 2, x2 - w2 / 2)
    ch = torch.max(y1 + h1 / 2, y2 + h2 / 2) - torch.min(y1 - h1 / 2, y2 - h2 / 2)
    diagonal, distance = cw**2 + ch**2 + eps, (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (distance / diagonal + v * alpha)


@dataclass
class Matches:
    image: torch.Tensor  # (T,) image index in the batch
    anchor: torch.Tensor  # (T,) anchor index
    cell_x: torch.Tensor  # (T,) grid column
    cell_y: torch.Tensor  # (T,) grid row
    box: torch.Tensor  # (T, 4) target cx, cy relative to the cell, w, h in grid units
    cls: torch.Tensor  # (T,) class index


def match_targets(targets, anchors_grid, nx, ny, threshold):
    """Targets (M, 6: image, class, cx, cy, w, h normalised) -> the (cell, anchor) pairs that
    learn them: every anchor whose side ratios are within `threshold`, in the centre's cell and
    in the two neighbour cells the centre leans to."""
    na = len(anchors_grid)
    scale = torch.tensor([nx, ny, nx, ny], dtype=torch.float32)
    t = targets[:, 2:6] * scale  # grid units
    anchor_id = torch.arange(na).view(na, 1).expand(na, len(targets))
    ratio = t[None, :, 2:4] / anchors_grid[:, None]
    keep = torch.max(ratio, 1 / ratio).max(2).values < threshold  # (na, M)
    rows = targets[None].expand(na, -1, -1)[keep]
    t, anchor_id = t[None].expand(na, -1, -1)[keep], anchor_id[keep]
    xy, xy_inverse = t[:, :2], torch.tensor([nx, ny]) - t[:, :2]
    lean_low = (xy % 1 < NEIGHBOUR_OFFSET) & (xy > 1)
    lean_high = (xy_inverse % 1 < NEIGHBOUR_OFFSET) & (xy_inverse > 1)
    use = torch.stack([torch.ones(len(t), dtype=torch.bool), *lean_low.T, *lean_high.T])
    offsets = (NEIGHBOURS * NEIGHBOUR_OFFSET)[:, None].expand(-1, len(t), -1)[use]
    rows, t, anchor_id = (
        rows.repeat(5, 1, 1)[use],
        t.repeat(5, 1, 1)[use],
        anchor_id.repeat(5, 1)[use],
    )
    cells = (t[:, :2] - offsets).long()
    cell_x, cell_y = cells[:, 0].clamp(0, nx - 1), cells[:, 1].clamp(0, ny - 1)
    box = torch.cat([t[:, :2] - torch.stack([cell_x, cell_y], 1), t[:, 2:]], 1)
    return Matches(rows[:, 0].long(), anchor_id, cell_x, cell_y, box, rows[:, 1].long())


class YoloLoss:
    """loss_fn(head, targets) -> (loss, parts) as the Trainer expects.

    The loss is YOLOv5's: a sum over the batch (mean x batch size), which SGD lr 0.01 is tuned
    for; `parts` holds the per-image box / obj / cls terms for the logs.
    """

    def __init__(self, anchors, num_classes, img_size, gains, anchor_threshold=4.0):
        self.anchors = torch.as_tensor(anchors, dtype=torch.float32).reshape(-1, 2)
        self.num_classes, self.img_size, self.threshold = num_classes, img_size, anchor_threshold
        # YOLOv5 scales its gains to the class count and image size (one output layer here)
        self.box_gain = gains["box"] * 3
        self.cls_gain = gains["cls"] * num_classes / 80 * 3
        self.obj_gain = gains["obj"] * (img_size / 640) ** 2 * 3

    def to(self, device):
        """Moves the anchors with the model (the Trainer places losses like modules)."""
        self.anchors = self.anchors.to(device)
        return self

    def __call__(self, head, targets):
        batch, _, ny, nx = head.shape
        na, no = len(self.anchors), 5 + self.num_classes
        p = head.view(batch, na, no, ny, nx).permute(0, 1, 3, 4, 2).float()
        anchors_grid = self.anchors * torch.tensor([nx, ny]) / self.img_size
        m = match_targets(targets.float(), anchors_grid, nx, ny, self.threshold)
        target_obj = torch.zeros_like(p[..., 4])
        box_loss = cls_loss = p.sum() * 0.0  # stays a graph node when nothing matched
        if len(m.image):
            ps = p[m.image, m.anchor, m.cell_y, m.cell_x]
            xy = ps[:, :2].sigmoid() * 2 - 0.5
            wh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors_grid[m.anchor]
            iou = ciou(torch.cat([xy, wh], 1), m.box)
            box_loss = (1.0 - iou).mean()
            order = iou.detach().argsort()  # where pairs share a cell, the best IoU is written last
            cells = (m.image[order], m.anchor[order], m.cell_y[order], m.cell_x[order])
            target_obj[cells] = iou.detach()[order].clamp(0).to(target_obj.dtype)
            cls_target = F.one_hot(m.cls, self.num_classes).float()
            cls_loss = F.binary_cross_entropy_with_logits(ps[:, 5:], cls_target)
        obj_loss = F.binary_cross_entropy_with_logits(p[..., 4], target_obj)
        parts = {
            "box": float(box_loss.detach() * self.box_gain),
            "obj": float(obj_loss.detach() * self.obj_gain),
            "cls": float(cls_loss.detach() * self.cls_gain),
        }
        total = box_loss * self.box_gain + obj_loss * self.obj_gain + cls_loss * self.cls_gain
        return total * batch, parts
