"""A batch run goes on record whole or not at all; a file that cannot be read whole is refused, naming the row."""

from __future__ import annotations

import stat

import pandas as pd
import pytest
from sqlalchemy import select

from model.batch import reading
from model.batch.files import BatchError, score_file
from model.records.batches import earlier_batches, replay_file
from model.records.log import DecisionLog
from model.records.sealed import UnsealedFileError
from model.records.tables import batches, replays
from model.training.data import generate_applicants

FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]
HEADER = ",".join(FEATURES)


def lines(n: int, seed: int = 4) -> list[str]:
    frame = generate_applicants(n, seed=seed)[FEATURES]
    return frame.to_csv(index=False, header=False).splitlines()


def csv_file(path, rows: list[str], newline: str = "\n"):
    path.write_bytes((newline.join([HEADER, *rows]) + newline).encode())
    return path


@pytest.fixture
def log(tmp_path) -> DecisionLog:
    return DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")


def test_every_decision_of_a_run_carries_its_batch_id_and_the_files_sha256(model, log, tmp_path):
    path = csv_file(tmp_path / "in.csv", lines(40))
    summary = score_file(model, path, tmp_path / "out.csv", log=log, officer="Ada")
    frame = log.read()
    assert len(frame) == 40 == summary.logged
    assert set(frame["batch_id"]) == {summary.batch_id} and set(frame["batch_sha256"]) == {summary.file_sha256}
    assert frame["decision_id"].notna().all() and frame["decision_id"].is_unique
    import hashlib
    assert summary.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    [batch] = earlier_batches(log, summary.file_sha256)
    assert (batch.batch_id, batch.rows, batch.decisions, batch.officer) == (summary.batch_id, 40, 40, "Ada")


def test_scoring_a_file_already_on_record_warns_and_records_a_second_batch(model, log, tmp_path):
    path = csv_file(tmp_path / "in.csv", lines(10))
    first = score_file(model, path, tmp_path / "out.csv", log=log)
    assert first.rescoring is None
    second = score_file(model, path, tmp_path / "out2.csv", log=log)
    assert second.rescoring and "already on record once" in second.rescoring and first.batch_id in second.rescoring
    assert second.batch_id != first.batch_id and log.count() == 20


def test_a_run_that_fails_after_some_chunks_leaves_nothing_on_record_and_no_output(model, log, tmp_path):
    rows = lines(3000)
    rows[2500] = "36,1,2"  # far past the first chunks, which were scored (and spooled) already
    path = csv_file(tmp_path / "in.csv", rows)
    with pytest.raises(BatchError, match=r"row 2,501 \(line 2,502\): 3 field\(s\) where the header has 5"):
        score_file(model, path, tmp_path / "out.csv", log=log, block_size=8 << 10)
    assert log.count() == 0 and not (tmp_path / "out.csv").exists()
    with log.reading() as conn:
        assert conn.execute(select(batches)).first() is None
    assert not list((tmp_path / "unsent").glob("*")) and not list(tmp_path.glob(".out.csv*"))


@pytest.mark.parametrize("case, make, row, why", [
    ("an unterminated quote in the last column", lambda r: [*r[:1000], '35,62000,720,18000,"6', *r[1000:]],
     "row 1,001 (line 1,002)", "never closed"),
    ("an unterminated quote in the first column", lambda r: [*r[:10], '"35,62000,720,18000,6', *r[10:]],
     "row 11 (line 12)", "never closed"),
    ("a 3 MiB cell", lambda r: [*r[:1500], "35,62000,720,18000," + "9" * (3 << 20), *r[1500:]],
     "row 1,501 (line 1,502)", "more than 10,000 characters"),
    ("a 20,000-character cell", lambda r: [*r[:5], "35,62000,720,18000," + "9" * 20000, *r[5:]],
     "row 6 (line 7)", "holds 20,000 characters; a cell may hold at most 10,000"),
    ("a line with too many fields", lambda r: [*r[:7], "35,62000,720,18000,6,7", *r[7:]],
     "row 8 (line 9)", "6 field(s) where the header has 5"),
    ("a line with too few fields", lambda r: [*r[:7], "35,62000", *r[7:]],
     "row 8 (line 9)", "2 field(s) where the header has 5"),
])
def test_a_file_that_cannot_be_read_whole_is_refused_naming_the_right_row(model, log, tmp_path, case, make, row, why):
    path = csv_file(tmp_path / "in.csv", make(lines(2000)))
    with pytest.raises(BatchError) as caught:
        score_file(model, path, tmp_path / "out.csv", log=log)
    assert caught.value.reason.startswith(row) and why in caught.value.reason, (case, caught.value.reason)
    assert log.count() == 0 and not (tmp_path / "out.csv").exists()


