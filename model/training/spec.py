"""A column spec: what each column of a user's CSV means, so a model trained on it reads well.

    [columns.pti]
    label = "Payment-to-income ratio"
    unit = ""                 # "$", "years", "%", "points" or any word
    description = "Monthly loan payment over monthly income."
    monotone = -1             # +1: approval never falls as it rises; -1: never rises; 0: free
    protected = false         # true, or the basis ("race", "sex", ...) of a prohibited basis

`python train.py --data applicants.csv --target outcome --write-spec spec.toml` writes one to edit, with what the
rules already know (protected columns found by name or values, the known fields' labels and units);
`--spec spec.toml` trains with it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from model.core.files import create_private, shared_mode
from model.core.protected import BASES, find_protected, is_age_name
from model.core.schema import KNOWN_FIELDS, default_label
from model.training.data import DataError

KEYS = ("label", "unit", "description", "monotone", "protected")


@dataclass(frozen=True)
class ColumnSpec:
    """Per column: label, unit, description, monotone direction and protected status."""

    columns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def described(self) -> dict[str, dict[str, Any]]:
        """What the schema takes from the spec: label, unit and help (the description)."""
        out = {}
        for name, entry in self.columns.items():
            out[name] = {k: v for k, v in (("label", entry.get("label")), ("unit", entry.get("unit")),
                                           ("help", entry.get("description"))) if v not in (None, "")}
        return out

    def monotone(self) -> dict[str, int]:
        return {n: int(e["monotone"]) for n, e in self.columns.items() if "monotone" in e}

    def declared(self) -> dict[str, str]:
        """Columns the spec marks protected, with their basis key."""
        out = {}
        for name, entry in self.columns.items():
            value = entry.get("protected", False)
            if value is True:
                out[name] = "declared"
            elif isinstance(value, str) and value:
                out[name] = value
        return out

    def not_protected(self) -> list[str]:
        return [n for n, e in self.columns.items() if e.get("protected") is False]

    def without(self, target: str) -> ColumnSpec:
        """The spec for the inputs: an entry for the target (a spec written before --target was
        given lists it) says nothing about an input, so it is dropped rather than called unknown."""
        return ColumnSpec({n: e for n, e in self.columns.items() if n != target})


def read_spec(path: str | Path) -> ColumnSpec:
    """Read and check a spec; every mistake is reported with its column and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise DataError(f"--spec {path}: no such file") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"--spec {path}: not valid TOML ({exc})") from exc
    columns = data.get("columns", {})
    extra = sorted(set(data) - {"columns"})
    problems = [f"unknown section(s) {', '.join(extra)} (only [columns.NAME])"] if extra else []
    if not isinstance(columns, dict):
        raise DataError(f"--spec {path}: [columns] must hold one table per column")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in columns.items():
        if not isinstance(entry, dict):
            problems.append(f"{name}: should be a table ([columns.{name}])")
            continue
        for key in sorted(set(entry) - set(KEYS)):
            problems.append(f"{name}.{key}: unknown key (known: {', '.join(KEYS)})")
        for key in ("label", "unit", "description"):
            if key in entry and not isinstance(entry[key], str):
                problems.append(f"{name}.{key}: should be text, not {entry[key]!r}")
        if "monotone" in entry and entry["monotone"] not in (-1, 0, 1):
            problems.append(f"{name}.monotone: should be +1, -1 or 0, not {entry['monotone']!r}")
        protected = entry.get("protected", False)
        if not (isinstance(protected, bool) or (isinstance(protected, str) and protected in BASES)):
            problems.append(f"{name}.protected: should be true, false or one of {', '.join(BASES)}; "
                            f"not {protected!r}")
        out[str(name)] = dict(entry)
    if problems:
        raise DataError(f"--spec {path}: " + "; ".join(problems))
    return ColumnSpec(out)


def check_against(spec: ColumnSpec, features: pd.DataFrame) -> None:
    """A spec's columns must be the CSV's: a typo would otherwise silently do nothing."""
    unknown = sorted(set(spec.columns) - {str(c) for c in features.columns})
    if unknown:
        raise DataError(f"--spec names column(s) not in the data: {', '.join(unknown)}")


def draft_spec(features: pd.DataFrame) -> dict[str, Any]:
    """A spec to edit, for every column of a CSV (the target already removed)."""
    found = {c.name: c for c in find_protected(features)}
    columns = {}
    for name in map(str, features.columns):
        known = KNOWN_FIELDS.get(name) or (KNOWN_FIELDS["age"] if is_age_name(name) else {})
        col = found.get(name)
        columns[name] = {
            "label": known.get("label", default_label(name)),
            "unit": known.get("unit", ""),
            "description": known.get("help", ""),
            "monotone": int(known.get("monotone", 0)),
            "protected": (col.bases[0] if col is not None else False),
        }
    return {"columns": columns}


HEADER = """\
# Column spec for LoanDesk: train with  python train.py --data DATA.csv --spec THIS_FILE ...
# label, unit, description: how forms, reasons and charts name each column ("Payment-to-income ratio").
# monotone: +1 approval never falls as it rises, -1 never rises, 0 free (age is always +1).
# protected: false, or the prohibited basis (race, color, religion, national_origin, sex,
#   marital_status, age, public_assistance, credit_rights, familial_status, disability, declared).
#   A protected column is left out of the model (age excepted) and kept for fairness measurement;
#   to use one anyway: --allow COL --justification "why it is lawful".

"""


def write_spec(features: pd.DataFrame, path: str | Path) -> Path:
    """Write `draft_spec` as TOML (refusing to overwrite a spec someone may have edited)."""
    path = Path(path)
    text = HEADER + tomli_w.dumps(draft_spec(features))
    try:  # created exclusively: an existing file, or a link planted at the name, is never written through
        with create_private(path) as fh:
            fh.write(text.encode("utf-8"))
    except FileExistsError:
        raise DataError(f"--write-spec {path}: the file exists; move it away or choose another name") from None
    os.chmod(path, shared_mode())  # a spec holds no applicant data: readable like any file the user makes
    return path
