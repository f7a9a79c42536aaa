"""score.py against real `dask scheduler` and `dask worker` processes on 127.0.0.1, as on a cluster.

Each way a remote cluster can fail (the scheduler or a worker without the project, a worker with
other versions, no scheduler at the address, a scheduler that goes away mid-run) must end in one
line on stderr, exit status 1, no output folder and no decision counted. A process "without the
project" runs from /tmp with no PYTHONPATH, so `model` cannot be imported there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from model.records.log import DecisionLog
from model.records.tables import batches, staged_decisions

from .conftest import ROOT
from .test_dask_engine import messy_applicants, write_csv
from .test_score_cli import assert_one_line_error

DASK = str(Path(sys.executable).with_name("dask"))
QUICK = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}  # a missing scheduler is said in seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and workers as separate processes, each with or without the project importable."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    def _env(self, project: bool, first: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        path = [str(p) for p in (first, ROOT if project else None) if p is not None]
        return {**env, "PYTHONPATH": os.pathsep.join(path)} if path else env

    def _start(self, args: list[str], project: bool, name: str, first: Path | None = None) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}-{len(self.processes)}.log", "wb")  # noqa: SIM115 - kept for the process
        process = subprocess.Popen([DASK, *args], cwd="/tmp", env=self._env(project, first), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def scheduler(self, project: bool = True) -> subprocess.Popen:
        process = self._start(["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
                              project, "scheduler")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return process
            except OSError:
                assert process.poll() is None, "the scheduler did not start"
                time.sleep(0.2)
        raise AssertionError("the scheduler did not open its port")

    def workers(self, count: int = 1, project: bool = True, first: Path | None = None) -> None:
        """`first`: a folder put before everything on the workers' path (another package's metadata)."""
        for _ in range(count):
            self._start(["worker", self.address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                        project, "worker", first)
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(len([p for p in self.processes if "worker" in str(p.args)]), timeout=60)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path)
    yield made
    made.stop()


@pytest.fixture
def pg_env(trained, tmp_path):
    """score.py's environment: a SQLite log (allowed with a scheduler on loopback), quick connects."""
    return {**os.environ, **QUICK, "LOANDESK_MODEL_DIR": str(trained),
            "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}


def score(env: dict[str, str], *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "score.py"), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_nothing_counted(env: dict[str, str], tmp_path: Path, output: Path) -> None:
    assert not output.exists() and not list(output.parent.glob(f".{output.name}.partial-*"))
    log = DecisionLog(env["LOANDESK_DB_URL"])
    if Path(env["LOANDESK_DB_URL"].removeprefix("sqlite:///")).exists():
        assert log.count() == 0
        with log.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(batches)).scalar() == 0
            assert conn.execute(select(func.count()).select_from(staged_decisions)).scalar() == 0


def book(tmp_path: Path, rows: int = 2_000) -> Path:
    folder = tmp_path / "book"
    folder.mkdir()
    frame = messy_applicants(rows)
    write_csv(folder / "a.csv", frame.iloc[: rows // 2])
    write_csv(folder / "b.csv", frame.iloc[rows // 2:])
    return folder


def test_a_scheduler_without_the_project_is_one_line_and_counts_nothing(cluster, pg_env, tmp_path):
    """The auditor's case: `dask scheduler` without PYTHONPATH, a worker with it."""
    cluster.scheduler(project=False)
    cluster.workers(1)
    out = tmp_path / "out"
    result = score(pg_env, f"{book(tmp_path)}/*.csv", "--engine", "dask", "--scheduler", cluster.address, "-o", out)
    assert_one_line_error(result, f"the Dask scheduler at {cluster.address} cannot run LoanDesk's tasks",
                          "No module named 'model'", "install this project there")
    assert_nothing_counted(pg_env, tmp_path, out)


def test_a_worker_without_the_project_or_with_other_versions_is_one_line_and_counts_nothing(
        cluster, pg_env, tmp_path):
    fake = tmp_path / "other" / "pandas-2.0.0.dist-info"  # a worker where another pandas is installed
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: pandas\nVersion: 2.0.0\n")
    cluster.scheduler()
    cluster.workers(1, project=False)
    cluster.workers(1, first=fake.parent)
    out = tmp_path / "out"
    result = score(pg_env, book(tmp_path), "--engine", "dask", "--scheduler", cluster.address, "-o", out)
    assert_one_line_error(result, "2 of 2 worker(s) refused the model", "cannot import LoanDesk",
                          "No module named 'model'", "pandas 2.0.0 (the driver has ")
    assert_nothing_counted(pg_env, tmp_path, out)


def test_no_scheduler_at_the_address_is_one_line(pg_env, tmp_path):
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    result = score(pg_env, book(tmp_path), "--engine", "dask", "--scheduler", address, "-o", out)
    assert_one_line_error(result, f"no Dask scheduler answers at {address}")
    assert_nothing_counted(pg_env, tmp_path, out)


def test_a_scheduler_that_goes_away_mid_run_is_one_line_and_counts_nothing(cluster, pg_env, tmp_path):
    scheduler = cluster.scheduler()
    cluster.workers(2)
    source = tmp_path / "many"  # six files, so six parts: the run is mid-way after the first
    source.mkdir()
    frame = messy_applicants(120_000)
    for k in range(6):
        write_csv(source / f"{k}.csv", frame.iloc[k * 20_000:(k + 1) * 20_000])
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, str(ROOT / "score.py"), str(source), "--engine", "dask",
                                "--scheduler", cluster.address, "-o", str(out), "-q"], cwd=ROOT, env=pg_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:  # the first part written: mid-run
            if list(tmp_path.glob(".out.partial-*/part-*.parquet")):
                break
            time.sleep(0.02)
        assert process.poll() is None, process.communicate()
        os.killpg(scheduler.pid, signal.SIGKILL)
        _stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    result = subprocess.CompletedProcess(process.args, process.returncode, _stdout, stderr)
    assert_one_line_error(result, f"the Dask scheduler at {cluster.address} went away mid-run")
    assert_nothing_counted(pg_env, tmp_path, out)
