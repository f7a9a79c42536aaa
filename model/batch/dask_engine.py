"""Score files on a Dask cluster with the same core: `score_table` on every worker, one batch run.

`score_dataset` cuts the input into partitions (`model.batch.partitions`), and each worker scores its
partitions with the model it loaded and verified itself, writes each as one Parquet file and
records its decisions in the decision log under the run's batch id. The output is a folder of
`part-00000.parquet`, `part-00001.parquet`, ... in input order (rows in input order inside each
part), plus `_loandesk.json` naming each part's file and rows. It appears, and the run's
decisions count as on record, only when every part is done; a run that fails leaves no output
and counts none of its decisions. When the decision log cannot take a run whose output is
complete (the database refuses a part or the commit, or cannot be reached when the run starts),
the output appears and the run's decisions wait in a sealed unsent file (`part_log`), as on a
single machine: the summary's `unsent` names it, for `python serve.py --replay FILE`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from model.core.errors import BatchError, DecisionLogError, EngineError, LoanDeskError, WorkerModelError
from model.records import staging
from model.records.batches import earlier_batches, replay_file
from model.records.log import DecisionLog, LogEntry, decision_id_array, entries_for, new_decision_ids, short_error
from model.records.staging import StagedBatch
from model.scoring.decisions import Decided
from model.scoring.table import output_schema, plain_output, score_table

from . import part_log
from .cluster import WORKER_ENVIRONMENT, check_cluster, connected, local_cluster, lost_scheduler
from .files import LOG_ROWS, MAX_PROBLEMS, Progress
from .partitions import (
    GLOB_CHARACTERS,
    MANIFEST,
    PARTITION_BYTES,
    Partition,
    Plan,
    Unreadable,
    default_output,
    plan,
    quote_count,
    read_partition,
)
from .reading import MAX_CELL_CHARS, first_long_cell
from .workers import ModelSpec, check_worker, worker_model, worker_name

LOG_ATTEMPTS = 4  # a part waits its turn on a locked SQLite log this many times (10 s each), then is kept aside


@dataclass
class PartResult:
    """What a worker reports for one part: counts, the first problems and how much it logged."""

    number: int
    path: str
    output: str
    rows: int = 0
    scored: int = 0
    approved: int = 0
    logged: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (row within the part, why)
    unreadable: list[Unreadable] = field(default_factory=list)
    lines: int = 0  # physical lines in the part (CSV), to number unreadable lines in the file
    too_long: tuple[int, str, int] | None = None  # (row within the part, column, characters): a cell over the limit
    worker: str = ""
    peak_rss: int = 0  # the worker process's peak resident memory so far, bytes
    staged: bool = True  # its decisions are in the staging table (or there were none to stage)
    stage_warning: str | None = None  # why they are not


def score_part(spec: ModelSpec, part: Partition, folder: str, run: StagedBatch | None,
               source: str, officer: str | None, stage: bool = True) -> PartResult:
    """Score one partition on a worker: write it as one Parquet file, then keep its decisions
    beside it (`part_log`) and, with `stage`, stage them in the log's database."""
    model = worker_model(spec)
    name = f"part-{part.number:05d}.parquet"
    result = PartResult(part.number, part.path, name)
    target = Path(folder) / name
    temporary = target.with_name(f".{name}.{os.getpid()}-{threading.get_ident()}")
    kept: list[tuple[Decided, pa.Array]] = []  # the scored rows, compact, made log entries only when written
    writer = None
    try:
        for batch in read_partition(part, result.unreadable):
            if part.kind == "csv" and (long := first_long_cell(batch)) is not None:
                row, column, length = long
                result.too_long = (result.rows + row + 1, column, length)
                run = None  # the run stops here (score_dataset refuses it): nothing of it is staged
                break
            scored = score_table(model, batch, first_row=result.rows + 1, new_ids=decision_id_array)
            table = plain_output(scored.table)
            if writer is None:
                writer = pq.ParquetWriter(temporary, table.schema)
            writer.write_table(table)
            result.rows += scored.rows
            result.scored += scored.scored
            result.approved += scored.approved
            room = MAX_PROBLEMS - len(result.problems)
            result.problems.extend(list(scored.errors.items())[:max(0, room)])
            if run is not None and scored.scored:
                kept.append((scored.decided, scored.decision_ids))
        if writer is None:  # no rows in this part: an empty file keeps the numbering whole
            schema = output_schema(pa.schema([pa.field(c, pa.string()) for c in part.columns]))
            if part.kind == "parquet":
                schema = output_schema(pq.read_schema(part.path))
            writer = pq.ParquetWriter(temporary, schema)
        writer.close()
        writer = None
        os.replace(temporary, target)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
    if part.kind == "csv":
        with open(part.path, "rb") as fh:
            fh.seek(part.start)
            result.lines = fh.read(part.end - part.start).count(b"\n")
    if run is not None:
        entries = [entry for decided, ids in kept for start in range(0, len(decided), LOG_ROWS)
                   for entry in entries_for(model, decided, source=source, officer=officer,
                                            decision_ids=ids[start:start + LOG_ROWS].to_pylist(),
                                            rows=slice(start, start + LOG_ROWS))]
        for entry in entries:
            entry.batch_id = run.batch_id
        part_log.write_part(folder, part.number, entries)  # first: the decisions survive a log that refuses
        if stage:
            result.logged, result.stage_warning = _record(run, part.number, entries)
        result.staged = stage and result.stage_warning is None
    result.worker, result.peak_rss = worker_name(), _peak_rss()
    return result


