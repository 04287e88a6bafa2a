"""Seed 004's gate decides which quantized model notebooks 03-05 use (train_brevitas.deploy_choice):
the PTQ model within MAX_PTQ_DROP (exported and checked), else the QAT model; the record that
notebook 02 writes loads back the chosen weights."""

import types

import pytest
import torch

import config
from modules.models.quant_layers import BitWidths
from modules.quantization.deployed import DeployedModel, load_deployed_model
from modules.quantization.equivalence import torch_stage
from modules.quantization.ptq import PtqGate, calibrate, ptq_bit_widths, ptq_kind
from modules.run_paths import run_paths
from modules.stages import train_brevitas, train_fp32
from modules.tasks.classify import ClassifyTask
from modules.tasks.classify.data import stack_dataset
from modules.training.checkpoints import save_checkpoint


@pytest.fixture(scope="module")
def classifier_run(tiny_dirs):
    """A tiny quantized classifier (QAT stand-in) and a PTQ model, each saved as a checkpoint,
    the QAT one exported as notebook 02 does (each test writes its own record)."""
    try:
        values = config.apply("tiny", **tiny_dirs, BREVITAS_MODEL=True, RUN_NAME="deployed")
    finally:
        config.apply()
    cfg = types.SimpleNamespace(**values)
    cfg.snapshot = lambda: vars(cfg)
    paths = run_paths(cfg).ensure()
    task = ClassifyTask()
    data = task.prepare_data(cfg)
    images, _ = stack_dataset(data["train"].dataset, 16)
    models = {}
    for kind, bits in ((train_fp32.model_kind(cfg), BitWidths.from_config(cfg)),
                       (ptq_kind(cfg), ptq_bit_widths(cfg))):  # fmt: skip
        model = task.build_quantized(cfg, bits)
        with torch.no_grad():
            model.train()(torch.as_tensor(images))  # activation scales from real images
        model.eval()
        torch.manual_seed(len(models))
        for param in model.parameters():  # distinct weights: loading the wrong one shows
            param.data += 0.05 * torch.randn_like(param)
        if kind == ptq_kind(cfg):  # as run_ptq: bias correction adds biases to bias-free convs
            calibrate(model, torch.as_tensor(images))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        save_checkpoint(paths.checkpoint(kind), model, optimizer, scheduler, 0, {}, {}, kind)
        models[kind] = model
    qat_exports = task.export_quantized(cfg, models[train_fp32.model_kind(cfg)], paths)
    return types.SimpleNamespace(cfg=cfg, paths=paths, task=task, data=data, models=models,
                                 qat_exports=qat_exports)  # fmt: skip


def ptq_candidate(run, ptq_metric):
    model = run.models[ptq_kind(run.cfg)]
    result, _ = run.task.evaluate_on_test(run.cfg, model, run.data, run.paths, "ptq-eval")
    gate = PtqGate("mean_f1", 0.8, ptq_metric, run.cfg.MAX_PTQ_DROP)
    return model, gate, result


def outputs_of(model, images):
    return torch_stage(model)(images)


def test_ptq_within_the_drop_is_exported_and_deployed(classifier_run):
    run = classifier_run
    ptq = ptq_candidate(run, ptq_metric=0.79)  # 1.25 % drop, under MAX_PTQ_DROP = 5 %
    deployed = train_brevitas.deploy_choice(run.task, run.cfg, run.paths, run.data,
                                            run.qat_exports, ptq)  # fmt: skip
    assert deployed.choice == "ptq" and deployed.kind == ptq_kind(run.cfg)
    assert deployed.bits == ptq_bit_widths(run.cfg) and deployed.bits.weight == 8
    assert deployed.qonnx.is_file() and deployed.qonnx != run.qat_exports["deploy"]
    assert f"_{deployed.bits.tag}_bipolar" in deployed.qonnx.name
    assert "use the PTQ model" in deployed.reason
    fresh = set(run.task.build_quantized(run.cfg, deployed.bits).state_dict())
    assert any(key.endswith(".bias") for key in set(ptq[0].state_dict()) - fresh)
    loaded, model = load_deployed_model(run.task, run.cfg, run.paths)
    assert loaded == deployed
    images, _ = stack_dataset(run.data["test"].dataset, 4)
    expected = outputs_of(run.models[ptq_kind(run.cfg)], images)
    assert (outputs_of(model, images) == expected).all()


def test_ptq_over_the_drop_leaves_the_qat_model(classifier_run):
    run = classifier_run
    ptq = ptq_candidate(run, ptq_metric=0.5)  # 37.5 % drop
    deployed = train_brevitas.deploy_choice(run.task, run.cfg, run.paths, run.data,
                                            run.qat_exports, ptq)  # fmt: skip
    qat_kind = train_fp32.model_kind(run.cfg)
    assert deployed.choice == "qat" and deployed.kind == qat_kind
    assert deployed.qonnx == run.qat_exports["deploy"]
    assert "exceeds MAX_PTQ_DROP" in deployed.reason
    _, model = load_deployed_model(run.task, run.cfg, run.paths)
    images, _ = stack_dataset(run.data["test"].dataset, 4)
    assert (outputs_of(model, images) == outputs_of(run.models[qat_kind], images)).all()


def test_without_a_record_notebook_03_names_notebook_02(tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 02"):
        DeployedModel.load(tmp_path / "02_deployed_model.json")
