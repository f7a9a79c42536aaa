"""`python -m model.records migrate [--url URL]`: upgrade a decision log's schema, every row kept."""

from __future__ import annotations

import argparse
import sys

from model.records.log import DecisionLog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.records", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("migrate", help="upgrade the decision log to this LoanDesk's schema")
    up.add_argument("--url", help="SQLAlchemy URL of the log (default: LOANDESK_DB_URL, else data/decisions.db)")
    status = sub.add_parser("status", help="print the log's schema revision and whether it is behind")
    status.add_argument("--url")
    args = parser.parse_args(argv)
    log = DecisionLog(args.url)
    try:
        if args.command == "migrate":
            before, after = log.migrate()
            print(f"{log!r}: schema {before or 'none'} → {after}" if before != after
                  else f"{log!r}: schema {after}, already up to date")
        else:
            at, latest = log.revision()
            print(f"{log!r}: schema {at or 'none'}; this LoanDesk's is {latest}"
                  + ("" if at == latest else " — run `python -m model.records migrate`"))
    except Exception as exc:  # a person reads this: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
