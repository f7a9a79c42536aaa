"""Record what became of each loan: outcomes matched to their decisions by decision id.

    python outcomes.py import outcomes.csv                 # columns decision_id, outcome, optional observed_at
    python outcomes.py import outcomes.csv --dry-run       # check every row, record nothing
    python outcomes.py import outcomes.csv --by ada@bank.example

`outcome` is good or bad (or 1 for good, 0 for bad); `observed_at` is a date (YYYY-MM-DD) or a UTC
time (YYYY-MM-DDTHH:MM:SSZ). An id the log does not know is reported, the same outcome twice is
refused as a duplicate, and a different outcome for a decision that has one is recorded as a
correction (the earlier one is kept in the history). Rows are numbered from 1, the first under
the header.

Exit status: 0 when every row was recorded (or, with --dry-run, would be); 1 when a row was refused
or the file or the log could not be used (the rows that passed are recorded all the same, and
importing the corrected file again refuses them as duplicates, harmlessly); 2 for a wrong command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.core.errors import DecisionLogError, IdentityError
from model.records import access
from model.records.log import DecisionLog
from model.records.outcomes import OutcomeFileError, OutcomeReport, read_outcomes_file, record_outcomes, validate_rows

SHOWN_PROBLEMS = 20


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rows = read_outcomes_file(args.file)
    except OutcomeFileError as exc:
        return _fail(str(exc))
    if args.dry_run:
        _, problems = validate_rows(rows)
        report = OutcomeReport(rows=len(rows), problems=problems)
        print(f"Checked {len(rows):,} row(s): {len({p.row for p in problems}):,} with a problem "
              "(decision ids are matched only when recording).")
        _problems(report)
        return 1 if problems else 0
    try:
        who = recorder(args.by)
    except IdentityError as exc:
        return _fail(f"--by: {exc}", status=2)
    try:
        report = record_outcomes(DecisionLog(), rows, source=f"file:{args.file.name}", recorded_by=who)
    except DecisionLogError as exc:
        return _fail(str(exc))
    print(report.summary())
    _problems(report)
    return 1 if report.problems else 0


def recorder(on_behalf_of: str | None) -> str:
    """Who recorded the outcomes: the operating-system user who ran this (`os:USER`), never only a typed
    name; `--by` adds on whose behalf, checked like any name on record."""
    me = access.shell().label
    return f"{me} for {access.clean_name(on_behalf_of)}" if on_behalf_of else me


def _problems(report: OutcomeReport) -> None:
    for p in report.problems[:SHOWN_PROBLEMS]:
        print(f"  row {p.row}, {p.field} = {p.value!r}: {p.why}")
    if len(report.problems) > SHOWN_PROBLEMS:
        print(f"  ... and {len(report.problems) - SHOWN_PROBLEMS:,} more")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outcomes.py", description="Record loan outcomes against their decisions in the decision log.",
        epilog="The decision log is LOANDESK_DB_URL, else data/decisions.db.")
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="record the outcomes in a CSV file",
                              description="Record the outcomes in a CSV file (comma or semicolon, UTF-8): "
                                          "decision_id, outcome (good/bad or 1/0), optional observed_at.")
    imp.add_argument("file", type=Path, help="the outcomes CSV")
    imp.add_argument("--by", help="on whose behalf you record them; kept after your OS user (os:USER for NAME)")
    imp.add_argument("--dry-run", action="store_true", help="check every row's fields and record nothing")
    return parser


def _fail(message: str, status: int = 1) -> int:
    print(f"outcomes.py: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
