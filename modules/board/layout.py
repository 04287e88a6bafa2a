"""Where the board runtime finds its files in a deployment package (board runtime: stdlib only).

The names are not chosen here: `modules/run_paths.py` owns them, `RunPaths.board_layout()` builds
this for the repo, and the package's `run_board.py` is written with the same names.
"""

from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class DeployLayout:
    root: Path
    io_spec: Path  # accelerator I/O description (modules/deployment/package.py)
    bitfile_dir: Path  # NAME.bit + NAME.hwh when the bitstream was built
    runtime_weights: Path  # the FINN driver's runtime-writable weights, if any
    recording: Path  # emulator outputs replayed by the self-check
    recording_images: Path  # the image files of that recording

    @classmethod
    def at(cls, root, names):
        """The layout under `root` from {field: path relative to the package}."""
        root = Path(root)
        missing = {f.name for f in fields(cls)} - {"root"} - set(names)
        if missing:
            raise ValueError(f"deployment layout names lack {sorted(missing)}")
        return cls(root, **{key: root / value for key, value in names.items()})
