"""Training data: the built-in applicant generator, and reading a user's CSV.

The built-in approval rule (documented in README too) is a plausible underwriting score:

    debt_burden   = loan_amount / income
    log-odds      = 1.4 · (credit_score − 660) / 60        # credit history
                  − 1.2 · (debt_burden − 0.30) / 0.10      # debt burden
                  + 0.3 · min(employment_years, 10) / 2.5  # job stability, capped at 10 years
                  + 0.13 · min(age − 18, 30) / 10          # length of credit history (never against age)
                  − 0.5
    approved      ~ Bernoulli(sigmoid(log-odds))

The Bernoulli draw is the noise: the label is not a deterministic function of the inputs, so a good
model reaches a hold-out AUC near 0.88 (the rule itself scores about 0.89), not 1.0.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from model.core.errors import DataError

BUILTIN_TARGET = "approved"
BUILTIN_FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]




def approval_log_odds(frame: pd.DataFrame) -> np.ndarray:
    """The built-in credit rule, before noise (see the module docstring)."""
    burden = frame["loan_amount"] / frame["income"]
    return (
        1.4 * (frame["credit_score"] - 660) / 60
        - 1.2 * (burden - 0.30) / 0.10
        + 0.3 * np.minimum(frame["employment_years"], 10) / 2.5
        + 0.13 * np.minimum(frame["age"] - 18, 30) / 10
        - 0.5
    ).to_numpy()


def generate_applicants(n: int = 5000, seed: int = 42) -> pd.DataFrame:
    """Realistic applicants, deterministic for a seed, with an `approved` label (1/0)."""
    if n < 1:
        raise DataError("n must be at least 1")
    rng = np.random.default_rng(seed)
    age = np.clip(np.round(rng.gamma(2.4, 8.0, n) + 18), 18, 75).astype(int)
    # Income rises with age into the fifties, log-normal spread; rounded to $100.
    peak = 1 - ((np.clip(age, 18, 75) - 52) / 40) ** 2
    income = np.exp(rng.normal(10.75 + 0.35 * peak, 0.42, n))
    income = np.clip(np.round(income, -2), 12_000, 400_000).astype(int)
    credit = np.clip(np.round(rng.normal(680 + 1.2 * (age - 35), 70, n)), 300, 850).astype(int)
    # Loans are sized around a fifth of income, rounded to $500.
    loan = income * np.exp(rng.normal(np.log(0.26), 0.45, n))
    loan = np.clip(np.round(loan / 500) * 500, 1_000, 150_000).astype(int)
    max_emp = age - 16
    employment = np.round(max_emp * rng.beta(1.6, 2.4, n), 1)
    frame = pd.DataFrame({
        "age": age, "income": income, "credit_score": credit,
        "loan_amount": loan, "employment_years": employment,
    })
    p = 1 / (1 + np.exp(-approval_log_odds(frame)))
    frame[BUILTIN_TARGET] = (rng.random(n) < p).astype(int)
    return frame


def read_training_csv(path: str | Path) -> pd.DataFrame:
    """Read a user's training CSV, refusing files that cannot be training data."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    if _looks_binary(text[:4096]):
        raise DataError(f"{path}: this is not a CSV file (it looks binary)")
    sep = sniff_delimiter(text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        # pandas' messages can span lines; the CLI prints one line per error.
        raise DataError(f"{path}: could not be read as CSV ({' '.join(str(exc).split())})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no rows")
    return frame


def _looks_binary(head: str) -> bool:
    """NUL bytes, or more than 5% undecodable or control characters: a spreadsheet, image or archive."""
    if "\x00" in head:
        return True
    odd = sum(ch == "\ufffd" or (ch < " " and ch not in "\t\n\r") for ch in head)
    return odd > 0.05 * len(head)


def sniff_delimiter(text: str) -> str:
    """Comma or semicolon, whichever splits the header line into more fields."""
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


# A target named like this records a bad outcome, so its "1" or "yes" is not approval.
_NEGATIVE_TARGET = re.compile(
    r"(^|[^a-z])(den(y|ied|ial)|reject(ed)?|declin(e|ed)|refus(e|ed|al)|default(ed)?|bad|delinquen(t|cy)|"
    r"charged?_?off|chargeoff|fraud|late|fail(ed|ure)?|loss)([^a-z]|$)", re.IGNORECASE)
# ... and one named like this records approval, so its "0" or "no" is not approval.
_POSITIVE_TARGET = re.compile(
    r"(^|[^a-z])(approv(e|ed|al)|grant(ed)?|accept(ed)?|good|repaid|fully_?paid|funded)([^a-z]|$)", re.IGNORECASE)
_NEGATED = re.compile(r"(^|[^a-z])(no|not|non|never|without)([^a-z]|$)", re.IGNORECASE)
_BINARY = ({"0", "1"}, {"false", "true"})
AFFIRMATIVE = frozenset(["1", "1.0", "true", "t", "yes", "y"])
NEGATIVE = frozenset(["0", "0.0", "false", "f", "no", "n"])
CONFIRM_FLAG = "--confirm-approved-value"


def negative_target(target: str) -> bool:
    """Whether a target's name reads as a bad outcome ('deny', 'is_default', 'Rejected')."""
    return bool(_NEGATIVE_TARGET.search(str(target).replace("-", "_")))


def _reads(pattern: re.Pattern[str], text: str) -> bool:
    """Whether `text` says what `pattern` names, and does not negate it ('no_default' is not a default)."""
    text = "_".join(str(text).replace("-", "_").split())
    return bool(pattern.search(text)) and not _NEGATED.search(text.replace("_", " "))


def split_target(frame: pd.DataFrame, target: str, positive_label: str | None, *,
                 confirmed: bool = False) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Features and a 0/1 label (1 approved); errors name the problem and the fix.

    The direction is never guessed: only a 0/1 or true/false target whose name does not read as a
    bad outcome ('deny', 'default') takes 1/true as approved; any other needs the value that
    means approved. A value that reads as the opposite of approval (`yes` for a target named
    `deny`, `denied` itself) is refused unless `confirmed` (--confirm-approved-value), because
    a model of denial saved as one of approval inverts every decision.
    """
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} not found; the columns are: {', '.join(map(str, frame.columns))}"
        )
    y_raw = frame[target]
    if y_raw.isna().any():
        raise DataError(f"target column {target!r} has {int(y_raw.isna().sum())} empty value(s)")
    text = y_raw.map(_label_text)
    labels = sorted(text.unique())
    if len(labels) != 2:
        shown = ", ".join(repr(v) for v in labels[:10])
        raise DataError(f"target column {target!r} must have exactly two values; it has {len(labels)}: {shown}")
    if positive_label is None:
        binary = {x.lower() for x in labels} in _BINARY
        if not binary:
            raise DataError(
                f"target column {target!r} has the values {labels[0]!r} and {labels[1]!r}: say which one means "
                f"approved with --approved-value {_shell(labels[0])} or --approved-value {_shell(labels[1])}"
            )
        if negative_target(target):
            raise DataError(
                f"target column {target!r} reads as a bad outcome, so 1 may mean rejected: say which value means "
                f"approved with --approved-value {_shell(labels[0])} or --approved-value {_shell(labels[1])}"
            )
        positive_label = next(x for x in labels if x.lower() in ("1", "true"))
    positive_label = str(positive_label).strip()
    if positive_label not in labels:
        matches = [x for x in labels if x.lower() == positive_label.lower()]
        if len(matches) != 1:
            raise DataError(
                f"--approved-value {positive_label!r} does not occur in {target!r} "
                f"(its values: {labels[0]!r}, {labels[1]!r})"
            )
        positive_label = matches[0]
    check_label_direction(target, positive_label, labels, confirmed=confirmed)
    y = (text == positive_label).to_numpy().astype(int)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError("the file has no feature columns besides the target")
    return features, y, positive_label


def _label_text(value: object) -> str:
    """A target value as text: 1.0 and 1 are both '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _shell(value: str) -> str:
    return value if re.fullmatch(r"[\w.+-]+", value) else repr(value)


def label_meaning(target: str, positive_label: str, y: np.ndarray) -> str:
    """What training understood, in words: 'approved means outcome = granted: 1,204 of 1,500 rows (80.3%)'."""
    n, k = len(y), int(np.sum(y))
    return f"approved means {target} = {positive_label}: {k:,} of {n:,} rows ({100 * k / n:.1f}%)" if n else ""


def label_doubt(target: str, positive_label: str) -> str | None:
    """Why the value said to mean approved reads as the opposite of approval, or None: a target named
    like a bad outcome given its affirmative value ('deny' = 'yes'), a value that names a bad outcome
    itself ('denied', 'Charged Off'), or a target named like approval given its negative value
    ('approved' = 'no')."""
    value = str(positive_label).strip()
    if value.lower() in AFFIRMATIVE and _reads(_NEGATIVE_TARGET, target):
        return (f"{target!r} reads as a bad outcome (a denial, rejection or default), so {target} = {value} "
                "records that outcome, not approval")
    if value.lower() not in AFFIRMATIVE | NEGATIVE and _reads(_NEGATIVE_TARGET, value):
        return f"{target} = {value} reads as a bad outcome (a denial, rejection or default), not approval"
    if value.lower() in NEGATIVE and _reads(_POSITIVE_TARGET, target):
        return f"{target!r} reads as approval, so {target} = {value} records the opposite"
    return None


def check_label_direction(target: str, positive_label: str, labels: list[str] | tuple[str, ...], *,
                          confirmed: bool = False, option: str = "--approved-value",
                          error: type[Exception] = DataError) -> str | None:
    """Refuse a value for approved that reads as its opposite, naming the fix; with `confirmed`, the
    doubt is returned instead, for the model card to record."""
    doubt = label_doubt(target, positive_label)
    if doubt is None or confirmed:
        return doubt
    others = [str(v) for v in labels if str(v) != str(positive_label)]
    fix = (f"Use {option} {_shell(others[0])}" if len(others) == 1
           else f"Name the value that means approved with {option}")
    raise error(f"{doubt}: {option} {_shell(str(positive_label))} would save a model of that outcome as one of "
                f"approval and invert every decision. {fix}; or, if {target} = "
                f"{positive_label} truly means approved, add {CONFIRM_FLAG} (recorded in the model card and on "
                "the Model page)")


def confirmed_meaning(meaning: str, doubt: str | None) -> str:
    """The label's meaning as the card states it, with the user's confirmation against a doubt."""
    return f"{meaning} (confirmed with {CONFIRM_FLAG}, although {doubt})" if doubt else meaning
