"""`python serve.py` as a real server (uvicorn, uvloop, httptools) in a subprocess: nothing is lost at SIGTERM.

Clients on keep-alive connections keep sending while the server is told to stop; every decision a
client was given (a 200 with its decision_id) must be in the decision log once the server has
exited, and the log must hold nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from model.records.log import DecisionLog
from model.records.sealed import read_sealed

from .conftest import EXAMPLE, IN_CI, ROOT
from .e2e import free_port

PG_URL = os.environ.get("LOANDESK_TEST_PG_URL")

CLIENTS = 16
# serve.py run with one change made first (what a slow or a failing database would do), via `python -c`
PATCHED = """
import runpy, sys
{patch}
sys.argv[0] = {serve!r}
runpy.run_path({serve!r}, run_name="__main__")
"""
# every commit takes `pause` seconds longer: many requests wait on their commit when SIGTERM comes
SLOW_LOG = ("import time\nfrom model.records.log import DecisionLog\n_record = DecisionLog.record\n"
            "DecisionLog.record = lambda self, entries: time.sleep({pause}) or _record(self, entries)")
LOG_DOWN = ("from model.records.log import DecisionLog, LogResult\n"
            "DecisionLog.record = lambda self, entries: LogResult(0, 'disk full')\n"
            "DecisionLog.ping = lambda self: 'disk full'")
BEFORE_SIGTERM = 600  # decisions received before the server is told to stop


class Server:
    """serve.py on a free port, with its own SQLite log and unsent folder."""

    def __init__(self, model_dir: Path, tmp_path: Path, db_url: str):
        self.db_url = db_url
        self.unsent = tmp_path / "unsent"
        self.env = {**os.environ, "LOANDESK_DB_URL": self.db_url, "LOANDESK_UNSENT_DIR": str(self.unsent),
                    "PYTHONPATH": str(ROOT)}
        self.model_dir = model_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.output = ""

    def new_key(self, name: str) -> str:
        done = subprocess.run([sys.executable, str(ROOT / "serve.py"), "--new-key", name], capture_output=True,
                              text=True, cwd=ROOT, env=self.env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def start(self, patch: str | None = None, timeout: float = 120, workers: int = 1) -> None:
        """Serve; `patch` is Python run first in the server process (see PATCHED)."""
        args = ["--port", str(self.port), "--model", str(self.model_dir), "--workers", str(workers)]
        if patch is None:
            command = [sys.executable, str(ROOT / "serve.py"), *args]
        else:
            command = [sys.executable, "-c", PATCHED.format(patch=patch, serve=str(ROOT / "serve.py")), *args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout  # only so that a broken start cannot hang the run
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve.py exited early:\n{self.process.stdout.read()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"serve.py did not answer /healthz within {timeout:.0f} s")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("serve.py did not exit within 60 s of SIGTERM") from None
        self.output = self.process.stdout.read()
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def db_url(log_url) -> str:
    """The server's decision log: a SQLite file, or a private schema on the PostgreSQL server."""
    return log_url


@pytest.fixture
def server(registry, tmp_path, db_url):
    s = Server(registry, tmp_path, db_url)
    yield s
    s.kill()


