"""demo-tinier's QAT model (tinier-yolo W1A3) through the FINN flow with its binary layers
streaming their weights from DRAM, then the emulator on the whole demo test split against
Brevitas: identical head tensors, mAP@0.5 of both, and the FINN stages checked bit-exact on
FINN_VERIFY_IMAGES images (the QONNX stage against Brevitas too).

Run after `firesmoke run --profile demo-tinier --only 01 02` (uses the QAT checkpoint and its
QONNX export even when notebook 02 stopped at its equivalence check):
    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/tinier_emulator_agreement.py
"""

import json
import time

from qonnx.custom_op.registry import getCustomOp

import config
from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.dataflow.external_weights import external_weight_layers
from modules.hardware.emulator import Emulator
from modules.models.quant_layers import BitWidths
from modules.quantization.ptq import load_corrected_state
from modules.run_paths import run_paths
from modules.stages.finn_transform import quiet_finn_logs
from modules.tasks.registry import task_for
from modules.training.checkpoints import load_checkpoint


def qat_model(task, cfg, paths):
    bits = BitWidths.from_config(cfg)
    kind = f"brevitas-{bits.signature}"
    state = load_checkpoint(paths.checkpoint(kind), expected_kind=kind)["model"]
    return bits, load_corrected_state(task.build_quantized(cfg, bits), state).eval()


def streamed_folding(specialized):
    """Binary MVAUs at SIMD 8 (whole-byte DMA words) with their weights in DRAM."""
    return {
        n.name: {"SIMD": 8, "mem_mode": "external"}
        for n in specialized.graph.node
        if n.op_type.startswith("MVAU")
        and getCustomOp(n).get_nodeattr("weightDataType") == "BIPOLAR"
        and getCustomOp(n).get_nodeattr("MW") % 8 == 0
    }


def main():
    quiet_finn_logs()
    config.apply("demo-tinier", BREVITAS_MODEL=True)
    paths = run_paths(config).ensure()
    task = task_for(config)
    data = task.prepare_data(config)
    bits, model = qat_model(task, config, paths)
    qonnx = paths.qonnx(bits.tag, "head")
    started = time.time()
    out = paths.root / "bench_external"
    flow = finn_flow.run_flow(qonnx, out, "xc7z020clg400-1", target_fps=config.TARGET_FPS)
    folded, _ = finn_flow.fold(
        flow.models["specialized"],
        target_fps=config.TARGET_FPS,
        folding_config=streamed_folding(flow.models["specialized"]),
    )
    flow.folded = folded
    print(f"flow: {time.time() - started:.0f} s; streamed: {external_weight_layers(folded)}")
    images, _ = task.test_arrays(data["test"].dataset, config.FINN_VERIFY_IMAGES)
    stages = stage_check.flow_stages(flow, model, str(out), emulator=Emulator)
    table, _ = stage_check.stage_equivalence(stages, images)
    print(table[["compared_to", "identical_outputs_%", "max_abs_diff"]].to_string())
    all_images, truth = task.test_arrays(data["test"].dataset)
    design = stage_check.with_child(flow.parent, folded, out / "design_streamed.onnx")
    emulated = Emulator(design)(all_images)
    metrics = task.hardware_metrics(config, model, all_images, truth, emulated)
    print(json.dumps({"test_images": len(all_images), **metrics}, indent=2, default=float))


if __name__ == "__main__":
    main()
