"""The model and the decision log, loaded once per process and shared by every session.

The model is cached by its version folder and pipeline checksum, so retraining or activating another
version is picked up on the next rerun without a restart; a cached model is never mutated.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from model.core import config
from model.core.errors import ModelFolderError, ModelIntegrityError
from model.records.log import DecisionLog, default_url
from model.registry.store import (
    default_model_dir,
    load_model,
    may_train_builtin,
    model_folder_problem,
    read_card,
    resolve_version_dir,
)
from model.scoring.predictor import LoanModel


@st.cache_resource(show_spinner=False, max_entries=16)
def _load(folder: str, sha256: str) -> LoanModel:
    return load_model(folder)


def registry() -> Path:
    return default_model_dir()


def load_current(version: str | None = None) -> LoanModel:
    """The active model (or one version), training the built-in model on a first start.

    The built-in model is trained only into the built-in folder: a LOANDESK_MODEL_DIR that does not exist
    or holds no versions is an error naming it (ModelFolderError), never a folder filled with a guess.
    Raises ModelIntegrityError when the model on disk cannot be trusted.
    """
    path = registry()
    if version is None and may_train_builtin(path):
        from model.training.workflows import ensure_model  # training code is only needed on a first start

        with st.spinner("First start: training the built-in loan model (a few seconds)…"):
            ensure_model(path)
    problem = model_folder_problem(path, "LOANDESK_MODEL_DIR" if config.model_dir_given() else "")
    if problem:
        raise ModelFolderError(problem)
    folder = resolve_version_dir(path, version)
    return _load(str(folder), read_card(folder)["pipeline_sha256"])


def current_model(version: str | None = None) -> LoanModel:
    """The model for a page, or a clear error on the page and nothing more of it."""
    try:
        return load_current(version)
    except ModelIntegrityError as exc:
        st.error(f"The model cannot be used: {exc}")
        st.stop()


@st.cache_resource(show_spinner=False)
def _log(url: str) -> DecisionLog:
    return DecisionLog(url)


def decision_log() -> DecisionLog:
    """The shared decision log (LOANDESK_DB_URL, else data/decisions.db)."""
    return _log(default_url())

