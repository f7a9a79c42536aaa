"""Which columns describe a prohibited basis of credit discrimination, and by which rule.

ECOA and Regulation B (12 CFR 1002.2(z), 1002.6(b)) forbid using race, color, religion, national
origin, sex, marital status, age, receipt of public assistance, or the good-faith exercise of
consumer-credit rights against an applicant; for housing loans the Fair Housing Act adds familial
status and disability. Age is the one exception a scoring system may use (1002.6(b)(2)(ii)), as long
as an elderly applicant (62 or older, 1002.2(o)) is never scored down for it.

A column is found by its name (any case, camelCase or snake_case, common names and abbreviations),
by the user (`declared`), or, for text columns, by values that name such groups ("female", "married",
"Black or African American"). Familial status (dependents, children, household size) and disability
are found for every loan, since nothing here knows a housing loan from another: the rule says so and
that --allow with a justification is lawful outside housing (Regulation B 1002.5(d)(3)); likewise for
citizenship and immigration status, which 1002.6(b)(7) lets a creditor consider.

Everything here is plain data in, findings out, so training, the importer of a foreign model and
the Model page all use one rule book.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ELDERLY_AGE = 62  # Regulation B 1002.2(o): an elderly applicant is 62 or older
# Age bands for fairness reports: (label, from, up to but not including); the last is the elderly.
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("under 25", 0, 25), ("25–39", 25, 40), ("40–61", 40, ELDERLY_AGE), ("62 or older", ELDERLY_AGE, float("inf")),
)

# basis key → plain words, in the order the law lists them
BASES: dict[str, str] = {
    "race": "race",
    "color": "color",
    "religion": "religion",
    "national_origin": "national origin",
    "sex": "sex",
    "marital_status": "marital status",
    "age": "age",
    "public_assistance": "receipt of public assistance",
    "credit_rights": "good-faith exercise of consumer-credit rights",
    "familial_status": "familial status (housing loans)",
    "disability": "disability (housing loans)",
    "declared": "a prohibited basis (named by the user)",
}

# One word of a column's name → the basis it names. Matched against whole words of the name only
# ("race" never matches "trace"), after splitting snake_case, kebab-case and camelCase.
_NAME_WORDS: dict[str, str] = {
    **dict.fromkeys(["race", "racial", "races", "black", "afam", "african", "afroamerican", "white",
                     "caucasian", "asian", "nonwhite", "minority", "aian", "nhpi", "nativeamerican"], "race"),
    **dict.fromkeys(["skin", "color", "colour", "complexion"], "color"),
    **dict.fromkeys(["religion", "religious", "religions", "relig", "faith", "church", "denomination"], "religion"),
    **dict.fromkeys(["ethnicity", "ethnic", "ethnicities", "hispanic", "hisp", "latino", "latina", "latinx",
                     "nationality", "nationalities", "ancestry", "foreign", "immigrant", "immigrants",
                     "immigration", "birthplace", "citizen", "citizens", "citizenship", "noncitizen", "alien",
                     "naturalized"], "national_origin"),
    **dict.fromkeys(["sex", "gender", "female", "male", "females", "males", "woman", "women", "gndr"], "sex"),
    **dict.fromkeys(["marital", "married", "marriage", "single", "divorced", "widowed", "mstatus", "mstat",
                     "marstat", "marst", "marit", "unmarried", "spouse", "spouses", "spousal", "husband", "wife",
                     "widow", "widows", "widower", "widowhood"], "marital_status"),
    **dict.fromkeys(["age", "ages", "dob", "birthdate", "birthday", "yob"], "age"),
    **dict.fromkeys(["welfare", "tanf", "snap", "foodstamps", "foodstamp", "medicaid", "ssi", "ssdi", "wic",
                     "afdc"], "public_assistance"),
    **dict.fromkeys(["ccpa", "dispute", "disputes", "disputed", "complaint", "complaints"], "credit_rights"),
    **dict.fromkeys(["familial", "pregnant", "pregnancy", "dependents", "dependants", "children", "kids",
                     "childless"], "familial_status"),
    **dict.fromkeys(["disability", "disabled", "disabilities", "handicap", "handicapped"], "disability"),
}

# A word that names a group except before these ("white collar", "single family home").
_NOT_BEFORE: dict[str, frozenset[str]] = {
    "single": frozenset(["family", "unit", "units", "home", "dwelling", "payment", "premium", "source"]),
    "white": frozenset(["collar", "goods", "label", "list", "listed"]),
    "black": frozenset(["list", "listed", "box"]),
    "minority": frozenset(["interest", "stake", "share", "owner"]),
    "complaint": frozenset(["category", "channel"]),
}

# A word that names the applicant's group only when what comes before it is the applicant:
# "disabled" alone or "is_disabled" is the applicant, "autopay_disabled" is a setting.
_ONLY_AFTER: dict[str, frozenset[str]] = {
    "disabled": frozenset(["is", "applicant", "borrower", "person", "has", "any", "num", "n", "co", "physically",
                           "mentally", "veteran", "member"]),
}

# With these words, "color" is the color of a thing, not of a person ("car_color", "card_colour").
_NOT_PERSON_COLOR = frozenset(["car", "auto", "vehicle", "paint", "card", "theme", "logo", "house", "home",
                               "product", "item", "eye", "hair"])

# Two consecutive words of a name that together name a basis.
_NAME_PAIRS: dict[tuple[str, str], str] = {
    ("national", "origin"): "national_origin", ("country", "birth"): "national_origin",
    ("birth", "country"): "national_origin", ("native", "country"): "national_origin",
    ("country", "origin"): "national_origin", ("personal", "status"): "sex",  # sex and marital status in one
    ("public", "assistance"): "public_assistance", ("food", "stamps"): "public_assistance",
    ("consumer", "rights"): "credit_rights", ("credit", "rights"): "credit_rights",
    ("family", "status"): "familial_status", ("birth", "date"): "age", ("date", "birth"): "age",
    ("birth", "year"): "age", ("year", "birth"): "age", ("years", "old"): "age",
    ("mar", "status"): "marital_status", ("civil", "status"): "marital_status",
    ("civil", "union"): "marital_status", ("domestic", "partner"): "marital_status",
    ("native", "american"): "race", ("american", "indian"): "race", ("alaska", "native"): "race",
    ("native", "hawaiian"): "race", ("pacific", "islander"): "race",
    ("green", "card"): "national_origin", ("visa", "status"): "national_origin",
    ("residency", "status"): "national_origin", ("resident", "status"): "national_origin",
    ("immigration", "status"): "national_origin", ("permanent", "resident"): "national_origin",
    ("mother", "tongue"): "national_origin",
    ("social", "security"): "public_assistance", ("unemployment", "compensation"): "public_assistance",
    ("unemployment", "benefits"): "public_assistance", ("unemployment", "insurance"): "public_assistance",
    ("housing", "assistance"): "public_assistance", ("rent", "assistance"): "public_assistance",
    ("section", "8"): "public_assistance", ("household", "size"): "familial_status",
    ("family", "size"): "familial_status", ("people", "liable"): "familial_status",
    ("number", "dependents"): "familial_status", ("senior", "citizen"): "age",  # Telco's SeniorCitizen: 65+
}

# A pair that names a basis except before these ("social security number" is an identifier).
_PAIR_NOT_BEFORE: dict[tuple[str, str], frozenset[str]] = {
    ("social", "security"): frozenset(["number", "no", "num", "nr", "id", "ssn"]),
}

# Words run together without separators ("maritalstatus", "GENDERCODE"): only long, unmistakable stems.
_NAME_STEMS: dict[str, str] = {
    "marital": "marital_status", "gender": "sex", "religio": "religion", "ethnic": "national_origin",
    "hispanic": "national_origin", "nationality": "national_origin", "nationalorigin": "national_origin",
    "publicassist": "public_assistance", "foodstamp": "public_assistance", "welfare": "public_assistance",
    "disabilit": "disability", "familialstatus": "familial_status", "dateofbirth": "age",
    "birthdate": "age", "caucasian": "race", "nativeamerican": "race", "citizenship": "national_origin",
    "noncitizen": "national_origin", "immigra": "national_origin", "spouse": "marital_status",
    "widow": "marital_status", "marstat": "marital_status", "pregnan": "familial_status",
    "dependents": "familial_status", "dependants": "familial_status", "handicap": "disability",
}

# What the law says about a basis that is prohibited only for some loans or may be considered in part:
# added to the rule, so that the user knows when --allow with a justification is lawful.
BASIS_NOTES: dict[str, str] = {
    "familial_status": "familial status is a prohibited basis for housing loans under the Fair Housing Act; for other "
                       "credit Regulation B 1002.5(d)(3) lets a creditor consider the number of dependents, so "
                       "--allow it with a justification if these are not housing loans",
    "disability": "disability is a prohibited basis for housing loans under the Fair Housing Act",
}
# Words of national origin that Regulation B 1002.6(b)(7) lets a creditor consider in part.
_IMMIGRATION_WORDS = frozenset([
    "citizen", "citizens", "citizenship", "noncitizen", "alien", "naturalized", "immigration", "green card",
    "visa status", "residency status", "resident status", "immigration status", "permanent resident", "immigra",
    "non-citizen", "non citizen", "us citizen", "u.s. citizen", "not a citizen", "green card holder",
    "resident alien", "non-resident alien", "nonresident alien", "naturalized citizen"])
IMMIGRATION_NOTE = ("national origin may not be used, but Regulation B 1002.6(b)(7) lets a creditor consider "
                    "immigration or permanent-residency status: --allow it with a justification if that is all "
                    "it records")

# With the word "age", these words mean the age of something other than the applicant.
_NOT_APPLICANT_AGE = frozenset([
    "account", "accounts", "acct", "accts", "credit", "file", "history", "loan", "loans", "car", "auto",
    "vehicle", "home", "house", "housing", "property", "building", "oldest", "newest", "trade", "trades",
    "tradeline", "tradelines", "revolving", "mortgage", "debt", "business", "company", "collateral",
    "equipment", "delinquency", "inquiry", "inquiries", "record", "records", "avg", "average", "mean",
])

# Words inside a category value that name a group. A value is split into parts at ":", ";", ",",
# "/", "|", "(", ")" and "&" first, so "male : divorced/separated" gives "male", "divorced", "separated".
_VALUE_TERMS: dict[str, str] = {
    **dict.fromkeys(["female", "male", "woman", "man", "women", "men", "non-binary", "nonbinary",
                     "transgender"], "sex"),
    **dict.fromkeys(["married", "single", "divorced", "widowed", "separated", "unmarried", "never married",
                     "never-married", "married-civ-spouse", "married-spouse-absent", "married-af-spouse",
                     "domestic partner", "civil union", "husband", "wife", "spouse", "widow", "widower",
                     "divorcee", "legally separated"], "marital_status"),
    **dict.fromkeys(["black", "white", "asian", "african american", "black or african american", "caucasian",
                     "american indian", "alaska native", "american indian or alaska native",
                     "native hawaiian", "pacific islander", "native hawaiian or other pacific islander",
                     "two or more races", "amer-indian-eskimo", "asian-pac-islander", "multiracial"], "race"),
    **dict.fromkeys(["hispanic", "latino", "latina", "latinx", "not hispanic", "non-hispanic",
                     "hispanic or latino", "not hispanic or latino", "citizen", "non-citizen", "noncitizen",
                     "non citizen", "us citizen", "u.s. citizen", "not a citizen", "permanent resident",
                     "green card", "green card holder", "resident alien", "non-resident alien", "nonresident alien",
                     "alien", "naturalized", "naturalized citizen", "immigrant", "undocumented",
                     "foreign national", "refugee", "asylee"], "national_origin"),
    **dict.fromkeys(["christian", "catholic", "protestant", "muslim", "jewish", "hindu", "buddhist", "sikh",
                     "atheist", "agnostic", "mormon", "orthodox"], "religion"),
    **dict.fromkeys(["welfare", "public assistance", "food stamps", "tanf", "snap", "social security", "ssi",
                     "ssdi", "unemployment benefits", "unemployment compensation"], "public_assistance"),
    **dict.fromkeys(["pregnant", "not pregnant", "children", "no children", "with children", "childless",
                     "own-child", "own child", "single parent"], "familial_status"),
    **dict.fromkeys(["disabled", "not disabled", "non-disabled", "handicapped", "disability", "no disability",
                     "with disability", "without disability"], "disability"),
}
_SPLIT_VALUE = re.compile(r"[:;,/|()&]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")
DECLARED = "named by --protected"
_MAX_VALUES = 200  # a text column with more distinct values than this is free text, not groups


@dataclass(frozen=True)
class ProtectedColumn:
    """A column found to describe a prohibited basis, and the rule that found it."""

    name: str
    bases: tuple[str, ...]  # keys of BASES, e.g. ("sex", "marital_status")
    rule: str  # why, in words: 'its name contains "race"'

    @property
    def basis(self) -> str:
        """The bases in plain words: 'sex and marital status'."""
        words = [BASES.get(b, b) for b in self.bases]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    @property
    def is_age(self) -> bool:
        """Age in years, which a scoring system may use (never against the elderly); a birth date
        or year is age too but runs the other way, so it is not."""
        return self.bases == ("age",) and (is_age_name(self.name) or self.rule == DECLARED)

    def describe(self) -> str:
        """'race: its name contains "race"' for a training report."""
        return f"{self.name} ({self.basis}): {self.rule}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bases": list(self.bases), "basis": self.basis, "rule": self.rule}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProtectedColumn:
        return cls(str(data["name"]), tuple(data.get("bases") or ("declared",)), str(data.get("rule", "")))


def name_words(name: str) -> list[str]:
    """A column name as lower-case words: 'MaritalStatus_2' → ['marital', 'status', '2']."""
    return [w.lower() for w in _NON_WORD.split(_CAMEL.sub(" ", str(name))) if w]


def bases_of_name(name: str) -> tuple[tuple[str, ...], str] | None:
    """The bases a column's name names, and the words that showed it; None for an ordinary name."""
    words = name_words(name)
    found: dict[str, str] = {}
    joinable = [w for w in words if w not in ("of", "the", "in", "is")]
    for i, (a, b) in enumerate(itertools.pairwise(joinable)):
        basis = _NAME_PAIRS.get((a, b))
        if basis and joinable[i + 2:i + 3] and joinable[i + 2] in _PAIR_NOT_BEFORE.get((a, b), ()):
            continue  # "social security number" is an identifier, not income from Social Security
        if basis:
            found.setdefault(basis, f"{a} {b}")
    for i, w in enumerate(words):
        basis = _NAME_WORDS.get(w)
        if basis and words[i + 1:i + 2] and words[i + 1] in _NOT_BEFORE.get(w, ()):
            continue
        if basis and w in _ONLY_AFTER and i > 0 and not set(words[:i]) <= _ONLY_AFTER[w]:
            continue  # "autopay_disabled" is a setting; "is_disabled" is the applicant
        if w in ("citizen", "citizens") and words[i - 1:i] == ["senior"]:
            continue  # a senior citizen is an age, not a citizenship
        if basis == "color" and _NOT_PERSON_COLOR.intersection(words):
            continue  # the color of a car or a card
        if basis == "age" and w in ("age", "ages") and _NOT_APPLICANT_AGE.intersection(words):
            continue  # the age of an account or a car, not of the applicant
        if basis:
            found.setdefault(basis, w)
    if not found:
        joined = "".join(words)
        for stem, basis in _NAME_STEMS.items():
            if stem in joined:
                found.setdefault(basis, stem)
    if "personal status" in found.values():  # German credit's personal_status: sex and marital status
        found.setdefault("marital_status", "personal status")
    if not found:
        return None
    bases = tuple(b for b in BASES if b in found)
    return bases, ", ".join(dict.fromkeys(f'"{found[b]}"' for b in bases))


