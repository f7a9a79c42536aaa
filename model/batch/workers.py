"""The model on a worker of any engine (Dask, Spark): loaded and verified there, once per process.

A cluster's workers load the model from their own disk (a shared folder, or a copy baked into the
image), so each must prove it holds the model the run was started with: `load_model` checks the
card's signature, every file's SHA-256 and the scikit-learn version the model was trained with,
and on top the card and pipeline must be byte for byte the driver's, and the worker's scikit-learn
the driver's. A worker that cannot prove it refuses, and the run scores nothing.

The code around the model must match too: `process_facts` is what a process runs (Python, the
packages that shape a decision or carry a task, and a digest of LoanDesk's own `model` package),
compared with the driver's on the scheduler and every worker before a row is scored
(`model.batch.cluster`), and again by each worker as it loads the model (one that joined late).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
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
    facts: tuple[tuple[str, str], ...] = ()  # the driver's `process_facts`, which every worker must match

    @classmethod
    def of(cls, model) -> ModelSpec:
        card = Path(model.path) / CARD_FILE
        return cls(str(Path(model.path).resolve()), model.name, model.version, model.sha256,
                   hashlib.sha256(card.read_bytes()).hexdigest(), sklearn.__version__,
                   tuple(sorted(process_facts().items())))


# What must be the same in every process of a run: a decision depends on numpy, pandas, pyarrow and
# scikit-learn; a task travels with dask, distributed, cloudpickle and msgpack; and LoanDesk's own code.
WORKER_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "dask", "distributed", "cloudpickle", "msgpack")
SCHEDULER_PACKAGES = ("dask", "distributed", "cloudpickle", "msgpack")
_code: list[str] = []


def process_facts() -> dict[str, str]:
    """This process's Python (major.minor), the versions of WORKER_PACKAGES and `loandesk`, a
    SHA-256 of the `model` package's source files (their paths within it and their bytes)."""
    facts = {"python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    for name in WORKER_PACKAGES:
        try:
            facts[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            facts[name] = "not installed"
    if not _code:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        for source in sorted(root.rglob("*.py")):
            digest.update(source.relative_to(root).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
        _code.append(digest.hexdigest())
    facts["loandesk"] = _code[0]
    return facts


def differences(theirs: dict[str, str], ours: dict[str, str], names: tuple[str, ...] | None = None) -> list[str]:
    """What differs, as "pandas 2.2.0 (the driver has 3.1.1)"; LoanDesk's code as its digest."""
    keys = ["python", *(names if names is not None else WORKER_PACKAGES), "loandesk"]
    out = []
    for key in keys:
        if theirs.get(key) != ours.get(key):
            if key == "loandesk":
                out.append(f"other LoanDesk code (model/ digest {str(theirs.get(key))[:12]}, the driver's "
                           f"{ours[key][:12]})")
            else:
                out.append(f"{key} {theirs.get(key, 'unknown')} (the driver has {ours[key]})")
    return out


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
        differ = differences(process_facts(), dict(spec.facts)) if spec.facts else []
        if differ:
            raise WorkerModelError(f"worker {where} runs {', '.join(differ)}: install the same LoanDesk and "
                                   "requirements.txt on every worker")
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


def check_worker(spec: ModelSpec) -> dict[str, str]:
    """Load and verify the model on this worker (run on every worker before a part is scored);
    returns the model's version and this process's facts, for the driver to compare."""
    return {"model_version": worker_model(spec).version, **process_facts()}


def worker_name() -> str:
    """This worker's address on a Dask cluster, else its process id."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
