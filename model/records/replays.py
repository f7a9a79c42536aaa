"""Every replay of a sealed file is itself on record: which file (name and SHA-256), when, on which
host and by which operating-system user (`os:USER`), and what it wrote and skipped. `serve.py
--replay`, a batch's unsent file and the API journal's automatic replays all leave this row, so a
decision that came in by replay can be traced to the file that brought it."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, insert

from .access import shell
from .tables import replays


def record_replay(conn: Connection, path: Path, file_sha256: str, *, written: int, skipped: int) -> None:
    """Add the replay's row in `conn`'s transaction (the one that wrote its decisions, where it can)."""
    conn.execute(insert(replays).values(
        file_name=Path(path).name[:255], file_sha256=file_sha256, replayed_at=datetime.now(UTC),
        host=socket.gethostname()[:200], replayed_by=shell().label, written=written, skipped=skipped))
