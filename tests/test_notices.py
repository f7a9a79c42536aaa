"""Adverse action notices: the template, the content and the PDF, read back as text with pypdf."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from model.core.schema import KNOWN_FIELDS, Field, Schema
from model.notices.content import notice_content, split_key_factors
from model.notices.example import example_content
from model.notices.example import main as example_main
from model.notices.render import render_pdf
from model.notices.template import DEFAULT_TEMPLATE, TemplateError, load_template

SCHEMA = Schema(tuple(Field(name=name, kind="number", **known) for name, known in KNOWN_FIELDS.items()))
APPLICANT = {"age": 30, "income": 28_000, "credit_score": 560, "loan_amount": 20_000, "employment_years": 1}
REFERENCE = {"age": 45, "income": 61_000, "credit_score": 701, "loan_amount": 14_500, "employment_years": 8}
CODES = ["CREDIT_SCORE_LOW", "LOAN_AMOUNT_HIGH", "INCOME_LOW", "EMPLOYMENT_YEARS_LOW"]
ECOA_SENTENCE = ("The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against credit "
                 "applicants on the basis of race, color, religion, national origin, sex, marital status, age")


def pdf_text(pdf: bytes) -> str:
    """Every page's text, with runs of whitespace (line breaks included) as one space."""
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def make(template=None, **changes) -> bytes:
    args = dict(decision_id="0187aa00bb11cc22", decided_at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
                inputs=APPLICANT, reason_codes=CODES, schema=SCHEMA, reference=REFERENCE,
                key_factors="Serious delinquency; Too many recent inquiries", model_version="v-test",
                notice_date=date(2026, 11, 25))
    args.update(changes)
    return render_pdf(notice_content(template or load_template(), **args))


def test_the_notice_holds_every_reason_with_its_code_in_the_applicants_terms():
    text = pdf_text(make())
    assert "Income insufficient for amount of credit requested (your annual income: $28,000)" in text
    assert "Amount of credit requested too high in relation to your income (you asked for $20,000)" in text
    assert "Credit score from the consumer reporting agency too low (your score: 560)" in text
    assert "Length of employment (yours: 1 year)" in text
    for code in CODES:
        assert f"reason code {code}" in text
    # strongest first, as the model ranked them
    assert [text.index(f"reason code {c}") for c in CODES] == sorted(text.index(f"reason code {c}") for c in CODES)


def test_the_notice_names_the_creditor_the_decision_and_its_date_and_carries_the_ecoa_notice():
    text = pdf_text(make())
    assert "Example Community Bank" in text and "100 Main Street" in text and "Springfield, IL 62701" in text
    assert "credit denied on November 24, 2026" in text
    assert "Date: November 25, 2026" in text
    assert "Application reference: 0187aa00bb11cc22" in text
    assert ECOA_SENTENCE in text
    assert "because all or part of the applicant's income derives from any public assistance program" in text
    assert "Bureau of Consumer Financial Protection, 1700 G Street NW, Washington, DC 20552" in text


def test_the_credit_score_disclosure_gives_the_score_its_range_the_key_factors_and_the_agency():
    text = pdf_text(make())
    assert "Your credit score: 560" in text
    assert "Scores range from a low of 300 to a high of 850" in text
    assert ("Key factors that adversely affected your credit score: 1. Serious delinquency "
            "2. Too many recent inquiries") in text
    assert "Example Credit Bureau" in text
    assert "right to a free copy of your report from the reporting agency" in text  # FCRA 615(a)
    assert "played no part in our decision" in text


def test_without_key_factors_the_disclosure_says_where_to_get_them():
    text = pdf_text(make(key_factors=None))
    assert "Your credit score: 560" in text
    assert "Not supplied with this application" in text


def test_key_factors_come_from_the_inputs_when_a_batch_row_carries_them():
    text = pdf_text(make(key_factors=None, inputs={**APPLICANT, "credit_score_factors": "Short credit history"}))
    assert "1. Short credit history" in text


def test_a_model_without_a_credit_score_field_gets_no_score_disclosure():
    schema = Schema(tuple(f for f in SCHEMA.fields if f.name != "credit_score"))
    text = pdf_text(make(schema=schema, reason_codes=["INCOME_LOW"]))
    assert "Your credit score" not in text
    assert "Scores range" not in text
    assert ECOA_SENTENCE in text


def test_at_most_four_reasons_are_given():
    text = pdf_text(make(reason_codes=[*CODES, "AGE_LOW"]))
    assert "AGE_LOW" not in text


def test_a_rejection_without_a_single_reason_says_so_rather_than_inventing_one():
    text = pdf_text(make(reason_codes=[]))
    assert "No single item of the information you gave explains our decision" in text
    assert "reason code" not in text


