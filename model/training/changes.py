"""Model changes wired to the model folder: what an approved proposal does on disk.

The records layer keeps proposals and decides who may approve them; putting an approved change
into effect needs the training layer's `copy_with_threshold` (a new version with the threshold,
its metrics recomputed) and the registry's `activate_version`, so the two meet here.
"""

from __future__ import annotations

from pathlib import Path

from model.core.errors import ChangeError
from model.records.access import Actor
from model.records.changes import ModelChanges, Proposal
from model.records.log import DecisionLog
from model.registry.store import activate_version, active_version, load_model
from model.training.workflows import copy_with_threshold


def model_changes(log: DecisionLog, registry: str | Path, *, four_eyes: bool = True) -> ModelChanges:
    """The change history and proposals of the model folder `registry`, kept in `log`'s database."""
    registry = Path(registry)

    def apply(proposal: Proposal) -> str:
        version, threshold = proposal.to_version, proposal.to_threshold
        if version is None or (proposal.kind == "threshold" and threshold is None):
            raise ChangeError(f"Change {proposal.id} names no version or threshold to apply.")
        if proposal.kind == "threshold" and threshold is not None:
            return copy_with_threshold(registry, version, threshold, activate=True,
                                       refer_band=proposal.refer_band)
        load_model(registry, version=version)  # never activate a version that fails verification
        activate_version(registry, version)
        return version

    return ModelChanges(log, registry, apply=apply, four_eyes=four_eyes)


def activate_from_shell(log: DecisionLog, registry: str | Path, version: str, actor: Actor,
                        note: str = "") -> str | None:
    """`train.py --activate`: make `version` active at once (shell access to the folder is trusted) and
    record it in the change history with the operating-system user. Returns the version it replaced."""
    previous = active_version(registry)
    model_changes(log, registry).record_activation(actor, previous, version, note,
                                                   effect=lambda: activate_version(registry, version))
    return previous