def is_age_name(name: str) -> bool:
    """Whether a column's name says it is the applicant's age in years ('age', 'Age', 'AGE_YEARS',
    'applicantAge'), not a birth date and not the age of an account."""
    words = name_words(name)
    if not ({"age", "ages"} & set(words)) and words[-2:] != ["years", "old"]:
        return False
    found = bases_of_name(name)
    return found is not None and found[0] == ("age",)


def bases_of_values(values: Iterable[Any]) -> tuple[tuple[str, ...], list[str]] | None:
    """The bases that a text column's distinct values name, and those values; None when they name
    no group. Two distinct values must name groups of one basis ("married" and "single"), so that a
    lone "white collar" or "single family" does not condemn a column; two-valued M/F is sex."""
    distinct = {str(v).strip() for v in values if v is not None and str(v).strip() and str(v) != "nan"}
    if not distinct or len(distinct) > _MAX_VALUES:
        return None
    if {v.lower() for v in distinct} == {"m", "f"}:
        return ("sex",), sorted(distinct)
    hits: dict[str, set[str]] = {}
    for value in distinct:
        for basis in _value_bases(value):
            hits.setdefault(basis, set()).add(value)
    bases = tuple(b for b in BASES if len(hits.get(b, ())) >= 2)
    if not bases:
        return None
    shown = sorted(set().union(*(hits[b] for b in bases)))
    return bases, shown


