"""What one adverse action notice says, as plain data: the template's words filled in for one decision.

Kept apart from the PDF layout so that a test (or another output, such as a letter in HTML) can
read the exact sentences an applicant is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from model.core.formatting import format_value
from model.core.schema import Field, Schema
from model.scoring.reason_codes import field_for_code, split_code

from .template import OVERRIDE_PREFIX, NoticeTemplate, fill

MAX_REASONS = 4  # Regulation B: more than four principal reasons is rarely helpful to an applicant
MAX_KEY_FACTORS = 4  # FCRA 609(f)(1)(C): up to four key factors, a fifth when it is recent inquiries
KEY_FACTOR_SEPARATOR = ";"


@dataclass(frozen=True)
class NoticeReason:
    code: str
    text: str


@dataclass(frozen=True)
class ScoreDisclosure:
    """FCRA 615(a)(2): the score used, its range, the key factors, the date and who provided it."""

    text: str
    score: str
    low: str
    high: str
    date: str
    provider: str
    key_factors: tuple[str, ...]
    no_key_factors: str
    questions: str


@dataclass(frozen=True)
class ConsumerReport:
    text: str
    agency_name: str
    agency_address: str
    agency_phone: str


@dataclass(frozen=True)
class NoticeContent:
    decision_id: str
    notice_date: str
    decision_date: str
    creditor_name: str
    creditor_address: tuple[str, ...]
    creditor_phone: str
    applicant: tuple[str, ...]  # name and address lines when known, else empty
    title: str
    action_taken: str
    reasons_heading: str
    reasons: tuple[NoticeReason, ...]
    no_single_reason: str
    consumer_report: ConsumerReport | None
    credit_score: ScoreDisclosure | None
    contact: str
    ecoa: str
    footer: str

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]


def notice_content(
    template: NoticeTemplate,
    *,
    decision_id: str,
    decided_at: datetime,
    inputs: Mapping[str, Any],
    reason_codes: Sequence[str],
    schema: Schema | None,
    reference: Mapping[str, Any] | None = None,
    key_factors: Sequence[str] | str | None = None,
    applicant: Sequence[str] = (),
    model_version: str = "",
    notice_date: date | None = None,
) -> NoticeContent:
    """The notice for one rejected applicant.

    `inputs` are the values the decision was made on (from the log); `reason_codes` its principal
    reasons, strongest first; `schema` and `reference` the deciding model's fields and typical
    approved applicant (for labels and the {typical} placeholder); `key_factors` the consumer
    reporting agency's key factors for the score (a list, or one text separated by ";"; when None,
    taken from the inputs' key-factors field if there is one).
    """
    fields = schema.fields if schema is not None else ()
    reference = reference or {}
    decided_on = _day(decided_at)
    today = notice_date or datetime.now(UTC).date()
    values = {**template.common_values(), "decision_date": _date_text(decided_on),
              "notice_date": _date_text(today), "decision_id": decision_id}
    reasons = tuple(_reason(template, code, fields, inputs, reference, values)
                    for code in list(reason_codes)[:MAX_REASONS])
    report = None
    if template.report_used:
        report = ConsumerReport(fill(template.report_text, values), template.report_agency_name,
                                template.report_agency_address, template.report_agency_phone)
    return NoticeContent(
        decision_id=decision_id, notice_date=values["notice_date"], decision_date=values["decision_date"],
        creditor_name=template.creditor_name, creditor_address=template.creditor_address,
        creditor_phone=template.creditor_phone, applicant=tuple(line for line in applicant if line),
        title=fill(template.title, values), action_taken=fill(template.action_taken, values),
        reasons_heading=fill(template.reasons_heading, values), reasons=reasons,
        no_single_reason=fill(template.no_single_reason, values), consumer_report=report,
        credit_score=_score(template, fields, inputs, key_factors, values),
        contact=fill(template.contact, values), ecoa=fill(template.ecoa, values),
        footer=f"Decision {decision_id}" + (f" · model version {model_version}" if model_version else "")
               + f" · decided {values['decision_date']} · notice of {values['notice_date']}",
    )


def uses_credit_score(template: NoticeTemplate, schema: Schema | None) -> bool:
    """Whether a notice from this model carries the credit score disclosure."""
    return (template.credit_score is not None and schema is not None
            and template.credit_score.field in schema.names)


def split_key_factors(text: Any) -> tuple[str, ...]:
    """The agency's key factors from one text ("Too many inquiries; Short history"), at most four
    (a fifth when it is about inquiries, as FCRA allows)."""
    if text is None or (isinstance(text, float) and text != text):
        return ()
    parts = [p.strip() for p in (text if isinstance(text, list | tuple) else str(text).split(KEY_FACTOR_SEPARATOR))]
    parts = [p for p in parts if p]
    if len(parts) > MAX_KEY_FACTORS and "inquir" in parts[MAX_KEY_FACTORS].lower():
        return tuple(parts[:MAX_KEY_FACTORS + 1])
    return tuple(parts[:MAX_KEY_FACTORS])


def _reason(template: NoticeTemplate, code: str, fields: Sequence[Field], inputs: Mapping[str, Any],
            reference: Mapping[str, Any], values: dict[str, str]) -> NoticeReason:
    f = None if code.startswith(OVERRIDE_PREFIX) else field_for_code(code, fields)
    if code.startswith(OVERRIDE_PREFIX):
        label = value = typical = ""
    elif f is not None:
        label, value = f.label, format_value(f, inputs.get(f.name))
        typical = format_value(f, reference[f.name]) if f.name in reference else "not recorded"
    else:  # a code of a field this model does not know: its name, still in the applicant's terms
        label, value, typical = split_code(code)[0].replace("_", " ").capitalize(), "not recorded", "not recorded"
    text = fill(template.reason_wording(code), {**values, "label": label, "value": value, "typical": typical})
    return NoticeReason(code, text[:1].upper() + text[1:])


def _score(template: NoticeTemplate, fields: Sequence[Field], inputs: Mapping[str, Any],
           key_factors: Sequence[str] | str | None, values: dict[str, str]) -> ScoreDisclosure | None:
    section = template.credit_score
    f = next((f for f in fields if section is not None and f.name == section.field), None)
    if section is None or f is None:
        return None
    factors = split_key_factors(inputs.get(section.key_factors_field) if key_factors is None else key_factors)
    score = inputs.get(f.name)
    return ScoreDisclosure(
        text=fill(section.text, values), score=format_value(f, score) if score is not None else "not available",
        low=format_value(f, section.low), high=format_value(f, section.high), date=values["decision_date"],
        provider=template.report_agency_name, key_factors=factors,
        no_key_factors=fill(section.no_key_factors, values), questions=fill(section.questions, values))


def _day(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()
    return moment


def _date_text(day: date) -> str:
    return f"{day.strftime('%B')} {day.day}, {day.year}"
