"""Training throughput (images/s) of the FP32 and the Brevitas QAT model, measured in one run.

    python benchmarks/bench_training.py [--size 224] [--batch 32] [--steps 6]

Measures forward + backward + Adam step on random UINT8-range images (data loading excluded),
after warm-up steps, with torch's default thread count.
"""

import argparse
import time

import torch

import config
from modules.models.architecture import build_model
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.training.loss import BCELoss


def training_images_per_second(model, size, batch, steps, warmup=2):
    images = torch.randint(0, 256, (batch, 3, size, size)).float()
    targets = torch.randint(0, 2, (batch, len(config.CLASSES))).float()
    loss_fn = BCELoss(config.CLASSES, config.SMOKE_PRECISION_WEIGHT)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        loss, _ = loss_fn(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.size}x{args.size}, batch {args.batch}"
    )
    fp32 = training_images_per_second(
        build_model(config.MODEL, len(config.CLASSES)), args.size, args.batch, args.steps
    )
    print(f"FP32 {config.MODEL} training: {fp32:.1f} images/s")
    bits = BitWidths.from_config(config)
    quant = build_quant_model(config.MODEL, len(config.CLASSES), 1.0, bits)
    qat = training_images_per_second(quant, args.size, args.batch, args.steps)
    print(f"QAT {bits.tag} {config.MODEL} training: {qat:.1f} images/s")
    print(f"QAT / FP32 throughput ratio: {qat / fp32:.2f} (QAT is {fp32 / qat:.1f}x slower)")


if __name__ == "__main__":
    main()
