"""LoanDesk's core: train, save, verify, load and explain a loan-approval pipeline.

Plain Python with no Streamlit import, so a notebook, the app, a CLI and the REST API share it.
The packages are layers, lowest first (an import-linter contract in pyproject.toml enforces it):
core < scoring < registry < records < training < batch, monitoring, evaluation, learn.
"""

from model.core.errors import (
    DataError,
    FieldError,
    LoanDeskError,
    ModelIntegrityError,
    MonotonicityError,
    ValidationError,
)
from model.core.schema import Schema
from model.registry.store import activate_version, default_model_dir, list_versions, load_model, save_version
from model.scoring.explain import Decision, decide, grid_2d, sensitivity_curve
from model.scoring.predictor import LoanModel
from model.training.data import generate_applicants

__all__ = [
    "DataError",
    "Decision",
    "FieldError",
    "LoanDeskError",
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
