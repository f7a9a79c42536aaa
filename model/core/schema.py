"""The feature schema: the single source of truth for the form, validation, batch columns, API and charts.

It is saved in the model card, so a model trained on another CSV brings its own schema and every
consumer follows without code changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from model.core.coercion import blanks, to_numbers
from model.core.errors import FieldError, ValidationError
from model.core.protected import is_age_name

Kind = Literal["number", "category"]








@dataclass(frozen=True)
class Field:
    """One input of the model, with everything a form, a validator or a chart needs to know."""

    name: str
    kind: Kind
    label: str
    unit: str = ""  # "$", "years", "points" or ""
    help: str = ""
    required: bool = False
    train_min: float | None = None  # range seen in training: outside it is flagged, not refused
    train_max: float | None = None
    train_median: float | None = None
    train_std: float | None = None
    train_p01: float | None = None  # the 1st and 99th percentiles: where charts look by default
    train_p99: float | None = None
    categories: tuple[str, ...] = ()
    hard_min: float | None = None  # outside the hard bounds a value is refused
    hard_max: float | None = None
    # Where the bounds come from, for the card: "declared", or how they were derived from training
    # (every number gets an upper bound: 1e308 is never decided).
    bounds_basis: str = ""
    max_minus: tuple[str, float] | None = None  # value may not exceed <other field> - <offset>
    monotone: int = 0  # +1: approval never falls as it rises; -1: never rises; 0: free
    protected: bool = False  # a prohibited basis (ECOA): age, or a column used by --allow
    integer: bool = False
    default: float | str | None = None
    basis: str = ""  # for a protected field, which basis: "age", "race", ... (model/core/protected.py)

    @property
    def is_age(self) -> bool:
        """The applicant's age: approval never falls as it rises, never a reason against an
        applicant 62 or older. Old cards marked age only as protected."""
        return self.basis == "age" or (self.protected and not self.basis and is_age_name(self.name))

    @property
    def is_number(self) -> bool:
        return self.kind == "number"

    @property
    def lowest(self) -> float | None:
        """The smallest value validation accepts: the hard minimum, and never below 0 when
        training saw no negative value (see `Schema.validate`)."""
        if not self.is_number:
            return None
        if (self.train_min or 0) >= 0:
            return max(float(self.hard_min), 0.0) if self.hard_min is not None else 0.0
        return self.hard_min

    @property
    def title(self) -> str:
        """The label with its unit, as a form shows it."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def step(self) -> float:
        if not self.is_number:
            return 1.0
        if self.integer:
            span = (self.train_max or 0) - (self.train_min or 0)
            return float(max(1, 10 ** int(np.floor(np.log10(span / 100))))) if span > 1000 else 1.0
        span = (self.train_max or 1) - (self.train_min or 0)
        return float(10 ** np.floor(np.log10(span / 100))) if span > 0 else 0.1


# What LoanDesk knows about the built-in applicant fields; a user's CSV may reuse any of these names.
KNOWN_FIELDS: dict[str, dict[str, Any]] = {
    "age": dict(
        label="Age", unit="years", required=True, hard_min=18, hard_max=120, monotone=+1,
        protected=True, integer=True, default=35,
        help="Applicant's age. By law (ECOA) approval never falls as it rises, and it never counts against an "
             "applicant 62 or older.",
    ),
    "income": dict(
        label="Annual income", unit="$", required=True, hard_min=0, monotone=+1, integer=True,
        default=62_000, help="Gross yearly income before tax.",
    ),
    "credit_score": dict(
        label="Credit score", unit="points", required=True, hard_min=300, hard_max=850,
        monotone=+1, integer=True, default=720, help="FICO-style score from 300 to 850.",
    ),
    "loan_amount": dict(
        label="Loan amount", unit="$", required=True, hard_min=0, monotone=-1, integer=True,
        default=18_000, help="The amount the applicant asks to borrow.",
    ),
    "employment_years": dict(
        label="Employment length", unit="years", required=True, hard_min=0, hard_max=106, monotone=+1,
        max_minus=("age", 14), default=6,
        help="Years in continuous employment; at most age minus 14.",
    ),
}


# Codes common in credit data sets, read as words when no column spec names them.
COMMON_LABELS: dict[str, str] = {
    "pti": "Payment-to-income ratio", "dti": "Debt-to-income ratio", "ltv": "Loan-to-value ratio",
    "cltv": "Combined loan-to-value ratio", "fico": "FICO score", "apr": "Annual percentage rate",
    "emp_length": "Employment length", "annual_inc": "Annual income", "loan_amnt": "Loan amount",
    "int_rate": "Interest rate", "revol_util": "Revolving utilization", "delinq_2yrs": "Delinquencies (2 years)",
}