def _record(run: StagedBatch, part: int, entries: list[LogEntry]) -> tuple[int, str | None]:
    """Stage the part (waiting its turn on a locked SQLite log); (written, None) or (0, why not)."""
    log = _worker_log(run.log_url)
    warning = None
    for _attempt in range(LOG_ATTEMPTS):
        result = staging.stage_part(log, run, part, entries)
        if result.ok:
            return result.written, None
        warning = result.warning
        if "locked" not in (warning or ""):
            break
    return 0, warning


def file_sha256(path: str) -> str:
    """The SHA-256 of one input file (a task: the input is hashed on the workers, beside the scoring)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(8 << 20):
            digest.update(piece)
    return digest.hexdigest()


_logs: dict[str, DecisionLog] = {}


def _worker_log(url: str) -> DecisionLog:
    log = _logs.get(url)
    if log is None:
        log = _logs[url] = DecisionLog(url)
    return log


@dataclass
class DatasetSummary:
    """What a cluster run did, counted as `BatchSummary` counts a single-machine run."""

    input: str
    output: Path
    batch_id: str | None = None
    files: int = 0
    partitions: int = 0
    workers: int = 0
    rows: int = 0
    scored: int = 0
    approved: int = 0
    rejected: int = 0
    errors: int = 0
    problems: list[str] = field(default_factory=list)
    logged: int = 0
    log_warning: str | None = None
    unsent: Path | None = None  # where its decisions wait for `serve.py --replay`, when the log could not take them
    rescoring: str | None = None  # the warning when files of this run were on record already
    skipped: list[str] = field(default_factory=list)  # LoanDesk's own outputs in a folder or glob, left out
    input_sha256: str | None = None  # of the file; of the list of files' SHA-256s for several
    commit_seconds: float = 0.0  # putting the staged decisions on record, in one transaction
    peak_rss: dict[str, int] = field(default_factory=dict)  # per worker, bytes

    @property
    def problem_count(self) -> int:
        return self.errors


def score_dataset(
    model,
    input: str | Path,
    output: str | Path,
    *,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    log: DecisionLog | None = None,
    source: str = "command",
    officer: str | None = None,
    partition_bytes: int = PARTITION_BYTES,
    progress: Callable[[Progress], None] | None = None,
) -> DatasetSummary:
    """Score a CSV or Parquet file, glob or folder on a Dask cluster into a Parquet dataset folder.

    The cluster is `client`'s, else the scheduler at `scheduler` (tcp://host:port), else a local
    one of `workers` processes (default: one per core). Each worker loads and verifies the model
    at `model.path` itself and refuses any other. Raises BatchError when the input cannot be
    scored and EngineError when the run fails; in both cases nothing is written or counted.
    """
    output = Path(output)
    if any(ch in str(output) for ch in GLOB_CHARACTERS):
        raise BatchError(output, "an output name with *, ? or [ would be read as a pattern by a later run: "
                                 "choose another name")
    if output.exists():
        raise BatchError(output, "already exists: a run writes a new folder (choose another name or remove it)")
    if not output.parent.is_dir():
        raise BatchError(output, f"the folder {output.parent} does not exist")
    if log is not None and scheduler and _local_only(log.url) and not _loopback(scheduler):
        raise BatchError(Path(scheduler), "a cluster's workers cannot share a SQLite file: set LOANDESK_DB_URL to "
                                          "a PostgreSQL database they can all reach, or pass --no-log")
    spec = ModelSpec.of(model)
    try:
        return _score_on(connected(client, scheduler, workers), spec, model, input, output, log=log, source=source,
                         officer=officer, partition_bytes=partition_bytes, progress=progress)
    except (BatchError, EngineError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the cluster failed outside a part: said in one line, nothing was counted
        raise EngineError(f"the Dask cluster failed, so nothing was written or counted: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _score_on(cluster: connected, spec: ModelSpec, model, input: str | Path, output: Path, *,
              log: DecisionLog | None, source: str, officer: str | None, partition_bytes: int,
              progress: Callable[[Progress], None] | None) -> DatasetSummary:
    with cluster as cli:
        names = check_cluster(cli, spec)
        planned = plan(input, model.schema.names, partition_bytes=partition_bytes,
                       count_quotes=lambda blocks: _gather(cli, cli.map(quote_count, blocks, pure=False)))
        summary = DatasetSummary(str(input), output, files=len(planned.files), partitions=len(planned.partitions),
                                 workers=len(names), skipped=[str(p) for p in planned.skipped])
        hashes = cli.map(file_sha256, [str(p) for p in planned.files], pure=False)
        # A new owner-only folder with a random name (mkdtemp: never one planted there), renamed into place.
        folder = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=os.path.abspath(output.parent)))
        run = None
        staged, why = False, None
        started = datetime.now(UTC)
        try:
            if log is not None:
                run = StagedBatch(log.url, new_batch_id())
                summary.batch_id = run.batch_id
                staged, why = _open_run(log, run)
            results = _run_parts(cli, spec, planned, folder, run, source, officer, progress, staged)
            _summarize(summary, planned, results)
            if summary.rows == 0:
                raise BatchError(Path(str(input)), "no rows to score" + (
                    f"; first problem: {summary.problems[0]}" if summary.problems else ""))
            digests = _gather(cli, hashes)
            summary.input_sha256 = digests[0] if len(digests) == 1 else hashlib.sha256("".join(
                f"{d}  {p}\n" for d, p in zip(digests, planned.files, strict=True)).encode()).hexdigest()
            _write_manifest(folder, summary, planned, results, model)
            if log is not None and run is not None:  # on record first: a dataset never stands without its decisions
                summary.rescoring = rescoring_warning(log, summary.input_sha256, dict(zip(planned.files, digests,
                                                                                          strict=True)))
                why = why if not staged else next((r.stage_warning for r in results if not r.staged), None)
                _put_on_record(summary, log, run, folder, results, why, model=model, source=source,
                               officer=officer, started=started)
            shutil.rmtree(folder / part_log.SPOOL, ignore_errors=True)
            os.replace(folder, output)
        except BaseException as exc:
            if log is not None and run is not None and staged:
                summary.log_warning = staging.discard(log, run)
            if summary.unsent is not None:  # the output is not there after all: nothing of the run may count
                summary.unsent.unlink(missing_ok=True)
                summary.unsent = None
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, BatchError | EngineError | KeyboardInterrupt):
                raise
            if (lost := lost_scheduler(cli, exc)) is not None:
                raise lost from None
            raise EngineError(f"the run failed, so nothing was written or counted: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return summary


def _open_run(log: DecisionLog, run: StagedBatch) -> tuple[bool, str | None]:
    """Open the run for staging; (False, why) when the log cannot be reached: the run goes on and
    its decisions wait in an unsent file, as a single-machine run's do."""
    try:
        log.ensure_schema()
        staging.sweep(log)
        staging.open_batch(log, run)
    except (LoanDeskError, SQLAlchemyError, OSError) as exc:
        return False, short_error(exc)
    return True, None


