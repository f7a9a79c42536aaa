"""Every error LoanDesk raises, in one place.

Each is a `LoanDeskError`, so a caller can catch one base, and also the builtin it behaves like
(as scikit-learn's `NotFittedError(ValueError, AttributeError)` is), so existing `except ValueError`
code keeps working. Messages are written for the person who has to act on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LoanDeskError(Exception):
    """Base of every error LoanDesk raises on purpose."""


class DataError(LoanDeskError, ValueError):
    """A training file or frame cannot be used: the message names the column or row and why."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one value: which row (None for a single applicant), field, value and why."""

    row: Any
    field: str
    value: Any
    why: str

    def __str__(self) -> str:
        where = f"row {self.row}, " if self.row is not None else ""
        return f"{where}{self.field} = {self.value!r}: {self.why}"


def summarize(errors: list[FieldError], limit: int = 20) -> str:
    """Every problem on its own line, up to `limit`, then how many more."""
    lines = [str(e) for e in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more")
    return f"{len(errors)} invalid value(s):\n  " + "\n  ".join(lines)


class ValidationError(LoanDeskError, ValueError):
    """Input that does not fit the schema; `errors` holds every problem found, not just the first."""

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        self.errors = errors
        super().__init__(message or summarize(errors))


class MonotonicityError(LoanDeskError, RuntimeError):
    """A trained model does not move the way a stated (or lawful) direction requires."""


class ModelIntegrityError(LoanDeskError, RuntimeError):
    """The model on disk cannot be trusted or used; the message says why and what to do."""


class DecisionLogError(LoanDeskError, RuntimeError):
    """The decision log cannot be opened or written."""


class BatchError(LoanDeskError, ValueError):
    """Nothing could be scored (no such file, not a CSV, columns missing...): `reason` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class UnsafePickleError(ModelIntegrityError):
    """A model file names code outside the allow-list; nothing it names was imported or run.

    `refused` lists every (module, name) the file asked for and did not get, in the file's order.
    """

    def __init__(self, message: str, refused: list[tuple[str, str]]) -> None:
        self.refused = refused
        super().__init__(message)


class ModelFolderError(ModelIntegrityError):
    """A model folder that does not exist, holds no LoanDesk versions, or is not a folder at all."""


class PipelineImportError(LoanDeskError, ValueError):
    """A pipeline that cannot become a LoanDesk version: the message says what is wrong and what to do."""


class TemplateError(LoanDeskError, ValueError):
    """The adverse action notice template cannot be used; the message names the file, the key and why."""


class DecisionNotFound(LoanDeskError, LookupError):
    """No decision with this id is on record."""


class NotARejection(LoanDeskError, ValueError):
    """An adverse action notice was asked for a decision that is not a rejection (approved, or referred
    to an underwriter and not yet decided)."""


class OverrideError(LoanDeskError, ValueError):
    """An override cannot be recorded: the message says what is missing or wrong."""


class TableError(LoanDeskError, ValueError):
    """A table handed to `score_table` cannot be scored at all (a required column is missing...)."""


class EngineError(LoanDeskError, RuntimeError):
    """A cluster run failed (no scheduler, a worker refused the model, a part failed): nothing counted."""


class WorkerModelError(ModelIntegrityError):
    """A worker's copy of the model is not the one the run was started with, or cannot be trusted there."""
class AccessDenied(LoanDeskError, PermissionError):
    """The person acting may not do this; the message names them, the action and who may."""


class IdentityError(LoanDeskError, ValueError):
    """A name or email that cannot be recorded as it is (too long, control characters, malformed)."""


class ChangeError(LoanDeskError, ValueError):
    """A model change that cannot be proposed or decided as asked; the message says why."""
