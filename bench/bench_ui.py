"""The Decide page in a real browser: server start to first render, and income change to updated chart.

    python bench/bench_ui.py [--changes 20]

Both figures are measured against bench/bare_app.py in the same run: Streamlit itself with the same
form and plotly charts but no model, so the ratios show what LoanDesk adds to Streamlit's own cost.
Needs Debian's chromium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_model  # noqa: E402
from tests.e2e import StreamlitServer, chromium, wait_for_app  # noqa: E402

# The sensitivity curve is the second plotly chart on both pages; its marker trace holds the income.
MARKED = ("() => { const p = document.querySelectorAll('.js-plotly-plot')[1];"
          " return p && p.data && p.data[1] && p.data[1].x[0]; }")


def measure(browser, app: Path, env: dict[str, str], changes: int) -> tuple[float, list[float]]:
    server = StreamlitServer(app, env)
    started = time.perf_counter()
    server.start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(server.url)
        wait_for_app(page)
        page.get_by_role("button", name="Decide").wait_for()
        first_render = time.perf_counter() - started
        box = page.get_by_role("spinbutton", name="Annual income ($)")
        box.fill("62000")
        page.get_by_role("button", name="Decide").click()
        page.wait_for_function(f"() => ({MARKED})() === 62000", timeout=60_000)
        timings = []
        for i in range(changes):
            income = 40_000 + 1_000 * i
            box.fill(str(income))
            t = time.perf_counter()
            page.get_by_role("button", name="Decide").click()
            page.wait_for_function(f"() => ({MARKED})() === {income}", timeout=60_000, polling="raf")
            timings.append(time.perf_counter() - t)
        page.close()
        return first_render, timings
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=20)
    args = p.parse_args(argv)
    with scratch_model() as (tmp, registry):
        env = {"LOANDESK_MODEL_DIR": str(registry), "LOANDESK_DB_URL": f"sqlite:///{tmp}/decisions.db"}
        with chromium() as browser:
            bare_start, bare = measure(browser, ROOT / "bench" / "bare_app.py", env, args.changes)
            ours_start, ours = measure(browser, ROOT / "streamlit_app.py", env, args.changes)
    bare_ms, ours_ms = statistics.median(bare) * 1000, statistics.median(ours) * 1000
    print(f"{'':40s}{'LoanDesk':>12s}{'bare Streamlit':>16s}{'ratio':>8s}")
    print(f"{'server start to first render (s)':40s}{ours_start:12.2f}{bare_start:16.2f}{ours_start / bare_start:8.2f}")
    print(f"{'income change to updated chart (ms, p50)':40s}{ours_ms:12.0f}{bare_ms:16.0f}{ours_ms / bare_ms:8.2f}")
    print(f"(median of {args.changes} changes; max LoanDesk {max(ours) * 1000:.0f} ms)")
    print(f"targets: first render <= 5 s ({'met' if ours_start <= 5 else 'NOT met'}), "
          f"chart update <= 300 ms ({'met' if ours_ms <= 300 else 'NOT met'})")


if __name__ == "__main__":
    main()
