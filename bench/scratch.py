"""A throwaway model folder for a benchmark run, so benchmarks never touch the project's artifacts."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from model.registry.store import save_version
from model.training.train import train_builtin


@contextlib.contextmanager
def scratch_model(model: str = "auto") -> Iterator[tuple[Path, Path]]:
    """Yields (a temporary folder, the model folder inside it holding a freshly trained built-in model)."""
    with tempfile.TemporaryDirectory(prefix="loandesk-bench-") as tmp:
        registry = Path(tmp) / "loan_approval_model"
        trained = train_builtin(model=model)
        save_version(registry, trained.pipeline, trained.card, trained.holdout)
        yield Path(tmp), registry
