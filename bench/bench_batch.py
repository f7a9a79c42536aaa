"""Batch scoring, 1M rows, CSV to scored CSV: `score_file` against the naive pandas way, in one run.

    python bench/bench_batch.py                 # 1,000,000 rows, 3 runs each, the active model
    python bench/bench_batch.py --rows 200000 --runs 5

Naive: pd.read_csv, pipeline.predict_proba, to_csv (no validation, no reasons, nothing streamed).
Ours: model.batch.files.score_file with the decision log off (validation, probability, decision, reasons,
out_of_range, error, formula-safe CSV, streamed in chunks). Each run is its own process, so its
peak memory (ru_maxrss) is its own; the time is the work alone, from the open of the input to the
close of the output, after imports and model loading (which both pay alike: "idle" shows them).
Runs alternate ours/naive so that a machine slowing down during the run hurts both alike.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS, TARGET_PEAK_MB, TARGET_SPEEDUP = 3.0, 1024, 2.0  # for 1M rows on the 2-core machine


def child(kind: str, source: str, output: str, model_dir: str) -> None:
    """One measured run, printed as JSON on the last line."""
    import pandas as pd

    from model.batch.files import score_file
    from model.registry.store import load_model

    model = load_model(model_dir)
    start = time.perf_counter()
    if kind == "naive":
        frame = pd.read_csv(source)
        frame["probability"] = model.pipeline.predict_proba(frame[model.features])[:, 1]
        frame.to_csv(output, index=False)
    elif kind == "ours":
        score_file(model, source, output)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def measure(kind: str, source: Path, output: Path, model_dir: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(source), str(output), str(model_dir)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the active model)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import numpy as np
    import pandas as pd

    from bench.scratch import model_folder
    from model.training.data import generate_applicants

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp_path = Path(tmp)
        model_dir = model_folder(args.model, tmp_path)
        source = tmp_path / "applicants.csv"
        frame = generate_applicants(args.rows, seed=7).drop(columns=["approved"])
        frame.to_csv(source, index=False)
        print(f"{args.rows:,} applicants, {source.stat().st_size / 1e6:.1f} MB of CSV; model {model_dir}; "
              f"{args.runs} run(s) each, alternating")

        idle = measure("idle", source, tmp_path / "idle.csv", model_dir)
        runs: dict[str, list[dict]] = {"ours": [], "naive": []}
        for _ in range(args.runs):
            for kind in runs:
                runs[kind].append(measure(kind, source, tmp_path / f"{kind}.csv", model_dir))

        ours = pd.read_csv(tmp_path / "ours.csv", usecols=["probability"])["probability"].to_numpy()
        naive = pd.read_csv(tmp_path / "naive.csv", usecols=["probability"])["probability"].to_numpy()
        same = np.allclose(ours, naive, rtol=0, atol=1e-9)
        sizes = {kind: (tmp_path / f"{kind}.csv").stat().st_size / 1e6 for kind in runs}

    seconds = {kind: statistics.median(r["seconds"] for r in rs) for kind, rs in runs.items()}
    peak = {kind: max(r["peak_mb"] for r in rs) for kind, rs in runs.items()}
    print(f"\n{'':6} {'median s':>9} {'min s':>7} {'rows/s':>12} {'peak MB':>8} {'above idle':>10} {'output MB':>9}")
    for kind, rs in runs.items():
        print(f"{kind:6} {seconds[kind]:9.2f} {min(r['seconds'] for r in rs):7.2f} "
              f"{args.rows / seconds[kind]:12,.0f} {peak[kind]:8.0f} {peak[kind] - idle['peak_mb']:10.0f} "
              f"{sizes[kind]:9.1f}")
    print(f"{'idle':6} {'':9} {'':7} {'':12} {idle['peak_mb']:8.0f}   (imports and the model, no work)")
    speedup = seconds["naive"] / seconds["ours"]
    print(f"\nours / naive time: {seconds['ours'] / seconds['naive']:.2f}  (ours is {speedup:.2f}x as fast, while "
          "also validating, explaining and neutralizing every row)")
    print(f"ours / naive peak memory: {peak['ours'] / peak['naive']:.2f}")
    print(f"probabilities equal to the naive pipeline's within 1e-9: {'yes' if same else 'NO'}")
    if args.rows == 1_000_000:
        print(f"targets for 1M rows: ≤ {TARGET_SECONDS:g} s: {_mark(seconds['ours'] <= TARGET_SECONDS)}, "
              f"≤ {TARGET_PEAK_MB} MB peak: {_mark(peak['ours'] <= TARGET_PEAK_MB)}, "
              f"≥ {TARGET_SPEEDUP:g}x naive: {_mark(speedup >= TARGET_SPEEDUP)}")


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    main()
