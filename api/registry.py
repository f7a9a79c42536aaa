"""The model the API serves: the active version, reloaded when its checksum changes."""

from __future__ import annotations

import threading
from pathlib import Path

from model.artifact import load_model, read_card, resolve_version_dir
from model.predictor import LoanModel


class ActiveModel:
    """Loads the active version once and again only after a retrain or an activation."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._model: LoanModel | None = None

    def get(self) -> LoanModel:
        folder = resolve_version_dir(self.model_dir)
        key = (str(folder), read_card(folder)["pipeline_sha256"])
        if key != self._key:
            with self._lock:
                if key != self._key:
                    self._model, self._key = load_model(folder), key
        return self._model
