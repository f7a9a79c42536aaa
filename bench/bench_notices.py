"""What `score.py --notices` adds: a PDF per rejected row, against scoring the same file, in one run.

    python bench/bench_notices.py                # 5,000 applicants, 3 runs, the active model
    python bench/bench_notices.py --rows 20000 --runs 5

Baseline: `score_file` on the CSV (validation, probability, reasons, codes, ids; the log off).
Ours: `notices_for_batch` on its output (one notice per rejection: content, fpdf2 layout, the
file written; the log off). Printed: seconds each, milliseconds per notice, and notices against
scoring per row. Runs alternate so that a machine slowing down hurts both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from model.batch.files import score_file
    from model.notices.produce import notices_for_batch
    from model.notices.template import load_template
    from model.registry.store import default_model_dir, load_model
    from model.training.data import generate_applicants

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, default=default_model_dir())
    args = parser.parse_args(argv)
    model = load_model(args.model)
    template = load_template()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "applicants.csv"
        generate_applicants(args.rows, seed=11)[model.schema.names].to_csv(source, index=False)
        scoring, notices, written = [], [], 0
        for run in range(args.runs):
            start = time.perf_counter()
            summary = score_file(model, source, folder / "scored.csv", log=None)
            scoring.append(time.perf_counter() - start)
            start = time.perf_counter()
            made = notices_for_batch(folder / "scored.csv", folder / f"notices-{run}", template=template,
                                     schema=model.schema, reference=model.card.get("reference", {}),
                                     model_version=model.version, log=None)
            notices.append(time.perf_counter() - start)
            written = made.written
    score_s, notice_s = statistics.median(scoring), statistics.median(notices)
    per_notice = notice_s / max(written, 1)
    per_row = score_s / max(summary.rows, 1)
    print(f"{summary.rows:,} applicants, {written:,} rejected; median of {args.runs} runs")
    print(f"scoring (baseline): {score_s:.2f} s, {1e3 * per_row:.3f} ms per row")
    print(f"notices:            {notice_s:.2f} s, {1e3 * per_notice:.2f} ms per notice "
          f"({written / notice_s:,.0f} notices/s)")
    print(f"a notice costs {per_notice / per_row:,.0f}x the scoring of a row; --notices makes the run "
          f"{(score_s + notice_s) / score_s:.1f}x as long")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
