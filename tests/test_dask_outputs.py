"""Where a Dask run writes, and what a later run over the same folder reads.

The default output is named for a file, a folder and a glob, never with a glob character and never
inside the input folder; a folder or glob leaves LoanDesk's own outputs out (and says so); README's
commands run as written, one after the other. Also: the bench's stated CSV size is the one it writes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from model.batch.dask_engine import MANIFEST, read_dataset, score_dataset
from model.batch.files import score_file
from model.batch.partitions import GLOB_CHARACTERS, default_output, find_inputs
from model.core.errors import BatchError

from .conftest import ROOT
from .test_dask_engine import client, messy_applicants, write_csv  # noqa: F401 - client is a fixture

README = (ROOT / "README.md").read_text()


def test_the_default_output_is_named_for_a_file_a_folder_and_a_glob(tmp_path, monkeypatch):
    (tmp_path / "book" / "2026").mkdir(parents=True)
    (tmp_path / "march").mkdir()
    monkeypatch.chdir(tmp_path / "march")
    cases = {
        "../book.csv": Path("../book-decisions"),
        "../book/": Path("../book-decisions"),
        "../book": Path("../book-decisions"),
        "../book/2026/": Path("../book/2026-decisions"),
        "../book/*.csv": Path("../book-csv-decisions"),
        "../book/2026-*.parquet": Path("../book-2026-parquet-decisions"),
        "../book/**/*.csv": Path("../book-csv-decisions"),
        "../book/*": Path("../book-all-decisions"),
        "*.csv": tmp_path / "march-csv-decisions",  # a glob in the current folder: beside it
        ".": tmp_path / "march-decisions",
    }
    for given, expected in cases.items():
        got = default_output(given)
        assert os.path.abspath(got) == os.path.abspath(expected), given
        assert not any(ch in str(got) for ch in GLOB_CHARACTERS), given
        folder = Path(os.path.abspath(given.split("*")[0] or "."))
        if folder.is_dir():  # never inside the folder a folder or glob reads
            assert folder not in Path(os.path.abspath(got)).parents, given


def test_an_output_name_with_a_glob_character_is_refused(model, tmp_path):
    source = write_csv(tmp_path / "a.csv", messy_applicants(50))
    with pytest.raises(BatchError, match=r"\*, \? or \["):
        score_dataset(model, source, tmp_path / "out-*", client=object())
    assert not list(tmp_path.glob("out-*"))


def test_a_folder_or_glob_leaves_loandesks_own_outputs_out(model, client, tmp_path):  # noqa: F811
    book = tmp_path / "book"
    book.mkdir()
    frame = messy_applicants(3_000)
    write_csv(book / "a.csv", frame.iloc[:1_500])
    write_csv(book / "b.csv", frame.iloc[1_500:])
    score_dataset(model, book / "a.csv", book / "a-decisions", client=client)  # a dataset inside the folder
    score_file(model, book / "b.csv", book / "b-decisions.csv")  # score.py's own output beside its input
    score_file(model, book / "b.csv", book / "b-decisions.parquet")
    partial = book / ".c-decisions.partial-x1y2"  # a run that never finished
    partial.mkdir()
    (partial / "part-00000.parquet").write_bytes(b"PAR1")
    for spec in (book, f"{book}/**/*", f"{book}/**/*.csv"):
        files, skipped = find_inputs(spec)
        assert files == [book / "a.csv", book / "b.csv"], spec
        assert book / "b-decisions.csv" in skipped
        if not str(spec).endswith(".csv"):
            assert {book / "a-decisions" / "part-00000.parquet", book / "b-decisions.parquet"} <= set(skipped)
        assert (book / "a-decisions" / MANIFEST).exists() and not any(partial in p.parents for p in skipped)
    summary = score_dataset(model, book, tmp_path / "out", client=client)
    assert summary.files == 2 and summary.rows == 3_000
    assert sorted(Path(p).name for p in summary.skipped) == ["b-decisions.csv", "b-decisions.parquet",
                                                                "part-00000.parquet"]
    with pytest.raises(BatchError, match="is it a scored file"):  # named on its own, it is still refused
        score_dataset(model, book / "b-decisions.csv", tmp_path / "out2", client=client)


def readme_commands() -> list[str]:
    section = README.split("## Score on a cluster", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [re.split(r"\s{2,}#", line)[0].strip() for line in block.splitlines() if line.strip()]


def test_readmes_commands_run_as_written_one_after_the_other(trained, tmp_path):
    """In a folder holding applicants.csv and book/; the last command's HOST is a scheduler on 127.0.0.1."""
    frame = messy_applicants(4_000, seed=5)
    write_csv(tmp_path / "applicants.csv", frame.iloc[:1_000])
    (tmp_path / "book").mkdir()
    write_csv(tmp_path / "book" / "a.csv", frame.iloc[1_000:2_500])
    write_csv(tmp_path / "book" / "b.csv", frame.iloc[2_500:])
    (tmp_path / "shared").mkdir()
    env = {**os.environ, "LOANDESK_MODEL_DIR": str(trained), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}",
           "PYTHONPATH": str(ROOT)}
    commands = readme_commands()
    assert len(commands) == 4 and all(c.startswith("python score.py ") for c in commands)
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
          Client(cluster)):
        for command in commands:
            command = command.replace("tcp://HOST:8786", cluster.scheduler_address).replace(
                "/shared/", f"{tmp_path}/shared/")
            args = shlex.split(command)
            args[:2] = [sys.executable, str(ROOT / "score.py")]
            result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (command, result.stderr)
            assert "Traceback" not in result.stderr and "Skipped" not in result.stdout, command
    rows = {"applicants-decisions": 1_000, "book-csv-decisions": 3_000, "book-decisions": 3_000,
            "shared/book-decisions": 3_000}
    for folder, count in rows.items():
        assert read_dataset(tmp_path / folder).num_rows == count, folder
    assert sorted(p.name for p in (tmp_path / "book").iterdir()) == ["a.csv", "b.csv"]  # nothing written inside