def _put_on_record(summary: DatasetSummary, log: DecisionLog, run: StagedBatch, folder: Path,
                   results: list[PartResult], why: str | None, *, model, source: str, officer: str | None,
                   started: datetime) -> None:
    """Commit the staged batch; else put the run's kept decisions on record from one sealed file,
    as a single-machine run's commit does; else leave that file as the unsent file."""
    assert summary.input_sha256 is not None
    if why is None:
        began = time.perf_counter()
        try:
            summary.logged = staging.commit(
                log, run, file_sha256=summary.input_sha256, file_name=str(summary.input), source=source,
                officer=officer, model=model, rows=summary.rows, started_at=started)
            summary.commit_seconds = time.perf_counter() - began
            return
        except DecisionLogError as exc:
            why = short_error(exc.__cause__ or exc)
    staging.discard(log, run)  # staged rows never count; what could not be removed is swept in a day
    header = {"batch_id": run.batch_id, "file_sha256": summary.input_sha256, "file_name": str(summary.input)[:255],
              "source": source, "officer": (officer or "").strip() or None, "model_name": model.name,
              "model_version": model.version, "started_at": started.isoformat()}
    try:
        path = part_log.unsent_file(folder, [r.number for r in results], header, rows=summary.rows,
                                    batch_sha256=summary.input_sha256)
    except (OSError, ValueError) as exc:
        raise EngineError(f"the decision log could not take the run ({why}) and its decisions could not be kept "
                          f"in an unsent file ({short_error(exc)}): nothing was written or counted") from None
    try:
        summary.logged = replay_file(path, log, record_replay=False).written
    except (SQLAlchemyError, OSError, LoanDeskError, ValueError) as exc:
        summary.unsent = path
        summary.log_warning = (f"The decision log could not take this run's {summary.scored:,} decision(s) "
                               f"({why or short_error(exc)}), so none of them is on record yet. They are saved in "
                               f"{path}: put them on record with `python serve.py --replay {path}` once the log "
                               "is back.")
        return
    path.unlink(missing_ok=True)


