"""The REST API against the plain FastAPI server a tutorial would write, both driven by wrk in one run.

    python bench/bench_api.py [--seconds 5]

Needs wrk (`apt-get install wrk`); without it this says so and exits 2.

Every decision ours returns is on record first (committed to the SQLite log, group commit). With
the default LOANDESK_SQLITE_SYNC=FULL a lone request also waits for one fsync, so the run measures
this disk's fsync (p50 of 200 appends + fsync, before and after): the floor under the c=1 latency.

Both servers run in subprocesses on free localhost ports over the same freshly trained built-in
model (bench.scratch, so the project's artifacts are never touched): ours is `serve.py` (validation,
API key, reasons, every decision logged by a background writer); the baseline is
bench/plain_server.py (joblib.load, DataFrame of the body, predict_proba; no validation, no key,
no log) under `python -m uvicorn`, the same uvloop/httptools stack. For each case, each server gets
a 1 s warm-up and then `--seconds` of measurement, ours then plain, so machine noise hits both:

  1. one applicant, 1 connection (`wrk -t1 -c1 --latency`): p50 and p99 latency
  2. one applicant, 16 connections (`wrk -t2 -c16`): requests/s
  3. an array of 1,000 varied applicants, 1 connection: p50 latency and applicants/s

Any non-2xx answer or socket error stops the run with wrk's output. Last, our server gets SIGTERM
(it flushes its decision log and exits 0) and the log's row count is compared with the decisions
wrk received (requests x applicants, warm-ups included). wrk does not wait for the requests in
flight when its time is up: the server still decides and logs those, so the log may hold up to
connections x applicants more rows per wrk run, never fewer. Exit status 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_model  # noqa: E402
from model.records.log import DecisionLog  # noqa: E402
from model.registry.store import ACTIVE_FILE, PIPELINE_FILE  # noqa: E402
from model.training.data import BUILTIN_FEATURES, generate_applicants  # noqa: E402
from tests.e2e import free_port  # noqa: E402

WRK = "/usr/bin/wrk"
WARMUP_SECONDS = 1
TARGET_P50_MS, TARGET_SPEEDUP = 1.0, 5.0
ONE_APPLICANT = {"age": 35, "income": 62000, "credit_score": 720, "loan_amount": 18000, "employment_years": 6}
ARRAY_SIZE = 1000
LABEL = 39  # width of the table's first column
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
LUA = """wrk.method = "POST"
local f = assert(io.open({body_path}, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {authorization}
"""


class BenchError(RuntimeError):
    """A server or wrk misbehaved; the message says how, with the output that shows it."""


@dataclass(frozen=True)
class Case:
    name: str
    script: Path
    applicants: int  # per request
    threads: int
    connections: int
    latency: bool


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float  # nan without --latency
    p99_ms: float


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    output: Path
    decisions: int = 0  # decisions wrk received from it
    in_flight: int = 0  # at most this many more may have been decided after wrk stopped

    def log_tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]


# --- wrk -------------------------------------------------------------------------------------

def write_case(folder: Path, name: str, body: object, key: str) -> Path:
    """The body file and the Lua script that POSTs it; returns the script's path."""
    body_path = folder / f"{name}.json"
    body_path.write_text(json.dumps(body, separators=(",", ":")))
    script = folder / f"{name}.lua"
    script.write_text(LUA.format(body_path=json.dumps(str(body_path)), authorization=json.dumps(f"Bearer {key}")))
    return script


def run_wrk(server: Server, case: Case, seconds: int) -> WrkResult:
    """One wrk run of `case` against `server`, with its decisions added to the server's count."""
    cmd = [WRK, f"-t{case.threads}", f"-c{case.connections}", f"-d{seconds}s", "--timeout", "30s",
           "-s", str(case.script), *(["--latency"] if case.latency else []), f"{server.url}/v1/decisions"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0 or "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise BenchError(f"wrk against {server.name} ({case.name}) reported failures:\n{output}\n"
                         f"--- {server.name}'s output ---\n{server.log_tail()}")
    result = parse_wrk(output)
    server.decisions += result.requests * case.applicants
    server.in_flight += case.connections * case.applicants
    return result


def parse_wrk(output: str) -> WrkResult:
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s),", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not total or not rate:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    return WrkResult(requests=int(total[1]), seconds=to_ms(total[2], total[3]) / 1000,
                     requests_per_s=float(rate[1]), p50_ms=percentile(output, 50), p99_ms=percentile(output, 99))


