"""The Dask engine on a real 2-worker LocalCluster: the same answers as one process, refusals, failures.

Worker processes are real (processes=True): each loads and verifies the model itself, and a worker
killed with SIGKILL is really gone. Data stays small enough for CI; the 10M-row figures are in
bench/bench_dask.py.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from datetime import UTC, datetime
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster, WorkerPlugin
from sqlalchemy import func, select

from model.batch.dask_engine import MANIFEST, ModelSpec, check_worker, read_dataset, score_dataset
from model.batch.files import score_file
from model.core.errors import BatchError, EngineError
from model.records import staging
from model.records.log import DecisionLog, decision_id_array, entries_for
from model.records.tables import batches, decisions
from model.registry.store import load_model
from model.scoring.table import score_table
from model.training.data import generate_applicants
from model.training.workflows import copy_with_threshold

FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]


@pytest.fixture(scope="module")
def client():
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
          Client(cluster) as cli):
        yield cli


def messy_applicants(n: int, seed: int = 7) -> pd.DataFrame:
    """Applicants as text, with bad rows of every kind mixed in (about 1 in 400)."""
    frame = generate_applicants(n, seed=seed)[FEATURES].astype(object)
    frame["note"] = "ok"
    rng = np.random.default_rng(seed)
    bad = rng.choice(n, size=n // 400, replace=False)
    for k, i in enumerate(bad):
        kind = k % 7
        if kind == 0:
            frame.loc[i, "income"] = "unknown"
        elif kind == 1:
            frame.loc[i, "age"] = ""
        elif kind == 2:
            frame.loc[i, "credit_score"] = "-5"
        elif kind == 3:
            frame.loc[i, "income"] = f"${int(frame.loc[i, 'income']):,}"  # a number a person wrote: scored
        elif kind == 4:
            frame.loc[i, "note"] = 'a quoted note, with a comma and\na newline "inside"'  # a CSV cut must not split it
        elif kind == 5:
            frame.loc[i, "loan_amount"] = "1e400"
        else:
            frame.loc[i, "employment_years"] = "=1+1"
    return frame


def write_csv(path: Path, frame: pd.DataFrame, broken_lines: int = 0) -> Path:
    text = frame.to_csv(index=False, quoting=csv.QUOTE_MINIMAL)
    if broken_lines:  # lines with the wrong number of fields: each path refuses the file, naming the first
        lines = text.split("\n")
        for k in range(broken_lines):
            lines.insert(1000 + k * 7919, "1,2,3")
        text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return path


def assert_same_output(single: pa.Table, cluster: pa.Table, *, ids: bool = True) -> None:
    """Every column equal; probabilities within 1e-9; decision ids (new for every decision, so never
    equal between two runs) on the same rows, each unique (`ids=False`: the cluster gave none)."""
    assert cluster.schema == single.schema
    assert cluster.num_rows == single.num_rows
    for name in single.column_names:
        if name == "decision_id":
            if ids:
                assert cluster[name].is_valid().equals(single[name].is_valid())
                assert pa.compute.count_distinct(cluster[name]).as_py() == cluster.num_rows - cluster[name].null_count
            else:
                assert cluster[name].null_count == cluster.num_rows
        elif name == "probability":
            a = single[name].to_numpy(zero_copy_only=False)
            b = cluster[name].to_numpy(zero_copy_only=False)
            assert np.array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_allclose(b[~np.isnan(b)], a[~np.isnan(a)], rtol=0, atol=1e-9)
        else:
            assert cluster[name].equals(single[name]), name


def test_a_cluster_run_equals_the_single_process_run_column_for_column(model, client, tmp_path):
    source = write_csv(tmp_path / "book.csv", messy_applicants(300_000))
    single = score_file(model, source, tmp_path / "single.parquet")
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    summary = score_dataset(model, source, tmp_path / "out", client=client, log=log, partition_bytes=1 << 20)

    assert summary.partitions >= 8 and summary.workers == 2
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700  # made by mkdtemp: the owner's only, as score.py's
    assert_same_output(pq.read_table(tmp_path / "single.parquet"), read_dataset(tmp_path / "out"))
    for name in ("rows", "scored", "approved", "rejected", "errors"):
        assert getattr(summary, name) == getattr(single, name), name
    # The same rows and lines named, numbered as in the file (all of them: fewer than the 1,000 kept).
    assert sorted(summary.problems) == sorted(single.problems) and len(single.problems) == single.problem_count
    assert summary.errors > 500
    # One batch on record, every scored row in it once, in input order.
    assert log.count() == summary.logged == summary.scored
    with log.engine.connect() as conn:
        row = conn.execute(select(batches)).mappings().one()
        ids = conn.execute(select(func.count(func.distinct(decisions.c.decision_id)))).scalar()
        first = conn.execute(select(decisions.c.inputs).order_by(decisions.c.id).limit(1)).scalar()
    assert row["batch_id"] == summary.batch_id and row["rows"] == summary.rows
    assert row["decisions"] == summary.scored and row["file_sha256"] == summary.input_sha256
    assert ids == summary.scored
    assert first["income"] == pytest.approx(float(pd.read_csv(source, nrows=1)["income"][0]))
    assert staging.staged_count(log, staging.StagedBatch(log.url, summary.batch_id)) == 0
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    sizes = [p["rows"] for p in manifest["parts"]]
    assert [p["first_row"] for p in manifest["parts"]] == [1 + sum(sizes[:k]) for k in range(len(sizes))]


def test_parquet_files_in_a_folder_are_scored_in_input_order(model, client, tmp_path):
    frame = generate_applicants(30_000, seed=3)[FEATURES]
    frame.loc[17, "age"] = np.nan  # a gap where age is required
    folder = tmp_path / "book"
    folder.mkdir()
    for k, piece in enumerate([frame.iloc[:10_000], frame.iloc[10_000:20_000], frame.iloc[20_000:]]):
        pq.write_table(pa.Table.from_pandas(piece, preserve_index=False), folder / f"part-{k}.parquet",
                       row_group_size=2_500)
    summary = score_dataset(model, folder, tmp_path / "out", client=client, partition_bytes=1 << 14)
    expected = score_table(model, pa.Table.from_pandas(frame, preserve_index=False), new_ids=decision_id_array)
    got = read_dataset(tmp_path / "out")
    assert summary.files == 3 and summary.partitions >= 12
    assert got.column("error")[17].as_py() == "age is required"
    assert_same_output(expected.table.cast(got.schema), got)
    assert summary.problems == ["part-0.parquet row 18: age is required"]


def test_a_glob_names_the_files_and_their_rows(model, client, tmp_path):
    frame = messy_applicants(4_000, seed=9)
    write_csv(tmp_path / "a.csv", frame.iloc[:2_000])
    write_csv(tmp_path / "b.csv", frame.iloc[2_000:])
    summary = score_dataset(model, str(tmp_path / "*.csv"), tmp_path / "out", client=client)
    whole = score_file(model, write_csv(tmp_path / "whole.txt", frame), tmp_path / "whole.parquet")
    assert_same_output(pq.read_table(tmp_path / "whole.parquet"), read_dataset(tmp_path / "out"))
    assert summary.rows == whole.rows == 4_000
    named = [p for p in summary.problems if p.startswith("b.csv row ")]
    first_b = next(p for p in whole.problems if int(p.split()[1].rstrip(":")) > 2_000)
    row = int(first_b.split()[1].rstrip(":"))
    assert named[0] == f"b.csv row {row - 2_000}:{first_b.split(':', 1)[1]}"


def test_a_worker_with_a_tampered_model_refuses_and_nothing_is_scored(registry, client, tmp_path):
    model = load_model(registry)
    pipeline = Path(model.path) / "pipeline.joblib"
    pipeline.write_bytes(pipeline.read_bytes() + b"\0")  # the copy the workers load is not the one checked
    source = write_csv(tmp_path / "book.csv", messy_applicants(2_000))
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    with pytest.raises(EngineError, match=r"2 of 2 worker\(s\) refused the model.*tcp://127\.0\.0\.1.*SHA-256"):
        score_dataset(model, source, tmp_path / "out", client=client, log=log)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    assert log.count() == 0


def test_a_worker_with_another_valid_model_or_scikit_learn_refuses(registry, client):
    mine = load_model(registry)
    spec = ModelSpec.of(mine)
    sibling = load_model(registry, version=copy_with_threshold(registry, mine.version, 0.6))
    # The workers find a valid model where the run's should be, but another one (another threshold).
    other = ModelSpec(str(sibling.path), spec.name, spec.version, spec.pipeline_sha256, spec.card_sha256,
                      spec.sklearn)
    answers = client.run(check_worker, other, on_error="return")
    assert len(answers) == 2
    assert all("has another model" in str(a) for a in answers.values())
    older = ModelSpec(spec.path, spec.name, spec.version, spec.pipeline_sha256, spec.card_sha256, "1.0.0")
    answers = client.run(check_worker, older, on_error="return")
    assert all("scikit-learn" in str(a) and "1.0.0" in str(a) for a in answers.values())
    assert {facts['model_version'] for facts in client.run(check_worker, spec).values()} == {mine.version}


class KillOnPart(WorkerPlugin):
    """SIGKILL the worker process as it starts the given part (once, when `marker` is given)."""

    name = "kill-on-part"

    def __init__(self, part: int, marker: str | None = None):
        self.part, self.marker = part, marker

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or f"loandesk-part-{self.part:05d}-" not in str(key):
            return
        if self.marker is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return  # killed once already: the retried part runs
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("retries", [0, 3], ids=["part-not-retried", "part-retried"])
def test_a_worker_killed_mid_run_leaves_no_rows_counted_or_each_row_once(model, tmp_path, retries):
    source = write_csv(tmp_path / "book.csv", messy_applicants(30_000))
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    with (dask.config.set({"distributed.scheduler.allowed-failures": retries}),
          LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
          Client(cluster) as cli):
        cli.register_plugin(KillOnPart(6, str(tmp_path / "killed") if retries else None))
        if not retries:
            with pytest.raises(EngineError, match=r"KilledWorker|died|worker"):
                score_dataset(model, source, tmp_path / "out", client=cli, log=log, partition_bytes=1 << 16)
            assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
            with log.engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(decisions)).scalar() == 0
                assert conn.execute(select(func.count()).select_from(staging.staged_decisions)).scalar() == 0
                assert conn.execute(select(func.count()).select_from(batches)).scalar() == 0
            return
        summary = score_dataset(model, source, tmp_path / "out", client=cli, log=log, partition_bytes=1 << 16)
    assert (tmp_path / "killed").exists()  # the worker really died once
    single = score_file(model, source, tmp_path / "single.parquet")
    assert_same_output(pq.read_table(tmp_path / "single.parquet"), read_dataset(tmp_path / "out"))
    assert log.count() == summary.logged == single.scored  # the part run twice is on record once


def test_a_part_staged_twice_is_recorded_once(model, tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    frame = generate_applicants(50, seed=1)[FEATURES]
    scored = score_table(model, frame)
    def entries():
        return entries_for(model, scored.decided, source="command")

    batch = staging.StagedBatch(log.url, "b" * 32)
    assert not staging.stage_part(log, batch, 0, entries()).ok  # not opened: nothing staged
    staging.open_batch(log, batch)
    assert staging.stage_part(log, batch, 0, entries()).written == 50
    assert staging.stage_part(log, batch, 0, entries()).written == 0
    assert log.count() == 0  # staged is not on record
    moved = staging.commit(log, batch, file_sha256="f" * 64, file_name="x.csv", source="command", officer=None,
                           model=model, rows=50, started_at=datetime.now(UTC))
    assert moved == log.count() == 50
    late = staging.StagedBatch(log.url, "c" * 32)
    staging.open_batch(log, late)
    staging.discard(log, late)  # a part that arrives after its run was discarded stages nothing
    assert not staging.stage_part(log, late, 3, entries()).ok
    assert staging.staged_count(log, late) == 0


def test_score_table_takes_pandas_or_arrow_and_changes_nothing(model):
    frame = generate_applicants(20, seed=2)[FEATURES].astype(object)
    frame.loc[3, "income"] = "abc"
    before = frame.copy()
    from_pandas = score_table(model, frame)
    from_arrow = score_table(model, pa.Table.from_pandas(frame.astype(str), preserve_index=False))
    pd.testing.assert_frame_equal(frame, before)
    assert from_pandas.table.column("error")[3].as_py() == "income = 'abc': is not a number"
    assert from_arrow.table.column("error")[3].as_py() == "income = 'abc': is not a number"
    np.testing.assert_allclose(from_pandas.table["probability"].to_numpy(zero_copy_only=False),
                               from_arrow.table["probability"].to_numpy(zero_copy_only=False), atol=1e-12)
    good = frame.drop(index=3)
    np.testing.assert_allclose(from_pandas.decided.probability, model.predict_proba(good)[:, 1], atol=1e-12)
    assert from_pandas.to_pandas().index[0] == 1
    assert from_pandas.problems(5) == ["row 4: income = 'abc': is not a number"]


def test_a_sqlite_log_is_refused_for_a_remote_cluster(model, tmp_path):
    source = write_csv(tmp_path / "book.csv", messy_applicants(200))
    with pytest.raises(BatchError, match="cannot share a SQLite file"):
        score_dataset(model, source, tmp_path / "out", scheduler="tcp://dask-scheduler.invalid:8786",
                      log=DecisionLog(f"sqlite:///{tmp_path / 'log.db'}"))


@pytest.mark.parametrize("damage", ["a broken line", "a quote never closed", "an over-long cell"])
def test_a_file_that_cannot_be_read_whole_is_refused_by_both_paths_naming_the_place_and_counting_none(
        model, client, tmp_path, damage):
    frame = messy_applicants(40_000)
    if damage == "a broken line":
        source = write_csv(tmp_path / "book.csv", frame, broken_lines=1)  # inserted as line 1,001
        where = "line 1,001"
    else:
        row = 30_000  # in a later partition than the first
        frame.loc[row - 1, "note"] = '"never closed' if damage == "a quote never closed" else "x" * 20_000
        source = write_csv(tmp_path / "book.csv", frame)
        if damage == "a quote never closed":  # to_csv would quote it: open a quote that nothing closes
            text = source.read_text().replace('"""never closed"', '"never closed', 1)
            source.write_text(text)
        where = f"row {row:,}"
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    with pytest.raises(BatchError, match=where) as single:
        score_file(model, source, tmp_path / "single.csv", log=log)
    with pytest.raises(BatchError, match=where) as cluster:
        score_dataset(model, source, tmp_path / "out", client=client, log=log, partition_bytes=1 << 20)
    assert not (tmp_path / "single.csv").exists() and not (tmp_path / "out").exists()
    assert log.count() == 0, (str(single.value), str(cluster.value))
    with log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(batches)).scalar() == 0