def default_label(name: str) -> str:
    """A column's label when nothing names it: a common code in words, else the name made readable."""
    return COMMON_LABELS.get(name.lower(), name.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def numbers(self) -> list[str]:
        return [f.name for f in self.fields if f.is_number]

    @property
    def categories(self) -> list[str]:
        return [f.name for f in self.fields if not f.is_number]

    def defaults(self) -> dict[str, Any]:
        """An applicant to start from: the lesson's example customer, else training medians/modes."""
        return {f.name: f.default for f in self.fields}

    # --- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        fields = []
        for raw in data["fields"]:
            raw = dict(raw)
            raw["categories"] = tuple(raw.get("categories") or ())
            if raw.get("max_minus") is not None:
                raw["max_minus"] = tuple(raw["max_minus"])
            fields.append(with_bounds(Field(**raw)))  # a card saved before every number had bounds
        return cls(tuple(fields))

    # --- inference from training data ----------------------------------------------------------
    @classmethod
    def infer(cls, frame: pd.DataFrame, monotone: dict[str, int] | None = None,
              described: dict[str, dict[str, Any]] | None = None,
              protected: dict[str, str] | None = None) -> Schema:
        """Describe the features of a training frame; known names get their labels, bounds and rules.

        Every field is required: a blank is accepted (and imputed) only where training had gaps.
        `described` holds a column spec's label, unit, help and monotone per column; `protected`
        the basis of each protected column kept as an input (age, or one allowed by --allow).
        """
        monotone = monotone or {}
        described = described or {}
        protected = protected or {}
        fields = []
        for name in frame.columns:
            col = frame[name]
            known = dict(KNOWN_FIELDS.get(name) or (KNOWN_FIELDS["age"] if is_age_name(name) else {}))
            if is_age_name(name):
                known["label"] = described.get(name, {}).get("label") or "Age"
            known.update({k: v for k, v in described.get(name, {}).items() if v not in (None, "")})
            if name in monotone:
                known["monotone"] = monotone[name]
            if name in protected:
                known.update(protected=True, basis=protected[name])
            if known.get("protected") and is_age_name(name):
                known.update(basis="age", monotone=+1)
            known["required"] = not bool(col.isna().any() or _has_blank_text(col))
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                values = col.astype(float)
                known.setdefault("label", default_label(name))
                integer = known.pop("integer", bool(np.all(np.mod(values.dropna(), 1) == 0)))
                median = float(values.median())
                known.setdefault("default", round(median) if integer else round(median, 2))
                fields.append(with_bounds(Field(
                    name=name, kind="number", integer=integer,
                    train_min=float(values.min()), train_max=float(values.max()),
                    train_median=median, train_std=float(values.std(ddof=0) or 1.0),
                    train_p01=float(values.quantile(0.01)), train_p99=float(values.quantile(0.99)),
                    **known,
                )))
            else:
                values = col.dropna().astype(str)
                values = values[values.str.strip() != ""]
                cats = tuple(sorted(values.unique()))
                mode = values.mode()
                fields.append(Field(
                    name=name, kind="category",
                    label=known.get("label", default_label(name)),
                    help=known.get("help", ""), required=known["required"],
                    categories=cats, default=str(mode.iloc[0]) if len(mode) else None,
                    protected=bool(known.get("protected", False)), basis=known.get("basis", ""),
                ))
        return cls(tuple(fields))

    def with_defaults(self, defaults: dict[str, Any]) -> Schema:
        return Schema(tuple(
            replace(f, default=defaults[f.name]) if f.name in defaults else f for f in self.fields
        ))

    # --- validation ----------------------------------------------------------------------------
    def validate(self, data: Any) -> Validation:
        """Check every value against the schema and return every problem at once.

        Missing columns raise straight away (nothing can be scored); per-value problems are
        collected so that a batch can score the good rows and report the bad ones.
        """
        frame, index = _columns(data)
        return self.validate_columns(frame, index)

    def validate_columns(self, frame: dict[str, np.ndarray], index: pd.Index) -> Validation:
        """`validate` for values already split into one array per field (row labels in `index`)."""
        missing = [n for n in self.names if n not in frame]
        if missing:
            raise ValidationError(
                [FieldError(None, n, None, "column is missing") for n in missing],
                "missing column(s): " + ", ".join(missing),
            )
        n = len(index)
        bad = np.zeros(n, dtype=bool)
        errors: list[FieldError] = []
        imputed: dict[str, np.ndarray] = {}
        out_of_range: dict[str, np.ndarray] = {}
        clean: dict[str, Any] = {}

        def flag(mask: np.ndarray, f: Field, raw: np.ndarray, why: str | Any) -> None:
            if not mask.any():  # the common case, checked first: most values have no problem at all
                return
            mask = mask & ~cell_bad[f.name]
            if not mask.any():
                return
            cell_bad[f.name] |= mask
            for pos in np.flatnonzero(mask):
                reason = why(pos) if callable(why) else why
                errors.append(FieldError(index[pos], f.name, _plain(raw[pos]), reason))

        cell_bad = {f.name: np.zeros(n, dtype=bool) for f in self.fields}
        for f in self.fields:
            raw = frame[f.name]
            blank = blanks(raw)
            foreign = _foreign(raw)
            for kind, mask in foreign.items():
                flag(mask, f, raw, FOREIGN_WHY[kind] if f.is_number else FOREIGN_WHY_TEXT[kind])
            if f.is_number:
                values = to_numbers(raw)
                not_number = ~blank & np.isnan(values)
                flag(not_number, f, raw, "is not a number")
                flag(np.isinf(values), f, raw, "is not a finite number")
                values = np.where(np.isinf(values), np.nan, values)
                ok = ~np.isnan(values)
                if f.hard_min is not None:
                    flag(ok & (values < f.hard_min), f, raw, _below(f))
                if f.hard_max is not None:
                    flag(ok & (values > f.hard_max), f, raw, f"must be at most {_shown(f.hard_max)}")
                if (f.hard_min is None or f.hard_min < 0) and (f.train_min or 0) >= 0:
                    flag(ok & (values < 0), f, raw, "is negative; training never had negative values")
                if f.max_minus is not None and f.max_minus[0] in frame:
                    other, offset = f.max_minus
                    limit = to_numbers(frame[other]) - offset
                    other_ok = ~cell_bad.get(other, np.zeros(n, dtype=bool))  # no limit from a refused value
                    flag(ok & other_ok & (values > limit), f, raw,
                         lambda pos, o=other, off=offset, lim=limit:
                         f"must be at most {o} − {off:g} = {lim[pos]:g}")
                in_range = ok & ~cell_bad[f.name]
                lo = f.train_min if f.train_min is not None else -np.inf
                hi = f.train_max if f.train_max is not None else np.inf
                out_of_range[f.name] = in_range & ((values < lo) | (values > hi))
                clean[f.name] = np.where(cell_bad[f.name], np.nan, values)
            else:
                text = np.array([None if b else str(v).strip() for v, b in zip(raw, blank, strict=True)],
                                dtype=object)
                unknown = ~blank & ~np.isin(text, np.array(f.categories, dtype=object))
                choices = ", ".join(f.categories[:8]) + (", …" if len(f.categories) > 8 else "")
                flag(unknown, f, raw, f"is not a known category (one of: {choices})")
                out_of_range[f.name] = np.zeros(n, dtype=bool)
                text[cell_bad[f.name]] = None
                clean[f.name] = text
            if f.required:
                flag(blank, f, raw, "is required")
            imputed[f.name] = blank & ~cell_bad[f.name]
            bad |= cell_bad[f.name]
        errors.sort(key=lambda e: (_order(index, e.row), self.names.index(e.field)))
        return Validation(clean, index, errors, bad, imputed, out_of_range)


def _has_blank_text(col: pd.Series) -> bool:
    """Whether a text column holds an empty or all-space cell (a gap, as the validator reads it)."""
    if pd.api.types.is_numeric_dtype(col):
        return False
    return bool(col.map(lambda v: isinstance(v, str) and not v.strip()).any())


def _order(index: pd.Index, label: Any) -> int:
    loc = index.get_loc(label)
    return loc if isinstance(loc, int) else 0


def _below(f: Field) -> str:
    if f.hard_min is None or f.hard_min == 0:
        return "must not be negative"
    return f"must be at least {_shown(f.hard_min)}"


def _shown(bound: float) -> str:
    """A bound as a person reads it: 2,500,000 rather than 2.5e+06."""
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:,}"


