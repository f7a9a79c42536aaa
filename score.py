"""Score a CSV of applicants: one decision per row, with reasons, into a CSV or Parquet file.

    python score.py applicants.csv -o decisions.csv
    python score.py applicants.csv -o decisions.parquet --model artifacts/loan_approval_model --version VERSION
    python score.py applicants.csv -o scratch.csv --no-log      # a throwaway run: nothing recorded
    python score.py applicants.csv --notices notices/ --notice-id application_id   # a PDF per rejection
    python score.py 'book/*.parquet' --engine dask      # on a local Dask cluster: book-parquet-decisions/
    python score.py book/ --engine dask --scheduler tcp://HOST:8786 -o /shared/book-decisions

Exit status: 0 when rows were scored and the run is on record (rows with errors are reported,
and flagged in the output's error column); 1 when the file could not be scored (no such file, not a
CSV, required columns missing, a malformed line, every row invalid, a model that cannot be trusted;
no output is written and nothing is recorded); 2 for a wrong command line; 3 when the output was
written but the decision log could not take the run (its decisions are in the unsent file the
message names, for `python serve.py --replay FILE`); 130 when interrupted (nothing recorded).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from model.batch.dask_engine import DatasetSummary, default_output, score_dataset
from model.batch.files import BatchError, BatchSummary, Progress, preview_file, score_file
from model.core import config
from model.core.errors import EngineError, ModelFolderError, TemplateError
from model.notices.produce import notices_for_batch
from model.notices.template import load_template
from model.records import access
from model.records.log import DecisionLog, default_url
from model.registry.store import ModelIntegrityError, default_model_dir, load_model, model_folder_problem

SHOWN_PROBLEMS = 10
NOT_RECORDED = 3  # the exit status when the output was written but the log could not take the run


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.notice_id and args.notices is None:
        parser.error("--notice-id names the notices: give --notices DIR too")
    if args.engine == "local" and (args.scheduler or args.workers):
        parser.error("--scheduler and --workers are for --engine dask")
    if args.engine == "dask" and args.notices is not None:
        parser.error("--notices is for --engine local (the notices are made from one output file)")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    given_as = "--model" if args.model is not None else "LOANDESK_MODEL_DIR" if config.model_dir_given() else ""
    path = args.model if args.model is not None else default_model_dir()
    try:
        problem = model_folder_problem(path, given_as)
        if problem:
            raise ModelFolderError(problem)
        model = load_model(path, version=args.version)
    except ModelIntegrityError as exc:
        return _fail(f"the model cannot be used: {exc}")
    template = None
    if args.notices is not None:
        try:  # before scoring: a broken template or a wrong id column is found in a second, not after an hour
            template = load_template()
            if args.notice_id and args.notice_id not in preview_file(args.applicants, model.schema.names, 1).columns:
                return _fail(f"--notice-id: the column {args.notice_id!r} is not in {args.applicants}")
        except TemplateError as exc:
            return _fail(f"the notice template cannot be used: {exc}")
        except BatchError as exc:
            return _fail(str(exc))
    log = None if args.no_log else DecisionLog()
    if args.engine == "dask":
        return _score_on_dask(args, model, log)
    args.applicants = Path(args.applicants)
    output = args.output or args.applicants.with_name(f"{args.applicants.stem}-decisions.csv")
    bar = _ProgressBar() if not args.quiet and sys.stderr.isatty() else None
    try:
        summary = score_file(model, args.applicants, output, log=log, source="command", officer=_who(),
                             progress=bar)
    except BatchError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"could not write {output}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return _fail("interrupted: no output was written", status=130)
    finally:
        if bar is not None:
            bar.close()
    _report(summary, model, log)
    if summary.unsent is not None:
        return _fail(f"the decision log could not take this run: its {summary.scored:,} decision(s) are saved "
                     f"in {summary.unsent}; once the log is back, put them on record with "
                     f"`python serve.py --replay {summary.unsent}`", status=NOT_RECORDED)
    if summary.scored == 0:
        return _fail(f"{args.applicants}: no row could be scored; every row has an error (see {output})")
    if template is not None:
        try:
            made = notices_for_batch(output, args.notices, template=template, schema=model.schema,
                                     reference=model.card.get("reference", {}), model_version=model.version,
                                     log=log, id_column=args.notice_id, produced_by=_who())
        except OSError as exc:
            return _fail(f"could not write the notices to {args.notices}: {exc.strerror or exc}")
        print(f"Notices: {made.written:,} adverse action notice(s) written to {made.folder}"
              + ("" if log is None else f", {made.recorded:,} recorded in the decision log"))
        if made.log_warning:
            print(f"Warning: {made.log_warning}", file=sys.stderr)
    return 0


def _who() -> str:
    """Who ran the command, as every decision, batch run and notice of it is recorded: `os:USER`."""
    return access.shell().label


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="score.py", description="Score a CSV of applicants with a LoanDesk model.",
        epilog="Rows are numbered from 1, the first row under the header. Every scored row is recorded "
               "in the decision log (LOANDESK_DB_URL, else data/decisions.db) unless --no-log is given.")
    parser.add_argument("applicants",
                        help="CSV of applicants (comma or semicolon separated, UTF-8); with --engine dask also "
                             "a Parquet file, a folder of them or a quoted glob ('book/*.csv')")
    parser.add_argument("-o", "--output", type=Path,
                        help="where to write the decisions: .csv, or .parquet for Parquet "
                             "(default: <applicants>-decisions.csv beside the input); with --engine dask a new "
                             "folder of Parquet parts, by default beside the input and never inside an input "
                             "folder: book.csv -> book-decisions, book/ -> book-decisions, 'book/*.csv' -> "
                             "book-csv-decisions (a folder or glob skips LoanDesk's own outputs)")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: this process, streaming the file (default); dask: a Dask cluster, "
                             "one Parquet part per partition of the input")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="the Dask scheduler of a running cluster (default: a local cluster of --workers)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="workers of the local Dask cluster (default: one per core)")
    parser.add_argument("--model", type=Path,
                        help="a model folder (its active version) or a version folder "
                             f"(default: LOANDESK_MODEL_DIR, else {default_model_dir()})")
    parser.add_argument("--version", help="score with this version of the model folder instead of the active one")
    parser.add_argument("--no-log", action="store_true",
                        help="do not record the decisions in the decision log (for throwaway runs)")
    parser.add_argument("--notices", type=Path, metavar="DIR",
                        help="write an adverse action notice (PDF) for every rejected row into DIR, named "
                             "row-<n>.pdf, or after --notice-id; the template is LOANDESK_NOTICE_TEMPLATE")
    parser.add_argument("--notice-id", metavar="COLUMN",
                        help="name each notice after this column of the file (an application id) instead of "
                             "its row number")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _score_on_dask(args, model, log: DecisionLog | None) -> int:
    # Dask's client logs a lost scheduler as it gives up on it; the run says it once, in one line.
    import distributed  # noqa: F401 - its logging is set up on import: quieten it after

    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    source = str(args.applicants)
    output = args.output or default_output(source)
    bar = _ProgressBar() if not args.quiet and sys.stderr.isatty() else None
    try:
        summary = score_dataset(model, source, output, scheduler=args.scheduler, workers=args.workers, log=log,
                                source="command", officer=_who(), progress=bar)
    except BatchError as exc:
        return _fail(str(exc))
    except EngineError as exc:
        said = "nothing was written" in str(exc)
        return _fail(f"{exc}" + ("" if said else " (no output was written; no decision of this run is counted)"))
    except OSError as exc:
        return _fail(f"could not write {output}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return _fail("interrupted: no output was written, no decision counted", status=130)
    finally:
        if bar is not None:
            bar.close()
    print(f"On {summary.workers} Dask worker(s), {summary.partitions} part(s) from {summary.files} file(s):")
    if summary.skipped:
        print(f"Skipped {len(summary.skipped):,} file(s) LoanDesk wrote (earlier outputs, not applicants): "
              + ", ".join(summary.skipped[:3]) + (" …" if len(summary.skipped) > 3 else ""))
    _report(summary, model, log)
    if summary.unsent is not None:
        return _fail(f"the decision log could not take this run: its {summary.scored:,} decision(s) are saved "
                     f"in {summary.unsent}; once the log is back, put them on record with "
                     f"`python serve.py --replay {summary.unsent}`", status=NOT_RECORDED)
    if summary.scored == 0:
        return _fail(f"{source}: no row could be scored; every row has an error (see {output})")
    return 0


def _report(summary: BatchSummary | DatasetSummary, model, log: DecisionLog | None) -> None:
    if summary.rescoring:
        print(f"Warning: {summary.rescoring}", file=sys.stderr)
    print(f"Scored {summary.scored:,} of {summary.rows:,} row(s) with {model.name} version {model.version}: "
          f"{summary.approved:,} approved, {summary.rejected:,} rejected, "
          f"{summary.errors:,} with errors.")
    if summary.problem_count:
        print(f"Problems ({summary.problem_count:,}; rows are numbered from 1, the first row under the header):")
        for problem in summary.problems[:SHOWN_PROBLEMS]:
            print(f"  {problem}")
        if summary.problem_count > SHOWN_PROBLEMS:
            print(f"  … and {summary.problem_count - SHOWN_PROBLEMS:,} more: see the error column of the output")
    print(f"Wrote {summary.output}")
    if log is None:
        print("Decision log: not recorded (--no-log)")
    elif summary.unsent is not None:
        pass  # said by the caller, with the exit status
    elif summary.log_warning:
        print(f"Warning: {summary.log_warning}", file=sys.stderr)
    else:
        digest = getattr(summary, "file_sha256", None) or getattr(summary, "input_sha256", None)
        print(f"Decision log: {summary.logged:,} decision(s) recorded as batch {summary.batch_id} in "
              f"{_plain_url(default_url())}" + (f" (input SHA-256 {digest[:12]}…)" if digest else ""))


def _plain_url(url: str) -> str:
    """The log's address without a password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}@{tail}"


class _ProgressBar:
    """A one-line bar on stderr, redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self) -> None:
        self._drawn = 0.0

    def __call__(self, done: Progress) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.1 and done.fraction < 1:
            return
        self._drawn = now
        filled = round(self.WIDTH * done.fraction)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done.fraction:4.0%}  "
                         f"{done.rows:,} rows")
        sys.stderr.flush()

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")


def _fail(message: str, status: int = 1) -> int:
    print(f"score.py: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
