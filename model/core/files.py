"""Files LoanDesk creates: never at a name someone could have planted first, private when they hold data.

A predictable temporary name lets another user plant a symlink there and have us overwrite the file
it points to; a world-readable decision log or unsent file hands applicants' data to every account
on the host. So temporaries come from `mkstemp` (O_CREAT | O_EXCL, a random name) in the target's
own folder (so the final rename is atomic), and what holds decisions is created readable and
writable by its owner only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if missing; a folder we create is its owner's only."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def create_private(path: Path, mode: str = "wb") -> IO:
    """Open a new file for writing, owner-only; refuses (FileExistsError) if anything is at `path`,
    a symlink included, so a planted link is never followed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    return os.fdopen(fd, mode)


@contextmanager
def temporary_beside(target: Path, *, suffix: str = "") -> Iterator[Path]:
    """A new, empty, owner-only temporary file in `target`'s folder, removed unless it was renamed.

    Use `os.replace(temp, target)` to publish it; the rename is atomic on one file system.
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".partial", dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def publish(temp: Path, target: Path, *, mode: int | None = None) -> None:
    """Rename a finished temporary onto `target` (atomic), first giving it `mode` if asked."""
    if mode is not None:
        os.chmod(temp, mode)
    os.replace(temp, target)


def write_replacing(target: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> Path:
    """Write `data` as `target`, whole or not at all: into a `temporary_beside` it (a random name,
    created exclusively, so a link planted at either name is never followed), synced, given
    `mode`, then renamed onto `target` (a link there is replaced, not written through)."""
    target = Path(target)
    with temporary_beside(target) as temp:
        with open(temp, "r+b") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        publish(temp, target, mode=mode)
    return target


def shared_mode() -> int:
    """The mode a plain new file gets under the process's umask (for files that hold no applicant data)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