def _value_bases(value: str) -> set[str]:
    out = set()
    for part in _SPLIT_VALUE.split(value.lower()):
        part = " ".join(part.replace("_", " ").split())
        if not part:
            continue
        basis = _VALUE_TERMS.get(part)
        if basis:
            out.add(basis)
            continue
        words = part.split(" ")
        for n in (3, 2, 1):  # the longest phrase inside the part that names a group
            for i in range(len(words) - n + 1):
                basis = _VALUE_TERMS.get(" ".join(words[i:i + n]))
                if basis and not (n == 1 and words[i] in ("man", "men") and len(words) > 1):
                    out.add(basis)
    return out


def classify_column(name: str, values: Sequence[Any] | None = None,
                    declared: Mapping[str, str] | None = None) -> ProtectedColumn | None:
    """One column's finding: by the user's word first, then its name, then (for text) its values."""
    declared = declared or {}
    if name in declared:
        basis = declared[name] or "declared"
        named = bases_of_name(name)
        bases = (basis,) if basis != "declared" else (named[0] if named else ("declared",))
        return ProtectedColumn(name, bases, DECLARED)
    named = bases_of_name(name)
    if named:
        bases, words = named
        said = [w.strip('"') for w in words.split(", ")]
        return ProtectedColumn(name, bases, f"its name contains {words}" + _notes(bases, said))
    if values is not None:
        found = bases_of_values(values)
        if found:
            bases, shown = found
            listed = ", ".join(f'"{v}"' for v in shown[:4]) + (", …" if len(shown) > 4 else "")
            return ProtectedColumn(name, bases, f"its values name groups ({listed})"
                                   + _notes(bases, [v.lower() for v in shown]))
    return None


