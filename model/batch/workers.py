"""The model on a worker of any engine (Dask, Spark): loaded and verified there, once per process.

A cluster's workers load the model from their own disk (a shared folder, or a copy baked into the
image), so each must prove it holds the model the run was started with: `load_model` checks the
card's signature, every file's SHA-256 and the scikit-learn version the model was trained with,
and on top the card and pipeline must be byte for byte the driver's, and the worker's scikit-learn
the driver's. A worker that cannot prove it refuses, and the run scores nothing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sklearn

from model.core.errors import ModelIntegrityError, WorkerModelError
from model.registry.store import CARD_FILE, load_model
from model.scoring.table import score_table


@dataclass(frozen=True)
class ModelSpec:
    """What every worker must load: the version folder and the fingerprints it must match."""

    path: str
    name: str
    version: str
    pipeline_sha256: str
    card_sha256: str
    sklearn: str

    @classmethod
    def of(cls, model) -> ModelSpec:
        card = Path(model.path) / CARD_FILE
        return cls(str(Path(model.path).resolve()), model.name, model.version, model.sha256,
                   hashlib.sha256(card.read_bytes()).hexdigest(), sklearn.__version__)


_models: dict[ModelSpec, Any] = {}
_loading = threading.Lock()


def worker_model(spec: ModelSpec):
    """The model on this worker, loaded and verified once per process; refuses another model.

    load_model checks the card's signature, every file's SHA-256 and the scikit-learn version
    the model was trained with; on top, the card and pipeline must be exactly the ones the run was
    started with, and this worker's scikit-learn the driver's.
    """
    model = _models.get(spec)
    if model is not None:
        return model
    with _loading:
        if spec in _models:
            return _models[spec]
        where = worker_name()
        if sklearn.__version__ != spec.sklearn:
            raise WorkerModelError(f"worker {where} has scikit-learn {sklearn.__version__}, but the run was "
                                   f"started with {spec.sklearn}: install the same version on every worker")
        try:
            card = (Path(spec.path) / CARD_FILE).read_bytes()
            model = load_model(spec.path)
        except (ModelIntegrityError, OSError) as exc:
            raise WorkerModelError(f"worker {where} refuses the model at {spec.path}: {exc}") from None
        if hashlib.sha256(card).hexdigest() != spec.card_sha256 or model.sha256 != spec.pipeline_sha256:
            raise WorkerModelError(f"worker {where} has another model at {spec.path} (version {model.version}, "
                                   f"pipeline {model.sha256[:12]}) than the run's ({spec.version}, "
                                   f"{spec.pipeline_sha256[:12]}): give every worker the same version folder")
        # Once per worker process, before its threads score: scikit-learn's warning about column
        # names for the arrays the serving plan feeds it is expected and noisy.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        score_table(model, pd.DataFrame([model.schema.defaults()]))  # warm the caches before the first part
        _models[spec] = model
        return model


def check_worker(spec: ModelSpec) -> str:
    """Load and verify the model on this worker (run on every worker before a part is scored)."""
    return worker_model(spec).version


def worker_name() -> str:
    """This worker's address on a Dask cluster, else its process id."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
