"""How the detector trains and is evaluated: YOLOv5's optimizer groups and schedule, the loss,
and COCO mAP over a loader (gathered over every rank under torchrun)."""

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from modules.board.detect import detect
from modules.data.boxes import collate_boxes
from modules.tasks.detect.settings import eval_settings
from modules.training.detection_metrics import coco_metrics
from modules.training.distributed import gather_objects, sum_over_ranks
from modules.training.trainer import CPU, OPTIMIZERS, to_device
from modules.training.yolo_loss import YoloLoss


def detector_optimizer(model, name, lr, momentum, weight_decay):
    """SGD (Nesterov) or Adam with YOLOv5's groups: decay on conv/linear weights only.

    Adam takes `momentum` as beta1, as YOLOv5's --optimizer Adam does.
    """
    decay, no_decay = [], []
    for module in model.modules():
        for param_name, param in module.named_parameters(recurse=False):
            is_norm = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
            (decay if param_name == "weight" and not is_norm else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0}]  # fmt: skip
    if name.lower() == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999))
    if name.lower() == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    raise ValueError(f"config.DET_OPTIMIZER = {name!r}; choose one of {OPTIMIZERS}")


class WarmupLinear:
    """LR factor per optimizer step: linear warm-up from 0, then linear decay to `final`.

    A class, not a lambda, so LambdaLR's state_dict stores it and a resumed run continues it.
    """

    def __init__(self, steps_per_epoch, epochs, warmup_epochs, final):
        self.steps_per_epoch, self.epochs = max(int(steps_per_epoch), 1), max(int(epochs), 1)
        self.warmup_steps = max(round(warmup_epochs * self.steps_per_epoch), 1)
        self.final = final

    def __call__(self, step):
        warm = min(1.0, (step + 1) / self.warmup_steps)
        progress = min(step / (self.steps_per_epoch * self.epochs), 1.0)
        return warm * ((1 - progress) * (1 - self.final) + self.final)


@dataclass
class DetectEvalResult:
    loss: float
    metrics: dict  # map50, map50_95, ap50_<class>
    detections: list  # per image (D, 6) in model-input pixels
    truths: list  # per image YOLO rows (class, cx, cy, w, h) normalised to the model input
    coco: object  # DetectionMetrics: per-class AP and PR curves

    @property
    def targets(self):
        """The ground truth per image (as the classifier's EvalResult.targets)."""
        return self.truths


def split_targets(targets, count):
    """Collated targets (M, 6) -> per image YOLO rows (n_i, 5)."""
    return [targets[targets[:, 0] == i, 1:].numpy() for i in range(count)]


def image_sizes(settings, count):
    return [(settings.img_size, settings.img_size)] * count


@torch.no_grad()
def evaluate_detector(model, loader, loss_fn, settings, classes, desc="eval", place=CPU):
    """Loss and COCO mAP of `model` over `loader`, decoded by the host's `detect`. Under
    torchrun each rank decodes its strided shard and one COCOeval scores every rank's images
    (the mAP of one process over the whole set)."""
    model.eval()
    total, count, detections, truths = 0.0, 0, [], []
    for images, targets in tqdm(loader, desc=desc, leave=False, disable=not place.world.is_main):
        images, targets = to_device(images, targets, place.device, place.channels_last)
        head = model(images)
        loss, _ = loss_fn(head, targets)
        total, count = total + loss.item() * len(images), count + len(images)
        detections += detect(head.float().cpu().numpy(), settings)
        truths += split_targets(targets.cpu(), len(images))
    detections = gather_objects(detections, place.world)
    truths = gather_objects(truths, place.world)
    total, count = sum_over_ranks([total, count], place.device, place.world)
    metrics = coco_metrics(truths, detections, image_sizes(settings, len(truths)), classes)
    return DetectEvalResult(total / max(count, 1), metrics.as_dict(), detections, truths, metrics)


def detection_loss(cfg, anchors):
    return YoloLoss(
        anchors, len(cfg.CLASSES), cfg.IMG_SIZE, cfg.DET_LOSS_GAINS, cfg.DET_ANCHOR_THRESHOLD
    )


class DetectLoop:
    """The detector's part of the Trainer loop (see trainer.ClassifyLoop)."""

    metric = "map50"
    collate_fn = staticmethod(collate_boxes)
    scheduler_per_batch = True

    def __init__(self, cfg, anchors, epochs=None):
        self.cfg, self.epochs = cfg, epochs or cfg.EPOCHS
        self.settings = eval_settings(cfg, anchors)

    def optimizer(self, model):
        cfg = self.cfg
        return detector_optimizer(
            model, cfg.DET_OPTIMIZER, cfg.DET_LEARNING_RATE, cfg.DET_MOMENTUM,
            cfg.DET_WEIGHT_DECAY,
        )  # fmt: skip

    def scheduler(self, optimizer, steps_per_epoch):
        cfg = self.cfg
        factor = WarmupLinear(
            steps_per_epoch, self.epochs, cfg.DET_WARMUP_EPOCHS, cfg.DET_FINAL_LR_FRACTION
        )
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def evaluate(self, model, loader, loss_fn, place=CPU):
        classes = self.cfg.CLASSES
        return evaluate_detector(model, loader, loss_fn, self.settings, classes, place=place)
