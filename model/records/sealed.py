"""Sealed files: JSON lines that go into the decision log only if this host (or a replica sharing
its replay key) wrote them.

An unsent file, a batch's spool or a journal segment is a list of decisions waiting to go on record.
Anyone who could drop a file where the replay reads could otherwise put forged, backdated
decisions on record. So every such file carries seals: a seal is a line
`{"loandesk_seal": "hmac-sha256:<hex>"}` whose HMAC-SHA256, under the replay key, covers every byte
of the file before it (earlier seals included). A writer seals what it has written whenever it
makes it durable: a batch file once, when it is complete; the journal after every append, in the
same write and before its fsync. A reader accepts only lines a valid seal covers:

- a seal that does not match refuses the whole file (it was altered, or sealed with another key);
- a file with no seal at all is refused (LoanDesk did not write it, or never finished it);
- lines after the last seal are left out and counted (`SealedReader.left_out`): a write torn by a
  crash before its fsync, which nobody was answered for, or lines appended by someone else.

The key is `LOANDESK_REPLAY_KEY` (give replicas the same one to replay each other's files), else a
random key made on first use in `LOANDESK_REPLAY_KEY_FILE` (`data/replay.key`), its owner's only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson

from model.core import config
from model.core.errors import LoanDeskError
from model.core.files import create_private, private_dir

SEAL_KEY = "loandesk_seal"
SCHEME = "hmac-sha256"
_SEAL_PREFIX = b'{"' + SEAL_KEY.encode() + b'":'


class UnsealedFileError(LoanDeskError, ValueError):
    """A file offered for replay is not sealed by this host's replay key: nothing of it is written."""


def replay_key() -> bytes:
    """The key that seals and opens replay files: LOANDESK_REPLAY_KEY, else the host's key file."""
    configured = config.replay_key()
    if configured:
        return configured
    path = config.replay_key_file()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    try:
        with create_private(path, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    except FileExistsError:  # another process made it first: use theirs
        pass
    return bytes.fromhex(path.read_text().strip())


class Sealer:
    """The running HMAC of one file: `lines` turns entries into bytes that end in their seal."""

    def __init__(self, key: bytes | None = None):
        self._mac = hmac.new(key if key is not None else replay_key(), digestmod=hashlib.sha256)

    def line(self, data: bytes) -> bytes:
        """One line of JSON (without its newline), as bytes to write."""
        out = data + b"\n"
        self._mac.update(out)
        return out

    def seal(self) -> bytes:
        """The seal over everything so far, as bytes to write."""
        out = orjson.dumps({SEAL_KEY: f"{SCHEME}:{self._mac.hexdigest()}"}) + b"\n"
        self._mac.update(out)
        return out

    def sealed(self, lines: Iterable[bytes]) -> bytes:
        """Lines and their seal, to be written in one go."""
        return b"".join(self.line(data) for data in lines) + self.seal()


class SealedWriter:
    """Write JSON lines to a new owner-only file; `close()` appends the seal and syncs to disk.

    A file that was never closed (the process was killed) has no seal, so it is never replayed.
    """

    def __init__(self, path: Path, key: bytes | None = None):
        self.path = Path(path)
        private_dir(self.path.parent)
        self._sealer = Sealer(key)
        self._fh: IO[bytes] = create_private(self.path)
        self.lines = 0

    def write(self, record: dict) -> None:
        self.write_raw(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))

    def write_raw(self, line: bytes) -> None:
        """One line of JSON (without its newline)."""
        self._fh.write(self._sealer.line(line))
        self.lines += 1

    def close(self) -> Path:
        self._fh.write(self._sealer.seal())
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self.path

    def abandon(self) -> None:
        """Close without a seal and remove the file."""
        self._fh.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(self, kind, _value, _tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


class SealedReader:
    """The lines of a sealed file, each handed out only once a valid seal covers it.

    Iterate to get `(line number, bytes)` for every JSON line a seal covers (seals left out); the
    file is read once, and the same bytes are hashed (`sha256`) and handed out. Raises
    UnsealedFileError when a seal does not match or, at the end, when there was none.
    """

    def __init__(self, path: Path, key: bytes | None = None):
        self.path = Path(path)
        self.key = key
        self.sha256 = ""
        self.left_out = 0  # lines after the last seal (a torn write, never answered): not handed out
        self.seals = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        mac = hmac.new(self.key if self.key is not None else replay_key(), digestmod=hashlib.sha256)
        digest = hashlib.sha256()
        held: list[tuple[int, bytes]] = []
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                digest.update(line)
                if line.startswith(_SEAL_PREFIX) and line.endswith(b"\n"):
                    if not hmac.compare_digest(_seal_of(line), f"{SCHEME}:{mac.hexdigest()}"):
                        raise UnsealedFileError(
                            f"{self.path}, line {number}: its seal does not match: the file was altered after "
                            "it was written, or sealed with another replay key (LOANDESK_REPLAY_KEY). "
                            "Nothing of it was replayed.")
                    mac.update(line)
                    self.seals += 1
                    yield from held
                    held.clear()
                    continue
                mac.update(line)
                if line.strip():
                    held.append((number, line.rstrip(b"\r\n")))
        self.sha256 = digest.hexdigest()
        self.left_out = len(held)
        if not self.seals:
            raise UnsealedFileError(
                f"{self.path} is not sealed by LoanDesk (no seal line), so nothing of it is replayed: only files "
                "this host (or a replica sharing LOANDESK_REPLAY_KEY) wrote are accepted")


def read_sealed(path: Path, key: bytes | None = None) -> list[bytes]:
    """The lines of a sealed file that a seal covers (UnsealedFileError if it does not verify)."""
    return [line for _number, line in SealedReader(path, key)]


def _seal_of(line: bytes) -> str:
    try:
        value = orjson.loads(line).get(SEAL_KEY)
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
