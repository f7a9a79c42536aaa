"""The bank's notice template: a TOML file of names, addresses and texts, checked when it is loaded.

The layout is code (model/notices/render.py); the words are the bank's, in a file a compliance
officer can read and edit without touching Python. A template with a missing key, a misspelt
placeholder or a section of the wrong type is refused when it is loaded, naming the key, so a
broken edit never reaches an applicant.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.core import config
from model.core.errors import TemplateError
from model.scoring.reason_codes import KINDS, split_code

DEFAULT_TEMPLATE = Path(__file__).with_name("template.toml")
TEMPLATE_ENV = config.NOTICE_TEMPLATE.name

# Placeholders every text may use, and those a reason's text adds.
COMMON = frozenset({"creditor_name", "creditor_address", "creditor_phone", "agency_name", "agency_address",
                    "decision_date", "notice_date", "decision_id", "credit_description"})
REASON = COMMON | {"label", "value", "typical"}


OVERRIDE_PREFIX = "OVERRIDE_"  # the notice's code for a rejection an officer made: OVERRIDE_<override reason>


@dataclass(frozen=True)
class CreditScoreSection:
    field: str
    low: float
    high: float
    key_factors_field: str
    text: str
    no_key_factors: str
    questions: str


@dataclass(frozen=True)
class NoticeTemplate:
    """Every word of a notice that is the bank's, not the applicant's."""

    path: Path
    creditor_name: str
    creditor_address: tuple[str, ...]
    creditor_phone: str
    agency_name: str
    agency_address: str
    title: str
    credit_description: str
    action_taken: str
    reasons_heading: str
    no_single_reason: str
    contact: str
    ecoa: str
    report_used: bool
    report_agency_name: str
    report_agency_address: str
    report_agency_phone: str
    report_text: str
    credit_score: CreditScoreSection | None
    reasons: Mapping[str, str]
    reason_kinds: Mapping[str, str]
    override_reasons: Mapping[str, str]

    def common_values(self) -> dict[str, str]:
        return {"creditor_name": self.creditor_name, "creditor_address": ", ".join(self.creditor_address),
                "creditor_phone": self.creditor_phone, "agency_name": self.agency_name,
                "agency_address": self.agency_address, "credit_description": self.credit_description}

    def reason_wording(self, code: str) -> str:
        """The template's words for a reason code: its own entry, else its kind's; for an officer's
        override (`OVERRIDE_<reason>`), the override reason's."""
        if code.startswith(OVERRIDE_PREFIX):
            reason = code.removeprefix(OVERRIDE_PREFIX)
            return self.override_reasons.get(reason, "Our credit officer's review of your application")
        if code in self.reasons:
            return self.reasons[code]
        return self.reason_kinds[split_code(code)[1]]


def load_template(path: str | Path | None = None) -> NoticeTemplate:
    """Read and check a template; raises TemplateError naming the key at fault."""
    path = Path(path) if path is not None else config.notice_template()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"{path}: no such notice template (set {TEMPLATE_ENV} to a template file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML ({exc})") from None
    read = _Reader(path, data)
    score = None
    if read.table("credit_score", required=False):
        score = CreditScoreSection(
            field=read.text("credit_score.field", placeholders=frozenset()),
            low=read.number("credit_score.low"), high=read.number("credit_score.high"),
            key_factors_field=read.text("credit_score.key_factors_field", placeholders=frozenset()),
            text=read.text("credit_score.text"), no_key_factors=read.text("credit_score.no_key_factors"),
            questions=read.text("credit_score.questions"))
        if score.low >= score.high:
            raise TemplateError(f"{path}: credit_score.low ({score.low:g}) must be below credit_score.high "
                                f"({score.high:g})")
    reasons = read.table("reasons", required=False)
    for code in reasons:
        try:
            split_code(code)
        except ValueError as exc:
            raise TemplateError(f"{path}: [reasons] {exc}") from None
        read.text(f"reasons.{code}", placeholders=REASON)
    for kind in KINDS:
        read.text(f"reason_kinds.{kind}", placeholders=REASON)
    return NoticeTemplate(
        path=path,
        creditor_name=read.text("creditor.name", placeholders=frozenset()),
        creditor_address=tuple(read.lines("creditor.address")),
        creditor_phone=read.text("creditor.phone", placeholders=frozenset()),
        agency_name=read.text("agency.name", placeholders=frozenset()),
        agency_address=read.text("agency.address", placeholders=frozenset()),
        title=read.text("notice.title"),
        credit_description=read.text("notice.credit_description", placeholders=frozenset()),
        action_taken=read.text("notice.action_taken"), reasons_heading=read.text("notice.reasons_heading"),
        no_single_reason=read.text("notice.no_single_reason"), contact=read.text("notice.contact"),
        ecoa=read.text("notice.ecoa"),
        report_used=read.flag("consumer_report.used"),
        report_agency_name=read.text("consumer_report.agency_name", placeholders=frozenset()),
        report_agency_address=read.text("consumer_report.agency_address", placeholders=frozenset()),
        report_agency_phone=read.text("consumer_report.agency_phone", placeholders=frozenset()),
        report_text=read.text("consumer_report.text"),
        credit_score=score,
        reasons={code: read.text(f"reasons.{code}", placeholders=REASON) for code in reasons},
        reason_kinds={kind: read.text(f"reason_kinds.{kind}", placeholders=REASON) for kind in KINDS},
        override_reasons={code: read.text(f"override_reasons.{code}")
                          for code in read.table("override_reasons", required=False)},
    )


def fill(text: str, values: Mapping[str, Any]) -> str:
    """`text` with its {placeholders} replaced; only plain names (checked at load), never attributes."""
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(str(values.get(name, "")))
    return "".join(out)


class _Reader:
    """Typed access to the parsed TOML that names the key and the file in every refusal."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data

    def _get(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise TemplateError(f"{self.path}: {key} is missing")
            node = node[part]
        return node

    def table(self, key: str, required: bool = True) -> dict[str, Any]:
        if not required and key not in self.data:
            return {}
        value = self._get(key)
        if not isinstance(value, dict):
            raise TemplateError(f"{self.path}: {key} must be a table ([{key}])")
        return value

    def text(self, key: str, placeholders: frozenset[str] = COMMON) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value.strip():
            raise TemplateError(f"{self.path}: {key} must be a non-empty text")
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise TemplateError(f"{self.path}: {key} has a stray brace ({exc}); write {{{{ or }}}} "
                                "for a literal brace") from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in placeholders or spec or conversion:
                allowed = ", ".join(f"{{{n}}}" for n in sorted(placeholders)) or "none"
                raise TemplateError(f"{self.path}: {key} uses {{{name}}}, which is not a placeholder here "
                                    f"(allowed: {allowed})")
        return value.strip()

    def lines(self, key: str) -> list[str]:
        value = self._get(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise TemplateError(f"{self.path}: {key} must be a list of address lines")
        return [v.strip() for v in value]

    def number(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TemplateError(f"{self.path}: {key} must be a number, not {value!r}")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise TemplateError(f"{self.path}: {key} must be true or false, not {value!r}")
        return value