def percentile(output: str, pct: int) -> float:
    """A line of --latency's distribution, in ms (nan without --latency)."""
    found = re.search(rf"^\s*{pct}%\s+([\d.]+)(\w+)\s*$", output, re.MULTILINE)
    return to_ms(found[1], found[2]) if found else math.nan


def to_ms(number: str, unit: str) -> float:
    if unit not in UNITS_MS:
        raise BenchError(f"unexpected time unit {unit!r} in wrk's output")
    return float(number) * UNITS_MS[unit]


def fsync_ms(folder: Path, rounds: int = 200) -> float:
    """The median time of one small append + fsync in `folder`: what a durable commit costs at least."""
    path = folder / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(rounds):
            os.write(fd, b"x" * 512)
            start = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return sorted(times)[len(times) // 2] * 1000


# --- servers ---------------------------------------------------------------------------------

def new_key(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "serve.py", "--new-key", "bench"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"serve.py --new-key failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def start(name: str, cmd: list[str], env: dict[str, str], port: int, output: Path) -> Server:
    with output.open("wb") as sink:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(name, f"http://127.0.0.1:{port}", process, output)
    wait_until_up(server)
    return server


def wait_until_up(server: Server, timeout: float = 60) -> None:
    """Until the server answers HTTP at all (the plain server has no health route: its 404 will do)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited ({server.process.returncode}) before answering:\n"
                             f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def stop(server: Server, timeout: float = 60) -> int:
    """SIGTERM, then the exit status (killed, and reported as such, after `timeout` seconds)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise BenchError(f"{server.name} did not exit within {timeout:.0f} s of SIGTERM:\n"
                         f"{server.log_tail()}") from None


@contextmanager
def servers(tmp: Path, registry: Path, db_url: str) -> Iterator[tuple[Server, Server, str]]:
    """(ours, plain, our API key), both up; stopped on the way out if still running."""
    env = {**os.environ, "LOANDESK_DB_URL": db_url, "LOANDESK_UNSENT_DIR": str(tmp / "unsent")}
    key = new_key(env)
    version = (registry / ACTIVE_FILE).read_text().strip()
    plain_env = {**os.environ, "PLAIN_PIPELINE": str(registry / "versions" / version / PIPELINE_FILE)}
    started: list[Server] = []
    try:
        port = free_port()
        started.append(start("LoanDesk", [sys.executable, "serve.py", "--port", str(port), "--model", str(registry)],
                             env, port, tmp / "ours.out"))
        port = free_port()
        started.append(start("plain FastAPI", [sys.executable, "-m", "uvicorn", "bench.plain_server:app",
                                               "--port", str(port), "--log-level", "warning", "--no-access-log"],
                             plain_env, port, tmp / "plain.out"))
        yield started[0], started[1], key
    finally:
        for server in started:
            if server.process.poll() is None:
                server.process.terminate()
                server.process.wait(timeout=60)


# --- the run ---------------------------------------------------------------------------------

def cases(folder: Path, key: str) -> list[Case]:
    frame = generate_applicants(ARRAY_SIZE, seed=29)[BUILTIN_FEATURES]
    array = json.loads(frame.to_json(orient="records"))  # plain Python ints and floats
    one = write_case(folder, "one", ONE_APPLICANT, key)
    return [Case("c=1 latency", one, 1, 1, 1, latency=True),
            Case("c=16 throughput", one, 1, 2, 16, latency=False),
            Case(f"{ARRAY_SIZE:,}-applicant array", write_case(folder, "array", array, key), ARRAY_SIZE, 1, 1,
                 latency=True)]


def measure(ours: Server, plain: Server, all_cases: list[Case], seconds: int) -> dict[str, tuple[WrkResult, ...]]:
    """Per case: (ours, plain), each measured right after its own warm-up."""
    results = {}
    for case in all_cases:
        pair = []
        for server in (ours, plain):
            run_wrk(server, case, WARMUP_SECONDS)
            pair.append(run_wrk(server, case, seconds))
        results[case.name] = tuple(pair)
    return results


def check_log(ours: Server, db_url: str) -> bool:
    """SIGTERM our server, then: does its decision log hold every decision it returned?"""
    status = stop(ours)
    if status != 0:
        how = f"was ended by signal {-status}" if status < 0 else f"exited with status {status}"
        print(f"MISMATCH: after SIGTERM {ours.name} {how}, not exit status 0; its output:\n{ours.log_tail()}")
    rows = DecisionLog(db_url).count()
    extra = rows - ours.decisions
    print(f"decision log: {rows:,} rows for {ours.decisions:,} decisions returned "
          f"({extra:+,}; requests in flight when wrk stopped could add up to {ours.in_flight:,})")
    if extra < 0:
        print(f"MISMATCH: {-extra:,} decisions returned to the client are not in the decision log")
    elif extra > ours.in_flight:
        print(f"MISMATCH: {extra - ours.in_flight:,} more rows than the requests sent could explain")
    return status == 0 and 0 <= extra <= ours.in_flight


# --- the report ------------------------------------------------------------------------------

def report(results: dict[str, tuple[WrkResult, ...]], seconds: int, fsyncs: tuple[float, float]) -> None:
    (one_ours, one_plain), (many_ours, many_plain), (arr_ours, arr_plain) = results.values()
    print(f"\n{seconds} s per measurement after a {WARMUP_SECONDS} s warm-up, ours then plain per case; "
          f"wrk, {os.cpu_count()} cores\n")
    print(f"{'':{LABEL}s}{'LoanDesk':14s}{'plain FastAPI':16s}ratio")
    row("c=1 p50 latency (ms)", one_ours.p50_ms, one_plain.p50_ms, "{:.2f}", faster=True)
    row("c=1 p99 latency (ms)", one_ours.p99_ms, one_plain.p99_ms, "{:.2f}", faster=True)
    row("c=16 throughput (req/s)", many_ours.requests_per_s, many_plain.requests_per_s, "{:,.0f}", faster=False)
    row(f"{ARRAY_SIZE:,}-applicant array p50 (ms)", arr_ours.p50_ms, arr_plain.p50_ms, "{:.1f}", faster=True)
    row(f"{ARRAY_SIZE:,}-applicant array (applicants/s)", arr_ours.requests_per_s * ARRAY_SIZE,
        arr_plain.requests_per_s * ARRAY_SIZE, "{:,.0f}", faster=False)
    speedup = many_ours.requests_per_s / many_plain.requests_per_s
    print(f"targets: p50 <= {TARGET_P50_MS} ms: {met(one_ours.p50_ms <= TARGET_P50_MS)}; "
          f"c=16 >= {TARGET_SPEEDUP:.0f}x plain: {met(speedup >= TARGET_SPEEDUP)}")
    sync = (os.environ.get("LOANDESK_SQLITE_SYNC") or "FULL").upper()
    effect = (": every answer waits for a commit that syncs the WAL, so c=1 latency cannot be lower" if sync == "FULL"
              else ": commits are not synced (kill -9 safe, not power-loss safe)")
    print(f"this disk's fsync p50: {fsyncs[0]:.2f} ms before the run, {fsyncs[1]:.2f} ms after; the log's SQLite "
          f"synchronous={sync} (LOANDESK_SQLITE_SYNC){effect}")
    print("LoanDesk also validates every field, checks the API key, gives reasons, out-of-range flags and a "
          "decision id, and answers only once every decision is on record; plain FastAPI does none of these.\n")


def row(label: str, ours: float, plain: float, fmt: str, *, faster: bool) -> None:
    """One table line; `faster` for times (lower is better), else rates (higher is better)."""
    ratio = plain / ours if faster else ours / plain
    word = (" faster" if ratio >= 1 else " slower") if faster else ""
    shown = ratio if ratio >= 1 or not faster else 1 / ratio
    print(f"{label:{LABEL}s}{fmt.format(ours):14s}{fmt.format(plain):16s}{shown:.1f}x{word}")


def met(ok: bool) -> str:
    return "met" if ok else "not met"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=5, help="seconds of measurement per server and case (default 5)")
    args = p.parse_args(argv)
    if not shutil.which(WRK):
        print(f"wrk is needed and was not found at {WRK}: apt-get install wrk", file=sys.stderr)
        return 2
    if args.seconds < 1:
        p.error("--seconds must be at least 1")
    with scratch_model() as (tmp, registry):
        db_url = f"sqlite:///{tmp}/decisions.db"
        try:
            with servers(tmp, registry, db_url) as (ours, plain, key):
                before = fsync_ms(tmp)
                results = measure(ours, plain, cases(tmp, key), args.seconds)
                report(results, args.seconds, (before, fsync_ms(tmp)))
                logged = check_log(ours, db_url)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0 if logged else 1


if __name__ == "__main__":
    sys.exit(main())
