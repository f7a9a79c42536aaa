"""The model card, typed: what a saved version says about itself, read by attribute, not string key.

`model_card.json` is the document as saved, checksummed and signed; `ModelCard` is its typed view.
It is also a read-only mapping of that document (`card["threshold"]`, `card.get("data")`), so code
and tools that read the JSON keep working. Cards written by older LoanDesks lack some sections: they
read as empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.core.schema import Schema


@dataclass(frozen=True)
class ModelCard(Mapping[str, Any]):
    """A version's card. Required keys are checked by the registry before a card gets this far."""

    name: str
    version: str
    threshold: float
    schema: Schema
    pipeline_sha256: str
    target: str = ""
    positive_label: str = "1"
    model_kind: str = "?"
    created_at: str = ""
    parent: str | None = None  # the version this one copies (a threshold change keeps the pipeline)
    refer_band: float = 0.0  # width around the threshold whose cases go to an underwriter (0: none)
    metrics: dict[str, Any] = field(default_factory=dict)  # hold-out metrics at the threshold
    selection: dict[str, Any] = field(default_factory=dict)  # how the model kind was chosen
    data: dict[str, Any] = field(default_factory=dict)  # the training data: source, rows, fingerprint
    reference: dict[str, Any] = field(default_factory=dict)  # the typical approved applicant
    drift_bins: dict[str, dict[str, list]] = field(default_factory=dict)  # training distribution, for PSI
    pipeline_steps: list[str] = field(default_factory=list)
    libraries: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # SHA-256 of every file of the version
    imported: dict[str, Any] = field(default_factory=dict)  # where an imported pipeline came from (train.py --import)
    directions: dict[str, Any] = field(default_factory=dict)  # what approval does as each number rises, measured
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, card: Mapping[str, Any]) -> ModelCard:
        raw = dict(card)
        return cls(
            name=raw["name"], version=raw["version"], threshold=float(raw["threshold"]),
            schema=Schema.from_dict(raw["schema"]), pipeline_sha256=raw["pipeline_sha256"],
            target=raw.get("target", ""), positive_label=str(raw.get("positive_label", "1")),
            model_kind=raw.get("model_kind", "?"), created_at=raw.get("created_at", ""), parent=raw.get("parent"),
            refer_band=float(raw.get("refer_band") or 0.0),
            metrics=raw.get("metrics") or {}, selection=raw.get("selection") or {}, data=raw.get("data") or {},
            reference=raw.get("reference") or {}, drift_bins=raw.get("drift_bins") or {},
            pipeline_steps=list(raw.get("pipeline_steps") or []), libraries=raw.get("libraries") or {},
            files=raw.get("files") or {}, imported=raw.get("imported") or {},
            directions=raw.get("directions") or {}, raw=raw,
        )

    def to_dict(self) -> dict[str, Any]:
        """The document as saved (a copy)."""
        return dict(self.raw)

    @property
    def auc(self) -> float | None:
        """The hold-out AUC, when the card has one."""
        value = self.metrics.get("auc")
        return float(value) if value is not None else None

    # --- a read-only mapping of the saved document -------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.pipeline_sha256))
