"""The run folder layout: RUNS_DIR/RUN_NAME/{logs,plots,weights,onnx,notebooks}."""

from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    root: Path
    logs: Path
    plots: Path
    weights: Path
    onnx: Path
    notebooks: Path

    def ensure(self):
        """Create the folders (called by the notebooks, never at config import)."""
        for field in fields(self):
            getattr(self, field.name).mkdir(parents=True, exist_ok=True)
        return self


def run_paths(cfg):
    root = Path(cfg.RUNS_DIR) / cfg.RUN_NAME
    return RunPaths(
        root=root,
        logs=root / "logs",
        plots=root / "plots",
        weights=root / "weights",
        onnx=root / "onnx",
        notebooks=root / "notebooks",
    )
