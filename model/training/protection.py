"""Which protected columns a training run leaves out, which it uses, and why, for train.py and the card.

Every column found by `model.core.protected` is left out of the model by default and kept beside
the hold-out so that fairness can still be measured on it. Age in years is the exception the law
makes (Regulation B 1002.6(b)(2)(ii)): used, but approval never falls as it rises. Any other is used
only with `--allow COL --justification "…"`, and that choice is written into the model card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from model.core.protected import BASES, ProtectedColumn, find_protected
from model.training.data import DataError

LEFT_OUT = "left out of the model"
USED_AGE = "used: approval never falls as age rises; never a reason against an applicant 62 or older"
USED_ALLOWED = "used, allowed by --allow"


@dataclass(frozen=True)
class Protection:
    """The protected columns of one training run and what was done with each."""

    found: tuple[ProtectedColumn, ...] = ()
    allowed: Mapping[str, str] = field(default_factory=dict)  # column → justification
    age: str | None = None  # the age column used as an input, if any

    def status(self, name: str) -> str:
        if name == self.age:
            return USED_AGE
        return USED_ALLOWED if name in self.allowed else LEFT_OUT

    @property
    def excluded(self) -> list[str]:
        return [c.name for c in self.found if self.status(c.name) == LEFT_OUT]

    @property
    def used(self) -> list[str]:
        return [c.name for c in self.found if self.status(c.name) != LEFT_OUT]

    def bases_used(self) -> dict[str, str]:
        """{column: basis key} of the protected columns kept as inputs, for the schema."""
        return {c.name: ("age" if c.name == self.age else c.bases[0]) for c in self.found if c.name in self.used}

    def column(self, name: str) -> ProtectedColumn:
        return next(c for c in self.found if c.name == name)

    def lines(self) -> list[str]:
        """What train.py prints: each column, the rule that caught it and what was done with it."""
        out = []
        for c in self.found:
            line = f"{c.describe()}; {self.status(c.name)}"
            if c.name in self.allowed:
                line += f" (justification: {self.allowed[c.name]!r})"
            elif self.status(c.name) == LEFT_OUT:
                line += "; kept beside the hold-out to measure fairness"
            out.append(line)
        return out

    def to_card(self) -> list[dict[str, Any]]:
        out = []
        for c in self.found:
            entry = {**c.to_dict(), "status": self.status(c.name), "used": c.name in self.used,
                     "age": c.name == self.age}
            if c.name in self.allowed:
                entry["justification"] = self.allowed[c.name]
            out.append(entry)
        return out


def parse_declared(values: Iterable[str] | None) -> dict[str, str]:
    """`--protected zone` or `--protected zone=national_origin` (repeatable) → {column: basis key}."""
    out: dict[str, str] = {}
    for raw in values or ():
        name, _, basis = str(raw).partition("=")
        name, basis = name.strip(), basis.strip() or "declared"
        if not name:
            raise DataError(f"--protected: {raw!r} should be a column name, optionally =basis")
        if basis not in BASES:
            raise DataError(f"--protected {raw}: unknown basis {basis!r}; one of: {', '.join(BASES)}")
        out[name] = basis
    return out


def pair_allowed(columns: list[str] | None, justifications: list[str] | None) -> dict[str, str]:
    """`--allow COL --justification "…"` (repeatable, in pairs) → {column: justification}."""
    columns, justifications = list(columns or []), [j.strip() for j in justifications or []]
    if not columns and justifications:
        raise DataError("--justification says why a protected column may be used: give it with --allow COL")
    if len(justifications) != len(columns) or not all(justifications):
        missing = columns[len([j for j in justifications if j]):] or columns
        raise DataError(
            f"--allow {missing[0]} needs --justification \"…\": why using this prohibited basis is lawful "
            "(it is written into the model card and shown on the Model page); give one --justification per --allow"
        )
    return dict(zip(columns, justifications, strict=True))


def plan_protection(features: pd.DataFrame, declared: Mapping[str, str] | None = None,
                    allowed: Mapping[str, str] | None = None) -> Protection:
    """Find the protected columns and decide, by the rules above, which the model may use."""
    declared, allowed = dict(declared or {}), dict(allowed or {})
    names = [str(c) for c in features.columns]
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise DataError(f"--protected names unknown column(s): {', '.join(unknown)}")
    unknown = sorted(set(allowed) - set(names))
    if unknown:
        raise DataError(f"--allow names unknown column(s): {', '.join(unknown)}")
    found = tuple(find_protected(features, declared))
    numeric = {c.name for c in found
               if pd.api.types.is_numeric_dtype(features[c.name]) and not pd.api.types.is_bool_dtype(features[c.name])}
    age = next((c.name for c in found if c.is_age and c.name in numeric), None)
    by_name = {c.name: c for c in found}
    for name in allowed:
        if name not in by_name:
            raise DataError(f"--allow {name}: {name} is not a protected column, so the model uses it already")
        if name == age:
            raise DataError(f"--allow {name}: age is used without --allow, as the law allows (approval never "
                            "falls as it rises)")
    return Protection(found, allowed, age)
