"""The fault suite: real faults under real load on `serve.py`, and 0 decisions missing afterwards.

Every decision_id any client received (a 200) must be in the decision log once the fault is over:
- `kill -9` of the server under 16 clients sending single applicants and small arrays, and under
  16 clients sending 300-applicant arrays (a decision is answered only once it is committed);
- the SQLite database locked by another process, then made read-only (immutable), mid-load
  (decisions go to the journal; it is replayed when the database is back);
- PostgreSQL stopped mid-run and started again, on a private cluster this test starts on a free
  port (never the shared server on 5432).
All load is on 127.0.0.1, bounded in count and time. What cannot run here (no chattr, no
PostgreSQL binaries) is skipped with the reason, and fails in CI, where nothing may be skipped.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.records.journal import Journal
from model.records.log import DecisionLog

from .conftest import EXAMPLE, IN_CI
from .e2e import free_port
from .test_api_server import Server

CLIENTS = 16
ARRAY_SIZE = 300
LOAD_SECONDS = 90  # the most any load phase may take: only so that a broken server cannot hang the run


def unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"{why}, but CI must run the whole fault suite")
    pytest.skip(why)


class Load:
    """CLIENTS threads on keep-alive connections, each POSTing until told to stop or the server is gone."""

    def __init__(self, port: int, key: str, arrays: bool = False):
        self.port, self.key, self.arrays = port, key, arrays
        self.received: list[str] = []
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()
        self.go_on = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        self.go_on.set()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.go_on.clear()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a client did not stop"

    def wait_for(self, count: int, what: str) -> None:
        """Until the clients hold `count` more decisions than now."""
        target = len(self.received) + count
        deadline = time.monotonic() + LOAD_SECONDS
        while len(self.received) < target:
            assert time.monotonic() < deadline, f"{what}: only {len(self.received)} decisions in {LOAD_SECONDS} s"
            assert any(t.is_alive() for t in self.threads), f"{what}: every client stopped"
            time.sleep(0.01)

    def _body(self, n: int, i: int) -> object:
        if self.arrays:
            return [{**EXAMPLE, "income": 20_000 + 37 * k + i, "credit_score": 500 + (k + n) % 350}
                    for k in range(ARRAY_SIZE)]
        if i % 3 == 0:
            return {**EXAMPLE, "income": 20_000 + 997 * n + i}
        if i % 3 == 1:
            return [{**EXAMPLE, "income": 30_000 + i}, {**EXAMPLE, "credit_score": 500 + n}]
        return [{**EXAMPLE, "age": 12}, EXAMPLE, {**EXAMPLE, "loan_amount": 5_000 + i}]  # one bad item

    def _client(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        i = 0
        while self.go_on.is_set():
            try:
                conn.request("POST", "/v1/decisions", body=json.dumps(self._body(n, i)), headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()  # killed: this client is done
                return
            with self.lock:
                self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
            if response.status == 200:
                results = json.loads(data)
                results = results if isinstance(results, list) else [results]
                with self.lock:
                    self.received.extend(r["decision_id"] for r in results if "decision_id" in r)
            i += 1


def missing_from_log(db_url: str, ids: list[str]) -> int:
    log = DecisionLog(db_url)
    try:
        return len(set(ids) - log.known_ids(ids))
    finally:
        log.dispose()


def wait_for_empty_journal(server: Server, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while Journal(server.unsent).segments():
        assert time.monotonic() < deadline, f"the journal was not replayed within {seconds:.0f} s"
        time.sleep(0.05)


@pytest.fixture
def server(registry, tmp_path) -> Iterator[Server]:
    """serve.py on a free port over a private SQLite log and journal folder."""
    s = Server(registry, tmp_path, f"sqlite:///{tmp_path / 'decisions.db'}")
    yield s
    s.kill()


# --- kill -9 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("arrays", [False, True], ids=["16-clients", "16-client-arrays"])
def test_kill_9_under_load_loses_no_decision_a_client_was_given(server, arrays):
    key = server.new_key("fault")
    server.start()
    with Load(server.port, key, arrays=arrays) as load:
        load.wait_for(3 * ARRAY_SIZE if arrays else 1500, "before kill -9")
        assert all(t.is_alive() for t in load.threads)
        os.kill(server.process.pid, signal.SIGKILL)  # no shutdown, no flush: only what was durable survives
        server.process.wait(30)
    received = load.received
    assert set(load.statuses) == {200}, load.statuses
    assert len(received) == len(set(received)) >= (3 * ARRAY_SIZE if arrays else 1500)
    assert not Journal(server.unsent).segments()  # the log was healthy: every answer was committed to it
    assert missing_from_log(server.db_url, received) == 0


# --- SQLite locked, then read-only ----------------------------------------------------------------
def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True, timeout=30)


def _can_make_immutable(folder: Path) -> str | None:
    if shutil.which("chattr") is None:
        return "chattr is not installed (e2fsprogs)"
    probe = folder / "chattr-probe"
    probe.write_text("x")
    try:
        _chattr("+i", probe)
    except subprocess.CalledProcessError as exc:
        return f"cannot make a file immutable here ({exc.stderr.decode().strip() or 'not root?'})"
    _chattr("-i", probe)
    probe.unlink()
    return None


def test_a_locked_then_read_only_database_mid_load_loses_nothing(server, tmp_path):
    if (why := _can_make_immutable(tmp_path)) is not None:
        unavailable(why)
    database = Path(server.db_url.removeprefix("sqlite:///"))
    key = server.new_key("fault")
    server.start()
    immutable: list[Path] = []
    try:
        with Load(server.port, key) as load:
            load.wait_for(300, "before the lock")
            locker = sqlite3.connect(database, timeout=30, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: every commit waits, then fails
            try:
                load.wait_for(300, "while the database is locked")
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            load.wait_for(300, "after the lock")
            immutable = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
            _chattr("+i", *immutable)  # read-only even through the server's open files
            load.wait_for(300, "while the database is read-only")
            _chattr("-i", *immutable)
            immutable = []
            load.wait_for(300, "after the database is writable again")
        assert set(load.statuses) == {200}, load.statuses
        wait_for_empty_journal(server)  # replayed once the database answered again
    finally:
        if immutable:
            _chattr("-i", *immutable)
    assert server.stop() == 0
    assert "Traceback" not in server.output, server.output[-3000:]
    assert "replayed" in server.output  # the journal was used, and written to the log
    received = load.received
    assert len(received) == len(set(received)) >= 1500
    assert missing_from_log(server.db_url, received) == 0


# --- PostgreSQL stopped mid-run --------------------------------------------------------------------
class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port, run by the postgres user when we are root."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        self.bin = Path(found[-1]).parent if found else None
        self.port = free_port()
        self.folder: Path | None = None

    def missing(self) -> str | None:
        if self.bin is None or not (self.bin / "initdb").exists():
            return "no PostgreSQL server binaries (apt-get install postgresql)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run a cluster as"
        return None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}{done.stderr}"

    def create(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="loandesk-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        if self.folder is None:
            return
        subprocess.run(["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0)
                       + [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    if (why := pg.missing()) is not None:
        unavailable(why)
    try:
        pg.create()
        yield pg
    finally:
        pg.destroy()


def test_postgresql_stopped_mid_run_loses_nothing_after_it_restarts(private_postgres, registry, tmp_path):
    server = Server(registry, tmp_path, private_postgres.url)
    try:
        key = server.new_key("fault")
        server.start()
        with Load(server.port, key) as load:
            load.wait_for(300, "before PostgreSQL stops")
            private_postgres.stop()  # the clients keep sending: their decisions go to the journal
            load.wait_for(300, "while PostgreSQL is down")
            private_postgres.start()
            load.wait_for(300, "after PostgreSQL is back")
        assert set(load.statuses) == {200}, load.statuses
        wait_for_empty_journal(server)
        assert server.stop() == 0
    finally:
        server.kill()
    assert "replayed" in server.output and "Traceback" not in server.output, server.output[-3000:]
    received = load.received
    assert len(received) == len(set(received)) >= 900
    assert missing_from_log(private_postgres.url, received) == 0