def _notes(bases: tuple[str, ...], said: Sequence[str]) -> str:
    """What the law adds about these bases (housing-only, or immigration status that may be considered)."""
    notes = [BASIS_NOTES[b] for b in bases if b in BASIS_NOTES]
    if bases == ("national_origin",) and said and all(w in _IMMIGRATION_WORDS for w in said):
        notes.append(IMMIGRATION_NOTE)
    return "".join(f" ({n})" for n in notes)


def find_protected(columns: Any, declared: Mapping[str, str] | Iterable[str] = ()) -> list[ProtectedColumn]:
    """Every protected column of a DataFrame, a mapping {name: values} or a list of names, in order.

    `declared` names columns the user says are protected (a mapping may give each a basis key).
    Only text values are read for groups: a numeric code (race = 1..5) is found by its name alone.
    """
    declared = dict(declared) if isinstance(declared, Mapping) else dict.fromkeys(declared, "declared")
    for key in declared.values():
        if key not in BASES:
            raise ValueError(f"unknown basis {key!r}; one of: {', '.join(BASES)}")
    if hasattr(columns, "columns") and hasattr(columns, "__getitem__"):  # a DataFrame
        items = [(str(c), _text_values(columns[c])) for c in columns.columns]
    elif isinstance(columns, Mapping):
        items = [(str(c), _text_values(v)) for c, v in columns.items()]
    else:
        items = [(str(c), None) for c in columns]
    names = {n for n, _ in items}
    unknown = sorted(set(declared) - names)
    if unknown:
        raise ValueError(f"--protected names unknown column(s): {', '.join(unknown)}")
    out = []
    for name, values in items:
        found = classify_column(name, values, declared)
        if found is not None:
            out.append(found)
    return out


def _text_values(values: Any) -> list[Any] | None:
    """The distinct values of a text column, or None for numbers (codes say nothing by themselves)."""
    if values is None:
        return None
    dtype = getattr(values, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "O") in "biufc":
        return None
    distinct = list(dict.fromkeys(v for v in list(values) if v is not None))
    if distinct and all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct):
        return None
    return distinct


def age_column(columns: Iterable[str]) -> str | None:
    """The applicant's age among column names (the first that reads as age in years), or None."""
    return next((str(c) for c in columns if is_age_name(str(c))), None)


def card_columns(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The protected columns a model card records (name, basis, rule, status, used, justification)."""
    return list((card.get("protected") or {}).get("columns") or [])


def allowed_in_card(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The prohibited bases a model uses by --allow, each with its justification: said in red
    wherever the model is shown."""
    return [{"column": c["name"], "basis": c.get("basis", ""), "justification": c.get("justification", "")}
            for c in card_columns(card) if c.get("used") and c.get("justification")]
