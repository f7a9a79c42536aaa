"""The REST API's latency: POST /v1/decisions against GET /health on the same running server.

    python bench/bench_api.py [--requests 300]

`serve.py` runs in a subprocess on a free localhost port; one keep-alive connection sends the
requests in turn. /health does no model work, so the ratio shows what a decision adds to HTTP.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_model  # noqa: E402
from model.data import BUILTIN_FEATURES, generate_applicants  # noqa: E402
from tests.e2e import free_port  # noqa: E402


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> float:
    payload = json.dumps(body).encode() if body is not None else None
    t = time.perf_counter()
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - t
    if response.status != 200:
        raise RuntimeError(f"{method} {path} answered {response.status}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300)
    args = p.parse_args(argv)
    with scratch_model() as (tmp, registry):
        port = free_port()
        env = {**os.environ, "LOANDESK_DB_URL": f"sqlite:///{tmp}/decisions.db"}
        server = subprocess.Popen([sys.executable, "serve.py", "--port", str(port), "--model", str(registry)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(300):
                try:
                    timed(conn, "GET", "/health")
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    time.sleep(0.1)
            applicants = generate_applicants(args.requests, seed=11)[BUILTIN_FEATURES].to_dict("records")
            for a in applicants[:20]:
                timed(conn, "POST", "/v1/decisions", a)
            health = [timed(conn, "GET", "/health") for _ in range(args.requests)]
            decisions = [timed(conn, "POST", "/v1/decisions", a) for a in applicants]
        finally:
            server.terminate()
            server.wait(timeout=10)
    h50, h99 = np.percentile(health, [50, 99]) * 1000
    d50, d99 = np.percentile(decisions, [50, 99]) * 1000
    print(f"{'':36s}{'p50 ms':>10s}{'p99 ms':>10s}")
    print(f"{'GET /health (baseline)':36s}{h50:10.2f}{h99:10.2f}")
    print(f"{'POST /v1/decisions (logged)':36s}{d50:10.2f}{d99:10.2f}")
    print(f"a decision costs {d50 / h50:.1f}x a bare HTTP round trip at p50 ({args.requests} requests each)")


if __name__ == "__main__":
    main()