def test_lines_that_do_not_match_the_rows_read_stop_the_run(model, log, tmp_path, monkeypatch):
    """The last guard: should a parser ever read fewer rows than the file has lines, the run stops."""
    path = csv_file(tmp_path / "in.csv", lines(30))
    monkeypatch.setattr(reading, "_lines_in_cells", lambda batch: 1)  # as if a row had swallowed a line
    with pytest.raises(BatchError, match=r"30 line\(s\) under the header hold something, but 30 row\(s\) holding 31"):
        score_file(model, path, tmp_path / "out.csv", log=log)
    assert log.count() == 0


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_any_line_ending_is_read_with_quoted_line_breaks_kept(model, log, tmp_path, newline):
    rows = lines(20)
    path = tmp_path / "in.csv"
    body = newline.join([HEADER + ",note", *[f'{r},"two{newline}lines"' if i == 3 else f"{r},x"
                                             for i, r in enumerate(rows)]]) + newline
    path.write_bytes(body.encode())
    summary = score_file(model, path, tmp_path / "out.csv", log=log)
    assert summary.rows == summary.scored == 20 and log.count() == 20
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out.loc[3, "note"] == f"two{newline}lines"


def test_blank_lines_and_quotes_inside_fields_are_not_rows_or_errors(model, log, tmp_path):
    rows = lines(6)
    path = tmp_path / "in.csv"
    path.write_text(f"{HEADER},name\n{rows[0]},O\"Brien\n\n{rows[1]},\"Zoë, \"\"the\"\" applicant\"\n\n\n")
    summary = score_file(model, path, tmp_path / "out.csv", log=log)
    assert summary.rows == 2 and log.count() == 2


def test_a_log_that_cannot_take_the_run_saves_it_sealed_and_a_replay_records_it_once_as_one_batch(model, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    path = csv_file(tmp_path / "in.csv", lines(25))
    summary = score_file(model, path, tmp_path / "out.csv", log=DecisionLog(f"sqlite:///{blocker / 'x.db'}"))
    assert summary.unsent is not None and stat.S_IMODE(summary.unsent.stat().st_mode) == 0o600
    log = DecisionLog(f"sqlite:///{tmp_path / 'back.db'}")
    result = replay_file(summary.unsent, log)
    assert (result.written, result.skipped) == (25, 0)
    [batch] = earlier_batches(log, summary.file_sha256)
    assert batch.decisions == 25 and set(log.read()["batch_id"]) == {batch.batch_id}
    again = replay_file(summary.unsent, log)
    assert (again.written, again.skipped) == (0, 25) and log.count() == 25
    with log.reading() as conn:
        assert [r.written for r in conn.execute(select(replays).order_by(replays.c.id))] == [25, 0]


def test_a_spool_left_by_a_killed_run_is_never_replayed(model, tmp_path, monkeypatch):
    """A run killed mid-way leaves only its unsealed spool: nothing of it can go on record."""
    from model.records import batches as records

    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    monkeypatch.setattr(records.SealedWriter, "close", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        score_file(model, csv_file(tmp_path / "in.csv", lines(10)), tmp_path / "out.csv", log=log)
    assert log.count() == 0
    monkeypatch.undo()
    spool = tmp_path / "unsent" / "forged.jsonl"
    spool.write_text('{"batch": {}}\n')
    with pytest.raises(UnsealedFileError):
        replay_file(spool, log)


def test_the_decision_log_file_is_created_readable_by_its_owner_only(model, tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'new' / 'decisions.db'}")
    score_file(model, csv_file(tmp_path / "in.csv", lines(5)), tmp_path / "out.csv", log=log)
    for name in ("decisions.db", "decisions.db-wal"):
        found = tmp_path / "new" / name
        if found.exists():
            assert stat.S_IMODE(found.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_the_output_is_never_written_through_a_planted_link(model, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for guess in (f".out.csv.partial-{n}" for n in range(1, 70000, 997)):
        (tmp_path / guess).symlink_to(victim)
    score_file(model, csv_file(tmp_path / "in.csv", lines(5)), tmp_path / "out.csv")
    assert victim.read_text() == "precious" and not (tmp_path / "out.csv").is_symlink()
    assert len(pd.read_csv(tmp_path / "out.csv")) == 5


def test_the_rows_scored_are_the_bytes_whose_hash_goes_on_record_whatever_happens_to_the_file(
        model, log, tmp_path, monkeypatch):
    """A file rewritten in place mid-run (same size, same modification time, same inode) cannot put
    rows on record under the hash of other bytes: the run parses a private copy of what it hashed."""
    import hashlib
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "private"))
    (tmp_path / "private").mkdir()
    original = lines(30000, seed=8)
    path = csv_file(tmp_path / "in.csv", original)
    first_bytes = path.read_bytes()
    other = ("\n".join([HEADER, *lines(30000, seed=9)]) + "\n").encode()
    swapped = (other + b" " * len(first_bytes))[:len(first_bytes)]  # other rows, at the same size
    stamp = os.stat(path)
    edits = []

    def rewrite(_progress):
        if not edits:  # after the first chunk: rewrite the file in place and put its times back
            with open(path, "r+b") as fh:
                fh.write(swapped)
            os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
            edits.append(True)

    summary = score_file(model, path, tmp_path / "out.csv", log=log, progress=rewrite, block_size=4096)
    assert edits and os.stat(path).st_ino == stamp.st_ino and os.stat(path).st_size == stamp.st_size
    assert summary.file_sha256 == hashlib.sha256(first_bytes).hexdigest()
    scored = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert scored[FEATURES[0]].tolist() == [line.split(",")[0] for line in original]  # the hashed rows, all
    assert len(log.read()) == 30000
    assert not list((tmp_path / "private").iterdir())  # the private copy is gone with the run
