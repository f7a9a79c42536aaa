"""The Dask engine on a 2-worker local cluster against the single-process path, in one run.

    python bench/bench_dask.py                       # 10,000,000 rows (about 232 MB of CSV)
    python bench/bench_dask.py --rows 1000000        # a quick run
    python bench/bench_dask.py --log-rows 1000000 --pg postgresql+psycopg://user:pass@host/db

Single: `score_file` (CSV in, Parquet out, chunks scored on 2 threads), the log off.
Dask: `score_dataset` on a LocalCluster of 2 worker processes with one thread each, the same CSV
in, a Parquet dataset out, the log off. Both read the same file and their outputs are compared
(every column; probabilities within 1e-9). Each path runs in its own process, so peak memory is
its own: the single process's, and each Dask worker's (ru_maxrss, reported by the worker). The
time is the work alone, after imports, the model load and the cluster's start.

With --log-rows N (and --pg URL for PostgreSQL, else SQLite), N rows are also scored on the
cluster with the decision log on: workers stage their parts (COPY on PostgreSQL) and the batch
goes on record in one transaction; the staging and the commit are timed, for README's plan.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKERS = 2


def child(kind: str, source: str, output: str, model_dir: str, log_url: str) -> None:
    """One measured run in a fresh process, printed as JSON on the last line."""
    from model.registry.store import load_model

    model = load_model(model_dir)
    result: dict = {}
    if kind == "single":
        from model.batch.files import score_file

        start = time.perf_counter()
        summary = score_file(model, source, output)
        result["seconds"] = time.perf_counter() - start
        result["rows"] = summary.rows
    else:
        from distributed import Client

        from model.batch.dask_engine import local_cluster, score_dataset
        from model.records.log import DecisionLog

        with local_cluster(WORKERS) as cluster, Client(cluster) as client:
            client.run(lambda: None)  # workers up
            log = DecisionLog(log_url) if log_url else None
            start = time.perf_counter()
            summary = score_dataset(model, source, output, client=client, log=log)
            result["seconds"] = time.perf_counter() - start
            result["rows"] = summary.rows
            result["partitions"] = summary.partitions
            result["worker_peak_mb"] = sorted(v / 2**20 for v in summary.peak_rss.values())
            result["logged"] = summary.logged
            result["commit_seconds"] = summary.commit_seconds
            if log is not None:
                result["count"] = log.count()
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(result))


def measure(kind: str, source: Path, output: Path, model_dir: Path, log_url: str = "") -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(source), str(output), str(model_dir),
                             log_url], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{kind} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_applicants(path: Path, rows: int) -> None:
    """`rows` built-in applicants as CSV, written a million at a time (seeded, so every run is alike)."""
    from model.training.data import generate_applicants

    step = 1_000_000
    with open(path, "w", encoding="utf-8") as fh:
        for k, start in enumerate(range(0, rows, step)):
            frame = generate_applicants(min(step, rows - start), seed=7 + k).drop(columns=["approved"])
            fh.write(frame.to_csv(index=False, header=k == 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--log-rows", type=int, default=0, help="also time N rows with the decision log on")
    parser.add_argument("--pg", default="", help="a PostgreSQL URL for --log-rows (default: a SQLite file)")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the active model)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import numpy as np
    import pyarrow.parquet as pq

    from bench.scratch import model_folder
    from model.batch.dask_engine import read_dataset

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        tmp_path = Path(tmp)
        model_dir = model_folder(args.model, tmp_path)
        source = tmp_path / "applicants.csv"
        write_applicants(source, args.rows)
        print(f"{args.rows:,} applicants, {source.stat().st_size / 1e6:,.0f} MB of CSV; model {model_dir}")

        single = measure("single", source, tmp_path / "single.parquet", model_dir)
        cluster = measure("dask", source, tmp_path / "dataset", model_dir)
        a, b = pq.read_table(tmp_path / "single.parquet"), read_dataset(tmp_path / "dataset")
        # Decision ids are new for every decision, so two runs' differ: they must stand on the same rows.
        same = a.schema == b.schema and all(
            a[c].equals(b[c]) for c in a.column_names if c not in ("probability", "decision_id")) and a[
            "decision_id"].is_valid().equals(b["decision_id"].is_valid()) and np.allclose(
            a["probability"].to_numpy(zero_copy_only=False), b["probability"].to_numpy(zero_copy_only=False),
            rtol=0, atol=1e-9, equal_nan=True)
        del a, b
        logged = None
        if args.log_rows:
            small = tmp_path / "logged.csv"
            write_applicants(small, args.log_rows)
            with _private_schema(args.pg) if args.pg else nullcontext(f"sqlite:///{tmp_path / 'log.db'}") as url:
                logged = measure("dask", small, tmp_path / "logged", model_dir, url)

    rate = {kind: r["rows"] / r["seconds"] for kind, r in (("single", single), ("dask", cluster))}
    worker_peak = max(cluster["worker_peak_mb"])
    print(f"\n{'':8} {'seconds':>8} {'rows/s':>12} {'peak MB':>18}")
    print(f"{'single':8} {single['seconds']:8.2f} {rate['single']:12,.0f} {single['peak_mb']:18,.0f}  (one process, "
          "2 threads)")
    print(f"{'dask':8} {cluster['seconds']:8.2f} {rate['dask']:12,.0f} "
          f"{' / '.join(f'{m:,.0f}' for m in cluster['worker_peak_mb']):>18}  (per worker; driver "
          f"{cluster['peak_mb']:,.0f}; {cluster['partitions']} parts)")
    print(f"\ndask / single rows/s: {rate['dask'] / rate['single']:.2f}")
    print(f"dask peak per worker / single peak: {worker_peak / single['peak_mb']:.2f}")
    print(f"rows/s per core on the cluster: {rate['dask'] / WORKERS:,.0f}  "
          f"(workers for 1 billion rows in an hour: {1e9 / 3600 / (rate['dask'] / WORKERS):.1f})")
    print(f"outputs equal (every column, probabilities within 1e-9, decision ids on the same rows): "
          f"{'yes' if same else 'NO'}")
    if logged:
        print(f"\nwith the decision log on ({'PostgreSQL, COPY' if args.pg else 'SQLite'}): {args.log_rows:,} rows "
              f"in {logged['seconds']:.2f} s, {args.log_rows / logged['seconds']:,.0f} rows/s end to end "
              f"(scored and staged by the workers, then on record in one transaction); {logged['count']:,} on "
              f"record; the commit alone {logged['commit_seconds']:.2f} s "
              f"({args.log_rows / max(logged['commit_seconds'], 1e-9):,.0f} rows/s)")


@contextmanager
def _private_schema(url: str):
    """A private, empty schema on the PostgreSQL server for the run, dropped afterwards: nothing of
    the database's own tables is touched."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"loandesk_bench_{os.urandom(4).hex()}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
