"""Workflows above training and the registry: the first start, and threshold copies."""

from __future__ import annotations

from pathlib import Path

from model.core.metrics import evaluate
from model.registry.store import PIPELINE_FILE, active_version, load_holdout, load_model, save_version
from model.scoring.predictor import LoanModel
from model.training.train import train_builtin


def ensure_model(registry: str | Path) -> LoanModel:
    """The active model in `registry`, training and saving the built-in one first if there is none."""
    if active_version(registry) is None:
        trained = train_builtin()
        save_version(registry, trained.pipeline, trained.card, trained.holdout)
    return load_model(registry)


def copy_with_threshold(registry: str | Path, version: str, threshold: float, *, activate: bool = False,
                        refer_band: float | None = None) -> str:
    """Save a version again as a new version with another threshold (old one untouched), and
    optionally another refer band (its width around the threshold; 0 turns it off).

    The pipeline file is copied byte for byte (same SHA-256: provably the same model), and the
    threshold-dependent metrics are recomputed from the hold-out so that the card describes the copy.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    if refer_band is not None and not 0.0 <= refer_band < 1.0:
        raise ValueError(f"the refer band is a width from 0 (no band) to below 1, not {refer_band}")
    registry = Path(registry)
    source = load_model(registry, version=version)
    written_by_save = ("card_format", "name", "version", "created_at", "libraries", "files", "pipeline_sha256",
                       "signature")
    card = {k: v for k, v in source.card.raw.items() if k not in written_by_save}
    card["threshold"] = float(threshold)
    if refer_band is not None:
        card["refer_band"] = float(refer_band)
    card["parent"] = version
    holdout = load_holdout(source)
    card["metrics"] = {**card.get("metrics", {}),
                       **evaluate(holdout["label"].to_numpy(), holdout["probability"].to_numpy(), threshold)}
    return save_version(registry, source.path / PIPELINE_FILE, card, holdout, activate=activate)
