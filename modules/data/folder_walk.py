"""Every file under a dataset folder, following symbolic links to folders (datasets are often
linked in from another disk) without looping: a folder reached a second time (a link loop, or
two links to one folder) is read once, where it is nearest the root, and reported."""

import os
from collections import deque
from pathlib import Path


def walk_files(root):
    """(files sorted, folders not read again) under `root`, breadth first so each folder is
    read under its shortest path; files include links to files and broken links."""
    files, repeated, seen = [], [], set()
    queue = deque([Path(root)])
    while queue:
        folder = queue.popleft()
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:
            repeated.append(folder)
            continue
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                (queue if entry.is_dir() else files).append(Path(entry.path))
    return sorted(files), repeated