def test_an_existing_output_folder_is_never_overwritten(model, client, tmp_path):
    source = write_csv(tmp_path / "book.csv", messy_applicants(200))
    (tmp_path / "out").mkdir()
    with pytest.raises(BatchError, match="already exists"):
        score_dataset(model, source, tmp_path / "out", client=client)
    shutil.rmtree(tmp_path / "out")


def test_score_py_engine_dask_writes_the_dataset_and_records_one_batch(trained, tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT

    source = write_csv(tmp_path / "book.csv", messy_applicants(5_000))
    env = {**os.environ, "LOANDESK_MODEL_DIR": str(trained), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}
    result = subprocess.run([sys.executable, str(ROOT / "score.py"), str(source), "--engine", "dask", "--workers", "2"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "book-decisions"
    assert "On 2 Dask worker(s), 1 part(s) from 1 file(s):" in result.stdout
    assert f"Wrote {out}" in result.stdout and "as batch " in result.stdout
    assert read_dataset(out).num_rows == 5_000
    log = DecisionLog(env["LOANDESK_DB_URL"])
    assert log.count() == read_dataset(out).column("decision").null_count * -1 + 5_000
    from sqlalchemy import select

    from model.records import access
    from model.records.tables import batches
    with log.engine.connect() as conn:  # who ran it, on the batch and on each of its decisions
        assert [r.officer for r in conn.execute(select(batches.c.officer))] == [access.shell().label]
    assert set(log.read()["officer"]) == {access.shell().label}
    wrong = subprocess.run([sys.executable, str(ROOT / "score.py"), str(source), "--scheduler", "tcp://127.0.0.1:1"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--scheduler and --workers are for --engine dask" in wrong.stderr


def test_a_cluster_run_goes_on_record_on_either_database(model, client, log_url, tmp_path):
    """SQLite (executemany) and PostgreSQL (COPY into the staging table), then one transaction."""
    source = write_csv(tmp_path / "book.csv", messy_applicants(20_000, seed=12))
    log = DecisionLog(log_url)
    summary = score_dataset(model, source, tmp_path / "out", client=client, log=log, partition_bytes=1 << 17)
    frame = log.read()
    assert len(frame) == log.count() == summary.logged == summary.scored and summary.partitions >= 3
    assert set(frame["batch_id"]) == {summary.batch_id} and set(frame["batch_sha256"]) == {summary.input_sha256}
    out = read_dataset(tmp_path / "out").to_pandas()
    scored = out[out["error"].isna()].reset_index(drop=True)
    by_id = frame.sort_values("id").reset_index(drop=True)  # on record in input order
    np.testing.assert_allclose(by_id["probability"], scored["probability"], rtol=0, atol=1e-12)
    assert list(by_id["reasons"]) == list(scored["reasons"].fillna(""))
    assert staging.staged_count(log, staging.StagedBatch(log.url, summary.batch_id)) == 0