def _client(port: int, key: str, n: int, received: list[str], statuses: list[int], lock: threading.Lock,
            go_on: threading.Event) -> None:
    """Sends until the server stops answering: single applicants and small arrays, one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    i = 0
    while go_on.is_set():
        if i % 3 == 0:
            body = {**EXAMPLE, "income": 20_000 + 997 * n + i}
        elif i % 3 == 1:
            body = [{**EXAMPLE, "income": 30_000 + i}, {**EXAMPLE, "credit_score": 500 + n}]
        else:  # an array with a bad item: it gets errors, not a decision_id, and is not logged
            body = [{**EXAMPLE, "age": 12}, EXAMPLE, {**EXAMPLE, "loan_amount": 5_000 + i}]
        try:
            conn.request("POST", "/v1/decisions", body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            # the server closed this connection at shutdown; a new one is refused once it stops listening
            conn.close()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.connect()
            except OSError:
                return
            continue
        with lock:
            statuses.append(response.status)
        if response.status == 200:
            results = json.loads(data)
            results = results if isinstance(results, list) else [results]
            with lock:
                received.extend(r["decision_id"] for r in results if "decision_id" in r)
        i += 1


@pytest.mark.parametrize("writer_pause", [None, 0.2], ids=["as-shipped", "slow-log"])
def test_sigterm_loses_no_decision_a_client_was_given(server, writer_pause):
    """With a slow log (each commit 0.2 s longer) requests are waiting on their commit at SIGTERM:
    they are answered once it is done, and nothing else is in the log."""
    key = server.new_key("load-test")
    server.start(None if writer_pause is None else SLOW_LOG.format(pause=writer_pause))
    received: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    go_on = threading.Event()
    go_on.set()
    threads = [threading.Thread(target=_client, args=(server.port, key, n, received, statuses, lock, go_on),
                                daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 120  # only so that a stuck server cannot hang the run
        while len(received) < BEFORE_SIGTERM:
            assert time.monotonic() < deadline, f"only {len(received)} decisions in 120 s"
            assert all(t.is_alive() for t in threads), "a client stopped before SIGTERM"
            time.sleep(0.005)
        sending = sum(t.is_alive() for t in threads)
        code = server.stop()  # the clients are still sending
    finally:
        go_on.clear()
        for t in threads:
            t.join(60)
    assert sending == CLIENTS
    assert not any(t.is_alive() for t in threads)
    assert "Traceback" not in server.output, server.output
    # killed by the signal (-15) instead of exiting would also have lost the writer's queue: the log says
    assert code in (0, -signal.SIGTERM), f"serve.py exited with {code}:\n{server.output}"

    assert set(statuses) == {200}, f"statuses other than 200: {sorted(set(statuses))}"
    assert len(received) == len(set(received)) >= BEFORE_SIGTERM
    log = DecisionLog(server.db_url)
    try:
        assert log.known_ids(received) == set(received), "decisions given to clients are missing from the log"
        assert log.count() == len(received), "the log holds decisions no client was given"
        sources = set(log.read()["source"])
    finally:
        log.dispose()
    assert sources == {"api:load-test"}
    assert not list(server.unsent.glob("*.jsonl"))  # all in the log: the journal was never needed


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigterm_exits_with_status_0(server):
    """serve.py's docstring: 'Ctrl-C or SIGTERM finishes the requests in flight, writes every pending
    decision to the log, then exits. Exit status: 0 done'."""
    key = server.new_key("exit-status")
    server.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/v1/decisions", body=json.dumps(EXAMPLE),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = conn.getresponse()
    decision_id = json.loads(response.read())["decision_id"]
    conn.close()
    code = server.stop()
    log = DecisionLog(server.db_url)
    try:
        assert log.find(decision_id) is not None
    finally:
        log.dispose()
    assert code == 0, f"serve.py exited with {code} after SIGTERM (expected 0):\n{server.output}"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_decisions_made_while_the_log_is_down_are_journaled_and_written_by_the_next_start(server):
    key = server.new_key("log-down")
    server.start(LOG_DOWN)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    ids = []
    for body in (EXAMPLE, [EXAMPLE, {**EXAMPLE, "income": 90_000}, {"age": 1}]):
        conn.request("POST", "/v1/decisions", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        assert response.status == 200  # decided: on record in the journal
        results = json.loads(response.read())
        ids += [r["decision_id"] for r in (results if isinstance(results, list) else [results]) if "decision_id" in r]
    deadline = time.monotonic() + 30  # /readyz is refreshed every second
    while True:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        ready = json.loads(response.read())
        if ready.get("journal_segments") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status == 200 and ready["decision_log"] == "cannot be written" and ready["journal_segments"] == 1
    assert str(server.unsent) not in json.dumps(ready)
    conn.close()
    assert server.stop() == 0

    [segment] = server.unsent.glob("journal-*.jsonl")
    assert sorted(json.loads(line)["decision_id"] for line in read_sealed(segment)) == sorted(ids)
    server.start()  # the log works again: the journal is written to it without anyone asking
    deadline = time.monotonic() + 60
    while list(server.unsent.glob("journal-*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stop() == 0
    log = DecisionLog(server.db_url)
    try:
        assert log.known_ids(ids) == set(ids) and log.count() == 3
        assert {log.find(i)["source"] for i in ids} == {"api:log-down"}
    finally:
        log.dispose()
    assert not list(server.unsent.glob("journal-*.jsonl"))


def test_the_interactive_docs_work_with_no_internet(registry, tmp_path, output_dir):
    """/docs in Chromium: Swagger UI's files come from this server, not a CDN (a bank's network
    rarely reaches one), and it shows the model's own request schema."""
    from .e2e import chromium, chromium_path

    if chromium_path() is None:
        if IN_CI:
            pytest.fail("chromium is not installed, but CI must run the browser tests")
        pytest.skip("no chromium installed (apt-get install chromium)")
    s = Server(registry, tmp_path, f"sqlite:///{tmp_path / 'decisions.db'}")
    s.start()
    outside = []
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("request", lambda r: None if r.url.startswith(f"http://127.0.0.1:{s.port}/")
                    else outside.append(r.url))
            page.goto(f"http://127.0.0.1:{s.port}/docs")
            page.locator(".opblock-summary-path", has_text="/v1/decisions").first.wait_for(timeout=60_000)
            page.get_by_text("Decide one applicant, or an array of applicants").click()
            body = page.locator(".opblock-body")
            body.get_by_text('"label": "approved"').first.wait_for(timeout=30_000)
            shown = body.inner_text()
            assert '"income": 62000' in shown and '"employment_years": 6' in shown  # the model's example customer
            assert page.get_by_text("Applicant", exact=True).count() >= 1
            page.screenshot(path=str(output_dir / "api-docs.png"))
    finally:
        assert s.stop() == 0
    assert outside == []
