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


def model_folder(given: Path | None, tmp: Path) -> Path:
    """The model a benchmark scores with: the folder given, else the project's default if it holds a
    model, else the built-in model trained into `tmp` (never into the project's artifacts)."""
    from model.registry.store import default_model_dir
    from model.training.workflows import ensure_model

    folder = given or default_model_dir()
    if not (folder / "versions").is_dir() and not (folder / "model_card.json").is_file():
        folder = tmp / "model"
        ensure_model(folder)
    return folder
