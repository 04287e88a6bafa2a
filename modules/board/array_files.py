"""Read .npy / .npz files with errors that name the file and say what is wrong with it.

numpy's own messages mislead here: an empty file gives "No data left in file", and a text
file "Cannot load file containing pickled data when allow_pickle=False", which suggests
loading it with pickles enabled; neither says which file. Numpy only (board runtime).
"""

import zipfile
import zlib
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
NPZ_MAGIC = b"PK"


def _check_header(path, magic, kind):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {kind} file")
    with path.open("rb") as file:
        head = file.read(len(magic))
    if not head:
        raise ValueError(f"{path}: empty file, not a {kind} array file")
    if head != magic:
        raise ValueError(f"{path}: not a {kind} file (no {kind} header: text or another format?)")


def load_npy(path):
    """The array in a .npy file; ValueError naming the file if it is empty, not .npy or cut."""
    _check_header(path, NPY_MAGIC, ".npy")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise ValueError(f"{path}: truncated or corrupt .npy file ({error})") from None


def load_npz(path, keys):
    """{key: array} for `keys` of a .npz file, read completely (so damage is found here);
    ValueError naming the file if it is empty, not .npz, truncated, corrupt or lacks a key."""
    _check_header(path, NPZ_MAGIC, ".npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in keys if key not in data]
            if missing:
                raise KeyError(missing)
            return {key: data[key] for key in keys}
    except KeyError as error:
        raise ValueError(f"{path}: .npz file lacks {error.args[0]}") from None
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{path}: truncated or corrupt .npz file ({error})") from None
