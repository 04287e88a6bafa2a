"""Every file and folder name of a run, in one place: RUNS_DIR/RUN_NAME/...

Stages hand off through the files named here only (notebook 01 -> `checkpoint("fp32")`,
02 -> `qonnx(tag, "bipolar")`, 03 -> `handoff`, 04 -> `deploy`), so a name changes in one line.

    logs/       per-epoch CSV logs, test metrics JSON, tables for the run report
    plots/      figures                      weights/   <kind>_best.pt, <kind>_last.pt
    onnx/       exported graphs              finn/      FINN stage graphs, estimates, handoff.json
    build/      FINN build folder (04)       deploy/    what goes to the board (04)
    notebooks/  executed copies              report.md  the run report (report.json: figures)
"""

from dataclasses import dataclass
from pathlib import Path

FOLDERS = ("logs", "plots", "weights", "onnx", "notebooks", "finn", "build", "deploy")


@dataclass(frozen=True)
class RunPaths:
    root: Path
    build_name: str = "build"
    deploy_name: str = "deploy"

    # ------------------------------------------------------------ folders
    @property
    def logs(self):
        return self.root / "logs"

    @property
    def plots(self):
        return self.root / "plots"

    @property
    def weights(self):
        return self.root / "weights"

    @property
    def onnx(self):
        return self.root / "onnx"

    @property
    def notebooks(self):
        return self.root / "notebooks"

    @property
    def finn(self):
        return self.root / "finn"

    @property
    def estimates(self):
        return self.finn / "estimates"

    @property
    def build(self):
        return self.root / self.build_name

    @property
    def deploy(self):
        return self.root / self.deploy_name

    def ensure(self):
        """Create the folders (called by the notebooks, never at config import)."""
        for name in FOLDERS:
            getattr(self, name).mkdir(parents=True, exist_ok=True)
        return self

    # ------------------------------------------------------------ 01 / 02: training
    def checkpoint(self, kind, which="best"):
        if which not in ("best", "last"):
            raise ValueError(f"checkpoint which={which!r}: 'best' or 'last'")
        return self.weights / f"{kind}_{which}.pt"

    def train_log(self, kind):
        return self.logs / f"{kind}_log.csv"

    @property
    def data_skips(self):
        """Every file the data loaders skipped: set, reason, file."""
        return self.logs / "data_skipped.csv"

    def test_metrics(self, kind):
        return self.logs / f"{kind}_test_metrics.json"

    def table(self, name):
        return self.logs / f"{name}.csv"

    def plot(self, name):
        return self.plots / name

    @property
    def fp32_onnx(self):
        return self.onnx / "01_fp32.onnx"

    def qonnx(self, tag, head, cleaned=True):
        """02's exports: head 'logits' or 'bipolar'; raw (exporter output) or cleaned."""
        return self.onnx / f"02_brevitas_{tag}_{head}_{'clean' if cleaned else 'qonnx'}.onnx"

    @property
    def deployed_model(self):
        """Which quantized model (QAT or PTQ) notebooks 03-05 use (quantization/deployed.py)."""
        return self.onnx / "02_deployed_model.json"

    @property
    def sweep(self):
        """Notebook 06's design-space sweep: study.db, one folder per trial."""
        return self.root / "sweep"

    @property
    def sweep_choice(self):
        """06's recommended trial, as the record 03-05 take with DEPLOY_MODEL = "sweep"."""
        return self.sweep / "recommended.json"

    # ------------------------------------------------------------ 03: FINN
    @property
    def estimate_totals(self):
        return self.estimates / "estimates_totals.csv"

    @property
    def handoff(self):
        return self.finn / "handoff.json"

    @property
    def folding_config(self):
        return self.finn / "folding_config.json"

    @property
    def fifo_config(self):
        """The estimate's FIFO depths, which the bitstream build applies (04)."""
        return self.finn / "fifo_config.json"

    @property
    def design_folded(self):
        return self.finn / "10_design_folded.onnx"

    @property
    def design_parent(self):
        return self.finn / "10_design_parent.onnx"

    # ------------------------------------------------------------ 04 / 05: board
    @property
    def io_spec(self):
        return self.deploy / "io_spec.json"

    @property
    def deploy_bitfiles(self):
        return self.deploy / "bitfile"

    @property
    def deploy_driver(self):
        return self.deploy / "driver"

    @property
    def deploy_runtime_weights(self):
        return self.deploy_driver / "runtime_weights"

    @property
    def deploy_model(self):
        return self.deploy / "model"

    @property
    def board_runtime(self):
        """The board runtime package (a copy of modules/board/)."""
        return self.deploy / "firesmoke_board"

    @property
    def board_script(self):
        return self.deploy / "run_board.py"

    @property
    def board_notebook(self):
        return self.deploy / "board_inference.ipynb"

    @property
    def board_requirements(self):
        return self.deploy / "requirements-board.txt"

    @property
    def self_check(self):
        """Emulator outputs for a few images, replayed by `run_board.py --self-check`."""
        return self.deploy / "self_check"

    @property
    def self_check_recording(self):
        return self.self_check / "recording.npz"

    @property
    def self_check_images(self):
        return self.self_check / "images"

    def board_layout_names(self):
        """{DeployLayout field: path relative to deploy/}: what run_board.py is written with."""
        located = {
            "io_spec": self.io_spec,
            "bitfile_dir": self.deploy_bitfiles,
            "runtime_weights": self.deploy_runtime_weights,
            "recording": self.self_check_recording,
            "recording_images": self.self_check_images,
        }
        return {key: path.relative_to(self.deploy).as_posix() for key, path in located.items()}

    def board_layout(self):
        from modules.board.layout import DeployLayout

        return DeployLayout.at(self.deploy, self.board_layout_names())

    @property
    def detect_spec(self):
        """The detector's host-side decode: head scale, anchors, thresholds (board/detect.py)."""
        return self.deploy / "detect_spec.json"

    @property
    def report(self):
        return self.root / "report.md"

    @property
    def summary(self):
        """report.json: the headline figures of the run (modules/reporting/summary.py)."""
        return self.root / "report.json"


def run_paths(cfg):
    return RunPaths(Path(cfg.RUNS_DIR) / cfg.RUN_NAME, cfg.BUILD_DIR_NAME, cfg.DEPLOY_DIR_NAME)
