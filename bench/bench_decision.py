"""A full decision (validate + predict + reasons + 200-point curve + flip points) against the naive way.

    python bench/bench_decision.py [--decisions 500]

The naive way computes the same 200-point sensitivity curve with 200 separate single-row
`pipeline.predict_proba` calls, as the lesson's code would. Both run in this process on the same
model and applicants; the figures that matter are the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import scratch_model
from model.registry.store import load_model
from model.training.data import generate_applicants


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--decisions", type=int, default=500)
    p.add_argument("--naive", type=int, default=20, help="naive decisions (each is 200 predict calls)")
    p.add_argument("--model", choices=["auto", "logistic", "gbm"], default="auto")
    args = p.parse_args(argv)

    with scratch_model(args.model) as (_, registry):
        model = load_model(registry)
    applicants = generate_applicants(args.decisions, seed=7)[model.features].to_dict("records")
    grid = np.linspace(model.schema["income"].train_min, model.schema["income"].train_max, 200)

    for a in applicants[:20]:  # warm up both paths
        model.decide(a, curve_field="income")
    ours = []
    for a in applicants:
        t = time.perf_counter()
        model.decide(a, curve_field="income")
        ours.append(time.perf_counter() - t)

    naive = []
    pipeline = model.pipeline
    for a in applicants[: args.naive]:
        t = time.perf_counter()
        frame = pd.DataFrame([a]).astype(float)
        for value in grid:
            frame.loc[0, "income"] = value
            pipeline.predict_proba(frame)
        naive.append(time.perf_counter() - t)

    single = []
    for a in applicants[:200]:
        frame = pd.DataFrame([a]).astype(float)
        t = time.perf_counter()
        pipeline.predict_proba(frame)
        single.append(time.perf_counter() - t)

    (o50, o99), (n50, n99), (s50, s99) = percentiles(ours), percentiles(naive), percentiles(single)
    print(f"model: {model.card['model_kind']} ({model.version}); {len(ours)} full decisions, "
          f"{len(naive)} naive ones")
    print(f"{'':44s}{'p50 ms':>10s}{'p99 ms':>10s}")
    print(f"{'full decision (LoanDesk)':44s}{o50:10.2f}{o99:10.2f}")
    print(f"{'naive: 200 single-row predict_proba calls':44s}{n50:10.2f}{n99:10.2f}")
    print(f"{'one single-row pipeline.predict_proba':44s}{s50:10.2f}{s99:10.2f}")
    print(f"speed-up over the naive loop: {n50 / o50:.0f}x at p50, {n99 / o99:.0f}x at p99")
    print(f"a full decision costs {o50 / s50:.2f}x one bare single-row predict (p50)")
    print(f"targets: p50 <= 2 ms ({'met' if o50 <= 2 else 'NOT met'}), "
          f">= 100x the naive loop ({'met' if n50 / o50 >= 100 else 'NOT met'})")


if __name__ == "__main__":
    main()
