"""The Monitoring page's queries on a large log, against reading the whole log into pandas, in one run.

    python bench/bench_monitoring.py                                # 1,000,000 decisions, 200,000 outcomes
    python bench/bench_monitoring.py --decisions 100000 --outcomes 20000 --runs 5
    python bench/bench_monitoring.py --pg postgresql+psycopg://user:pass@host/db   # also PostgreSQL

Fills a fresh log (SQLite in a temporary folder, and PostgreSQL in a private schema when a URL is
given or LOANDESK_TEST_PG_URL is set) with decisions by the built-in model over 180 days, two
versions, one in ten simulated, and outcomes for approved decisions drawn from the data rule.

Baseline, "today's full read": what the page did before, `DecisionLog.read` of the filtered log and
the pandas figures of `model.monitoring.report` (daily activity, drift, out-of-range, age bands,
probability PSI). Ours: every query the page runs (`DecisionLog.summary`, `overview`, the newest
500 rows), timed three ways: cold (the first look, when no counts are kept yet), warm (the p50 of
--runs looks with nothing new), after new decisions (each look after 2,000 more decisions today) and
after new outcomes (each look after 1,000 more outcomes, which recomputes realized performance).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from model.monitoring import queries, report  # noqa: E402
from model.monitoring.overview import overview  # noqa: E402
from model.records.log import DecisionLog, entries_for_rows, new_decision_ids  # noqa: E402
from model.records.outcomes import record_outcomes  # noqa: E402
from model.registry.store import load_holdout, load_model  # noqa: E402
from model.training.data import approval_log_odds, generate_applicants  # noqa: E402
from model.training.workflows import ensure_model  # noqa: E402

DAYS = 180
CHUNK = 50_000
TARGET_SECONDS, TARGET_SPEEDUP = 1.0, 10.0


def fill(log: DecisionLog, model, decisions: int, outcomes: int, seed: int = 1) -> list[str]:
    """`decisions` decisions over DAYS days (two versions, a tenth simulated), then `outcomes` outcomes;
    returns the ids of approved decisions still without one."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    rng = np.random.default_rng(seed)
    approved_ids, approved_inputs = [], []
    for first in range(0, decisions, CHUNK):
        n = min(CHUNK, decisions - first)
        applicants = generate_applicants(n, seed=seed + first)[model.features]
        validation = model.validate(applicants)
        clean = validation.clean
        p = model.approval_probability(clean)
        entries = entries_for_rows(model, clean, p, source="api", out_of_range=validation.out_of_range)
        moments = np.sort(rng.uniform(0, DAYS * 86_400, n))
        ids = new_decision_ids(n)
        for k, e in enumerate(entries):
            e.decided_at = start + timedelta(seconds=float(moments[k]))
            e.decision_id = ids[k]
            e.simulated = k % 10 == 0
            if moments[k] < DAYS * 86_400 / 2:
                e.model_version = model.version[:-8] + "00000000"  # an earlier version of the same model
        assert log.record(entries).ok
        yes = p >= model.threshold
        approved_ids += [i for i, y in zip(ids, yes, strict=True) if y]
        approved_inputs.append(clean[yes])
    import pandas as pd

    inputs = pd.concat(approved_inputs, ignore_index=True)
    chosen = rng.choice(len(approved_ids), size=min(outcomes, len(approved_ids)), replace=False)
    good = rng.random(len(chosen)) < 1 / (1 + np.exp(-approval_log_odds(inputs.iloc[chosen])))
    rows = [{"decision_id": approved_ids[i], "outcome": int(g)} for i, g in zip(chosen, good, strict=True)]
    for first in range(0, len(rows), CHUNK):
        report_ = record_outcomes(log, rows[first:first + CHUNK], source="bench")
        assert not report_.problems, report_.problems[:3]
    taken = set(chosen.tolist())
    return [i for k, i in enumerate(approved_ids) if k not in taken]


def more_decisions(log: DecisionLog, model, n: int, seed: int) -> None:
    """n more decisions, today, as the API would add them between two looks at the page."""
    clean = model.validate(generate_applicants(n, seed=seed)[model.features]).clean
    entries = entries_for_rows(model, clean, model.approval_probability(clean), source="api")
    for e, i in zip(entries, new_decision_ids(n), strict=True):
        e.decision_id = i
    assert log.record(entries).ok


