"""The filled-in example of the notice template: a rejected applicant of the built-in model.

    python -m model.notices.example [OUT.pdf] [--template FILE]

writes docs/adverse-action-notice-example.pdf by default, so a bank can see what its edited
template produces before any applicant does.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

from model.core.schema import KNOWN_FIELDS, Field, Schema

from .content import NoticeContent, notice_content
from .render import render_pdf
from .template import NoticeTemplate, load_template

EXAMPLE_OUT = Path(__file__).resolve().parents[2] / "docs" / "adverse-action-notice-example.pdf"
APPLICANT = {"age": 29, "income": 31_000, "credit_score": 585, "loan_amount": 16_000, "employment_years": 1}
REFERENCE = {"age": 45, "income": 61_000, "credit_score": 701, "loan_amount": 14_500, "employment_years": 8}
CODES = ("CREDIT_SCORE_LOW", "LOAN_AMOUNT_HIGH", "INCOME_LOW", "EMPLOYMENT_YEARS_LOW")
KEY_FACTORS = ("Serious delinquency", "Proportion of balances to credit limits is too high",
               "Length of time accounts have been established")


def example_content(template: NoticeTemplate) -> NoticeContent:
    """The example's content: fixed values, so the example reads the same every time it is made."""
    schema = Schema(tuple(Field(name=name, kind="number", **known) for name, known in KNOWN_FIELDS.items()))
    return notice_content(
        template, decision_id="0187e3a9c4b2d5f600000000", decided_at=datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
        inputs=APPLICANT, reason_codes=CODES, schema=schema, reference=REFERENCE, key_factors=KEY_FACTORS,
        applicant=("Jordan Example", "12 Elm Street", "Springfield, IL 62704"),
        model_version="20261124-103327-ba9fe5bc",
        notice_date=date(2026, 11, 25))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.notices.example", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=EXAMPLE_OUT)
    parser.add_argument("--template", type=Path, help="a notice template (default: LOANDESK_NOTICE_TEMPLATE, "
                                                      "else the one shipped with LoanDesk)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(render_pdf(example_content(load_template(args.template))))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