BOUND_MARGIN = 10  # a derived bound: ten times the training range past the largest value seen


def with_bounds(f: Field) -> Field:
    """The field with an upper bound (and, if training saw negative values, a lower one) when it has
    none declared: derived from training with a wide margin, and said so in `bounds_basis`. Values
    past it are refused, not decided: a model knows nothing of an income of 1e308."""
    if not f.is_number or f.train_max is None or f.train_min is None:
        return f
    scale = max(abs(f.train_max), abs(f.train_min), f.train_max - f.train_min, 1.0)
    changes: dict[str, Any] = {}
    notes = []
    if f.hard_max is None:
        changes["hard_max"] = _round_up(f.train_max + (BOUND_MARGIN - 1) * scale)
        notes.append(f"at most {_shown(changes['hard_max'])}, derived from training (the largest value seen "
                     f"was {_shown(f.train_max)})")
    if f.hard_min is None and f.train_min < 0:
        changes["hard_min"] = -_round_up(-(f.train_min - (BOUND_MARGIN - 1) * scale))
        notes.append(f"at least {_shown(changes['hard_min'])}, derived from training (the smallest value seen "
                     f"was {_shown(f.train_min)})")
    if not changes:
        return f if f.bounds_basis else replace(f, bounds_basis="declared")
    return replace(f, **changes, bounds_basis="; ".join(notes))


