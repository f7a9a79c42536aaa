"""The model the API serves: the active version, reloaded when a retrain or an activation changes it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from model.registry.store import load_model, read_card, resolve_version_dir
from model.scoring.predictor import LoanModel

CHECK_SECONDS = 1.0  # how often the active version is looked up on disk (not per request: that costs I/O)


class ActiveModel:
    """Loads the active version once and again only after a retrain or an activation."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._model: LoanModel | None = None
        self._checked_at = -1e9

    def get(self) -> LoanModel:
        """The verified active model; raises ModelIntegrityError when it cannot be trusted."""
        if self._model is not None and time.monotonic() - self._checked_at < CHECK_SECONDS:
            return self._model
        with self._lock:
            folder = resolve_version_dir(self.model_dir)
            key = (str(folder), read_card(folder)["pipeline_sha256"])
            if key != self._key:
                self._model, self._key = None, None
                self._model, self._key = load_model(folder), key
            self._checked_at = time.monotonic()
            assert self._model is not None
            return self._model