def rescoring_warning(log: DecisionLog, run_sha256: str, files: dict[Path, str]) -> str | None:
    """A sentence when this run's input, or any of its files, is already on record, else None."""
    try:
        whole = earlier_batches(log, run_sha256)
        each = {path: found for path, digest in files.items() if (found := earlier_batches(log, digest))}
    except (LoanDeskError, SQLAlchemyError, OSError):
        return None  # the log cannot be read: the run says so when it records
    if whole:
        last = whole[0]
        times = "once" if len(whole) == 1 else f"{len(whole)} times"
        return (f"This input (SHA-256 {run_sha256[:12]}…) is already on record {times}: last as batch "
                f"{last.batch_id} on {last.recorded_at:%d %b %Y %H:%M} UTC, {last.decisions:,} decision(s) by "
                f"{last.source}. Scoring it again records its decisions again.")
    if each:
        shown = ", ".join(f"{path.name} (batch {found[0].batch_id})" for path, found in list(each.items())[:5])
        more = f" and {len(each) - 5:,} more" if len(each) > 5 else ""
        return (f"{len(each):,} of the {len(files):,} file(s) are already on record: {shown}{more}. Scoring them "
                "again records their decisions again.")
    return None


def _gather(cli, futures):
    """`cli.gather`, with a lost scheduler said as such."""
    try:
        return cli.gather(futures)
    except (BatchError, EngineError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if (lost := lost_scheduler(cli, exc)) is not None:
            raise lost from None
        raise


def _run_parts(cli, spec: ModelSpec, planned: Plan, folder: Path, run: StagedBatch | None, source: str,
               officer: str | None, progress, stage: bool = True) -> list[PartResult]:
    from distributed import as_completed

    tag = run.batch_id[:12] if run is not None else os.urandom(6).hex()
    futures = [cli.submit(score_part, spec, part, str(folder), run, source, officer, stage, pure=False,
                          key=f"loandesk-part-{part.number:05d}-{tag}") for part in planned.partitions]
    results: list[PartResult] = []
    rows = 0
    try:
        for future in as_completed(futures):
            results.append(future.result())
            rows += results[-1].rows
            if progress is not None:
                progress(Progress(rows, len(results) / len(futures)))
    except BaseException:
        with contextlib.suppress(Exception):  # the scheduler is gone: nothing left to cancel
            cli.cancel(futures)
        raise
    if len(results) < len(futures):  # as_completed ends early when the client loses its scheduler
        raise EngineError(f"the Dask scheduler at {cli.scheduler.address} went away mid-run ({len(results)} of "
                          f"{len(futures)} part(s) done), so nothing was written or counted: start it again and rerun")
    return sorted(results, key=lambda r: r.number)


def _summarize(summary: DatasetSummary, planned: Plan, results: list[PartResult]) -> None:
    """Counts, and each problem numbered as in its file: rows from 1 under the header, lines from 1."""
    several = len(planned.files) > 1
    rows_before: dict[str, int] = {}
    lines_before: dict[str, int] = {}
    for r in results:
        where = f"{Path(r.path).name} " if several else ""
        rows0 = rows_before.get(r.path, 0)
        lines0 = lines_before.get(r.path, 1)  # the header line
        # As on a single machine (`model.batch.reading`), a file that cannot be read whole is refused:
        # a line with the wrong number of fields or an over-long cell stops the run, naming it.
        if r.too_long is not None:
            row, column, length = r.too_long
            raise BatchError(Path(r.path), f"{where}row {rows0 + row:,}: the {column!r} cell holds {length:,} "
                                           f"characters; a cell may hold at most {MAX_CELL_CHARS:,}")
        if r.unreadable:
            bad = r.unreadable[0]
            line = f"line {lines0 + bad.line + 1:,}" if bad.line is not None else "a line"  # pyarrow counts from 0
            raise BatchError(Path(r.path), f"{where}{line}: {bad.fields} field(s) where the header has "
                                           f"{bad.expected}: {bad.text!r}")
        for row, why in r.problems:
            if len(summary.problems) < MAX_PROBLEMS:
                summary.problems.append(f"{where}row {rows0 + row}: {why}")
        rows_before[r.path] = rows0 + r.rows
        lines_before[r.path] = lines0 + r.lines
        summary.rows += r.rows
        summary.scored += r.scored
        summary.approved += r.approved
        summary.errors += r.rows - r.scored
        summary.peak_rss[r.worker] = max(summary.peak_rss.get(r.worker, 0), r.peak_rss)
    summary.rejected = summary.scored - summary.approved


def _write_manifest(folder: Path, summary: DatasetSummary, planned: Plan, results: list[PartResult], model) -> None:
    rows_before: dict[str, int] = {}
    parts = []
    for r in results:
        first = rows_before.get(r.path, 0) + 1
        parts.append({"file": r.output, "input": r.path, "first_row": first, "rows": r.rows})
        rows_before[r.path] = first - 1 + r.rows
    manifest = {
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"), "batch_id": summary.batch_id,
        "model": {"name": model.name, "version": model.version, "pipeline_sha256": model.sha256},
        "input": summary.input, "rows": summary.rows, "scored": summary.scored,
        "order": "parts in name order, rows in input order within each part; first_row counts rows "
                 "from 1 under the header, per input file",
        "parts": parts,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_dataset(path: str | Path) -> pa.Table:
    """A scored dataset back as one table, in input order (the parts in name order)."""
    files = sorted(Path(path).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux and macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _local_only(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def new_batch_id() -> str:
    """32 hex digits, time first (like a decision id)."""
    return new_decision_ids(1)[0]


__all__ = ["MANIFEST", "WORKER_ENVIRONMENT", "DatasetSummary", "EngineError", "ModelSpec", "WorkerModelError",
           "check_worker", "default_output", "local_cluster", "read_dataset", "rescoring_warning", "score_dataset",
           "score_part", "worker_model"]