def page(log: DecisionLog, model, holdout, scope: queries.Scope) -> None:
    """Every query the Monitoring page runs for one look."""
    queries.on_record(log)
    overview(log, model, scope, holdout)
    queries.recent(log, scope, report.LOG_ROWS_SHOWN)


def full_read(log: DecisionLog, model, holdout) -> None:
    """The page before: the whole (filtered) log into pandas, then the figures in pandas."""
    frame = log.read()
    frame = frame[frame["model_name"] == model.name]
    report.daily_activity(frame)
    report.drift(model, frame)
    report.out_of_range_counts(model, frame)
    report.age_bands(frame)
    report.probability_psi(holdout["probability"].to_numpy(), frame["probability"].to_numpy())


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, url: str, model, args) -> dict:
    log = DecisionLog(url)
    holdout = load_holdout(model)
    print(f"\n{name}: filling {args.decisions:,} decisions and {args.outcomes:,} outcomes ...", flush=True)
    start = time.perf_counter()
    waiting = fill(log, model, args.decisions, args.outcomes)
    print(f"  filled in {time.perf_counter() - start:.0f} s")
    scope = queries.Scope(model.name)
    baseline = [timed(lambda: full_read(log, model, holdout)) for _ in range(args.baseline_runs)]
    cold = timed(lambda: page(log, model, holdout, scope))
    warm = [timed(lambda: page(log, model, holdout, scope)) for _ in range(args.runs)]
    after = []
    for k in range(args.runs):
        more_decisions(log, model, 2_000, seed=10_000 + k)
        after.append(timed(lambda: page(log, model, holdout, scope)))
    recorded = []
    for k in range(args.runs):
        batch = waiting[k * 1_000:(k + 1) * 1_000]
        record_outcomes(log, [{"decision_id": i, "outcome": (j % 5 > 0) * 1} for j, i in enumerate(batch)],
                        source="bench")
        recorded.append(timed(lambda: page(log, model, holdout, scope)))
    log.dispose()
    base = statistics.median(baseline)
    out = {"name": name, "baseline": base, "cold": cold, "warm": statistics.median(warm),
           "after": statistics.median(after), "outcomes": statistics.median(recorded)}
    print(f"  today's full read (read + pandas), p50 of {len(baseline)}: {base:.2f} s")
    print(f"  page queries, cold (first look, nothing kept): {cold:.2f} s ({base / cold:.1f}x faster)")
    print(f"  page queries, warm, p50 of {len(warm)}: {out['warm']:.3f} s ({base / out['warm']:.0f}x faster)")
    print(f"  page queries after 2,000 new decisions, p50 of {len(after)}: {out['after']:.3f} s "
          f"({base / out['after']:.0f}x faster)")
    print(f"  page queries after 1,000 new outcomes, p50 of {len(recorded)}: {out['outcomes']:.3f} s "
          f"({base / out['outcomes']:.0f}x faster)")
    return out


def _pg_schema(url: str) -> tuple[str, Callable[[], None]]:
    schema = f"bench_monitoring_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    private = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return private.render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--outcomes", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7, help="looks at the page for each p50")
    parser.add_argument("--baseline-runs", type=int, default=1, help="full reads (each takes long on 1M)")
    parser.add_argument("--pg", default=os.environ.get("LOANDESK_TEST_PG_URL"), help="a PostgreSQL URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "model"
        ensure_model(registry)
        model = load_model(registry)
        results = [bench("SQLite", f"sqlite:///{Path(tmp) / 'decisions.db'}", model, args)]
        if args.pg:
            url, drop = _pg_schema(args.pg)
            try:
                results.append(bench("PostgreSQL", url, model, args))
            finally:
                drop()
    print(f"\nTarget: page queries p50 <= {TARGET_SECONDS:.0f} s, >= {TARGET_SPEEDUP:.0f}x faster than the full read")
    for r in results:
        slowest = max(r["warm"], r["after"], r["outcomes"])
        ok = slowest <= TARGET_SECONDS and r["baseline"] / slowest >= TARGET_SPEEDUP
        print(f"  {r['name']}: warm {r['warm']:.3f} s, after new decisions {r['after']:.3f} s, after new outcomes "
              f"{r['outcomes']:.3f} s, cold {r['cold']:.2f} s; full read {r['baseline']:.2f} s -> "
              f"{'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