def _round_up(value: float) -> float:
    """Up to two significant digits: 2,473,150 → 2,500,000."""
    if value <= 0:
        return float(np.ceil(value))
    step = 10 ** max(int(np.floor(np.log10(value))) - 1, 0)
    return float(np.ceil(value / step) * step)


FOREIGN_WHY = {
    "complex": "is a complex number; only real numbers are accepted",
    "bytes": "is bytes, not a number; send the number itself (or its text)",
}
FOREIGN_WHY_TEXT = {
    "complex": "is a complex number, not one of the categories",
    "bytes": "is bytes, not text; send the category as text",
}


_PLAIN_KINDS = {"string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "decimal"}


def _foreign(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Cells holding complex numbers or bytes: refused by name, never coerced into something else."""
    kind = raw.dtype.kind
    if kind == "c":
        return {"complex": np.ones(len(raw), dtype=bool)}
    if kind == "S":
        return {"bytes": np.ones(len(raw), dtype=bool)}
    if kind != "O" or infer_dtype(raw, skipna=True) in _PLAIN_KINDS:  # the common case, checked in C
        return {}
    found: dict[str, np.ndarray] = {}
    for i, value in enumerate(raw):
        name = ("complex" if isinstance(value, complex | np.complexfloating) else
                "bytes" if isinstance(value, bytes | bytearray | memoryview | np.bytes_) else None)
        if name is not None:
            found.setdefault(name, np.zeros(len(raw), dtype=bool))[i] = True
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _columns(data: Any) -> tuple[dict[str, np.ndarray], pd.Index]:
    """Column arrays by name and the row labels; dicts (one or a list) skip building a DataFrame."""
    if isinstance(data, dict) and not any(isinstance(v, list | tuple | np.ndarray | pd.Series) for v in data.values()):
        return {str(k): column_array([v]) for k, v in data.items()}, pd.RangeIndex(1)
    if isinstance(data, list) and data and all(type(row) is dict for row in data):
        names = dict.fromkeys(str(k) for row in data for k in row)
        return {k: column_array([row.get(k) for row in data]) for k in names}, pd.RangeIndex(len(data))
    frame = as_frame(data)
    return {str(k): frame[k].to_numpy() for k in frame.columns}, frame.index


def column_array(values: list) -> np.ndarray:
    """Values of one field as an array: float when every value is a plain number, else objects."""
    kinds = set(map(type, values))
    if kinds <= {int, float, np.float64, np.int64} and kinds:
        try:
            return np.array(values, dtype=float)
        except OverflowError:  # an integer beyond float range: validation says it is not finite
            pass
    if kinds == {bool}:
        return np.array(values, dtype=bool)
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # element by element: a list value must stay one cell
        out[i] = value
    return out


def as_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame, a dict (one applicant) or a list of dicts; columns are matched by name."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame().T
    if isinstance(data, dict):
        return pd.DataFrame([data])
    if isinstance(data, list | tuple) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(list(data))
    raise TypeError(
        "expected a DataFrame, a dict or a list of dicts with named fields; "
        f"got {type(data).__name__} (bare arrays are refused: columns must be matched by name)"
    )


@dataclass
class Validation:
    """The outcome of validating rows: cleaned values plus every problem, per cell."""

    columns: dict[str, np.ndarray]  # schema order; NaN/None in blank or invalid cells
    index: pd.Index
    errors: list[FieldError]
    bad_rows: np.ndarray
    imputed: dict[str, np.ndarray] = field(default_factory=dict)
    out_of_range: dict[str, np.ndarray] = field(default_factory=dict)

    @cached_property
    def clean(self) -> pd.DataFrame:
        """The cleaned values as a frame in schema order (numbers float, categories object)."""
        return pd.DataFrame(self.columns, index=self.index, copy=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    def fields_flagged(self, masks: dict[str, np.ndarray], row: int) -> list[str]:
        return [name for name, mask in masks.items() if mask[row]]

    def row_messages(self) -> dict[Any, str]:
        """Each bad row's problems as one human sentence, keyed by row label."""
        out: dict[Any, list[str]] = {}
        for e in self.errors:
            out.setdefault(e.row, []).append(f"{e.field} = {e.value!r}: {e.why}")
        return {row: "; ".join(msgs) for row, msgs in out.items()}
