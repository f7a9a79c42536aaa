"""LoanDesk's core: train, save, verify, load and explain a loan-approval pipeline.

Plain Python with no Streamlit import, so a notebook, the app, a CLI and the REST API share it.
"""

from .artifact import (
    ModelIntegrityError,
    activate_version,
    default_model_dir,
    list_versions,
    load_model,
    save_version,
)
from .data import DataError, generate_applicants
from .explain import Decision, decide, grid_2d, sensitivity_curve
from .pipeline import MonotonicityError
from .predictor import LoanModel
from .schema import FieldError, Schema, ValidationError

__all__ = [
    "DataError",
    "Decision",
    "FieldError",
    "LoanModel",
    "ModelIntegrityError",
    "MonotonicityError",
    "Schema",
    "ValidationError",
    "activate_version",
    "decide",
    "default_model_dir",
    "generate_applicants",
    "grid_2d",
    "list_versions",
    "load_model",
    "save_version",
    "sensitivity_curve",
]