def test_a_code_without_its_own_wording_uses_its_kinds_wording_with_the_values():
    schema = Schema((*SCHEMA.fields, Field(name="savings", kind="number", label="Savings", unit="$", integer=True)))
    text = pdf_text(make(schema=schema, reason_codes=["SAVINGS_LOW"], inputs={**APPLICANT, "savings": 1_200},
                         reference={**REFERENCE, "savings": 15_000}))
    assert ("Savings too low (yours: $1,200; typical of the applicants we approve: $15,000) "
            "(reason code SAVINGS_LOW)") in text


def test_text_beyond_latin_1_is_set_in_the_bundled_font_and_still_reads_back(tmp_path):
    edited = tmp_path / "bank.toml"
    edited.write_text(DEFAULT_TEMPLATE.read_text().replace('name = "Example Community Bank"',
                                                           'name = "Banque Łódź – Épargne"'))
    pdf = make(load_template(edited), applicant=("Zoë Ægir",))
    assert b"DejaVu" in pdf
    text = pdf_text(pdf)
    assert "Banque Łódź – Épargne" in text and "Zoë Ægir" in text


def test_the_banks_edited_template_is_what_the_applicant_reads(tmp_path):
    edited = tmp_path / "bank.toml"
    edited.write_text(DEFAULT_TEMPLATE.read_text()
                      .replace('name = "Example Community Bank"', 'name = "Prairie State Credit Union"')
                      .replace('INCOME_LOW = "Income insufficient', 'INCOME_LOW = "Your income is too low'))
    text = pdf_text(make(load_template(edited)))
    assert "Prairie State Credit Union" in text and "Example Community Bank" not in text
    assert "Your income is too low for amount of credit requested" in text


@pytest.mark.parametrize(("change", "message"), [
    (('action_taken = "Thank you', 'action_taken = "Thank {applicant_name} you'),
     "notice.action_taken uses {applicant_name}, which is not a placeholder here"),
    (('INCOME_LOW = "Income insufficient', 'INCOME_LOW = "Income {value:>10} insufficient'),
     "reasons.INCOME_LOW uses {value}"),
    (('ecoa = "NOTICE:', 'ecoa = "NOTICE: {'), "notice.ecoa has a stray brace"),
    (("low = 300", "low = 900"), "credit_score.low (900) must be below credit_score.high (850)"),
    (("used = true", 'used = "yes"'), "consumer_report.used must be true or false"),
    (('phone = "1-800-555-0100"\n', ""), "creditor.phone is missing"),
    (("[reasons]\n", "[reasons]\nINCOME_SMALL = \"x\"\n"), "is not a reason code"),
    (("[creditor]", "[creditor"), "not valid TOML"),
])
def test_a_broken_template_is_refused_naming_the_key(tmp_path, change, message):
    edited = tmp_path / "bank.toml"
    text = DEFAULT_TEMPLATE.read_text()
    assert change[0] in text
    edited.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(TemplateError) as caught:
        load_template(edited)
    assert message in str(caught.value)
    assert str(edited) in str(caught.value)


def test_a_missing_template_file_says_which_setting_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LOANDESK_NOTICE_TEMPLATE", str(tmp_path / "nowhere.toml"))
    with pytest.raises(TemplateError, match=r"no such notice template.*LOANDESK_NOTICE_TEMPLATE"):
        load_template()


def test_key_factors_are_at_most_four_and_a_fifth_only_for_inquiries():
    assert split_key_factors("a; b;; c ") == ("a", "b", "c")
    assert split_key_factors("a;b;c;d;e") == ("a", "b", "c", "d")
    assert split_key_factors("a;b;c;d;Number of recent inquiries") == ("a", "b", "c", "d", "Number of recent inquiries")
    assert split_key_factors(None) == () and split_key_factors(float("nan")) == ()


def test_the_filled_in_example_is_one_page_with_every_part(tmp_path):
    out = tmp_path / "example.pdf"
    assert example_main([str(out)]) == 0
    reader = PdfReader(out)
    assert len(reader.pages) == 1
    text = pdf_text(out.read_bytes())
    for code in example_content(load_template()).reason_codes:
        assert f"reason code {code}" in text
    assert "Your credit score: 585" in text and ECOA_SENTENCE in text and "Jordan Example" in text


def test_the_example_in_docs_is_the_one_the_shipped_template_makes():
    shipped = Path(__file__).resolve().parents[1] / "docs" / "adverse-action-notice-example.pdf"
    assert pdf_text(shipped.read_bytes()) == pdf_text(render_pdf(example_content(load_template())))


def test_a_word_longer_than_a_line_is_cut_to_fit_and_nothing_is_lost():
    long_id = "A" * 150
    pdf = make(decision_id=long_id)
    assert long_id in pdf_text(pdf).replace(" ", "")


def test_a_notice_is_one_page_for_four_reasons_and_a_full_disclosure():
    assert len(PdfReader(io.BytesIO(make())).pages) == 1