def test_a_folder_holding_earlier_outputs_is_scored_again_through_score_py(trained, tmp_path):
    """The auditor's case the other way round: outputs inside the folder, then the folder."""
    book = tmp_path / "small"
    book.mkdir()
    frame = messy_applicants(2_000, seed=6)
    write_csv(book / "a.csv", frame.iloc[:1_000])
    write_csv(book / "b.csv", frame.iloc[1_000:])
    env = {**os.environ, "LOANDESK_MODEL_DIR": str(trained), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}

    def score(*args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "score.py"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    assert score("small/a.csv", "--engine", "dask", "--workers", "1").returncode == 0  # small/a-decisions/
    assert score("small/b.csv").returncode == 0  # small/b-decisions.csv
    again = score("small/", "--engine", "dask", "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert "2 part(s) from 2 file(s)" in again.stdout and " of 2,000 row(s)" in again.stdout
    assert "Skipped 2 file(s) LoanDesk wrote" in again.stdout
    assert read_dataset(tmp_path / "small-decisions").num_rows == 2_000


def test_the_bench_says_the_size_of_the_csv_it_writes(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_dask
    finally:
        sys.path.remove(str(ROOT / "bench"))
    said = re.search(r"10,000,000 rows \(about ([\d,]+) MB of CSV\)", bench_dask.__doc__ or "")
    assert said, "the docstring states the size of the 10M-row CSV"
    bench_dask.write_applicants(tmp_path / "a.csv", 100_000)
    measured = (tmp_path / "a.csv").stat().st_size * 100 / 1e6  # MB, as the bench prints them
    assert abs(int(said.group(1).replace(",", "")) - measured) / measured < 0.02
    readme = re.search(r"`python bench/bench_dask.py` \(10,000,000 rows, ([\d,]+) MB of CSV", README)
    assert readme and abs(int(readme.group(1).replace(",", "")) - measured) / measured < 0.02
