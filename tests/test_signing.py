"""Signed model cards: with LOANDESK_SIGNING_KEY set, a card rewritten by hand never lets its pickle load."""

from __future__ import annotations

import json

import pytest

from model.core.errors import ModelIntegrityError
from model.registry.store import CARD_FILE, load_model, save_version
from model.training.train import train_builtin
from model.training.workflows import copy_with_threshold


@pytest.fixture(scope="module")
def small():
    return train_builtin(rows=1500, model="logistic", seed=3)


@pytest.fixture
def signed(small, tmp_path, monkeypatch):
    monkeypatch.setenv("LOANDESK_SIGNING_KEY", "correct horse battery staple")
    registry = tmp_path / "signed"
    save_version(registry, small.pipeline, small.card, small.holdout)
    return registry


def _rewrite(folder, change) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    change(card)
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_a_signed_model_loads_and_threshold_copies_are_signed_too(signed):
    model = load_model(signed)
    assert model.card["signature"].startswith("hmac-sha256:")
    copy = load_model(signed, version=copy_with_threshold(signed, model.version, 0.6))
    assert copy.threshold == 0.6 and copy.card["signature"] != model.card["signature"]


def test_a_hand_edited_card_is_refused(signed):
    folder = load_model(signed).path
    _rewrite(folder, lambda card: card.update(threshold=0.05))
    with pytest.raises(ModelIntegrityError, match="signature does not match"):
        load_model(signed)


def test_a_swapped_pickle_with_a_matching_checksum_in_the_card_never_runs(signed, tmp_path):
    """The attack the checksum alone cannot stop: new pickle and its SHA-256 written into the card."""
    import hashlib
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = load_model(signed).path
    data = pickle.dumps(Payload())
    (folder / "pipeline.joblib").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    def forge(card):
        card["files"]["pipeline.joblib"] = digest
        card["pipeline_sha256"] = digest

    _rewrite(folder, forge)
    with pytest.raises(ModelIntegrityError, match="signature"):
        load_model(signed)
    assert not marker.exists()


def test_with_a_key_set_an_unsigned_model_is_refused(small, tmp_path, monkeypatch):
    monkeypatch.delenv("LOANDESK_SIGNING_KEY", raising=False)
    registry = tmp_path / "unsigned"
    save_version(registry, small.pipeline, small.card, small.holdout)
    assert "signature" not in load_model(registry).card
    monkeypatch.setenv("LOANDESK_SIGNING_KEY", "k")
    with pytest.raises(ModelIntegrityError, match="not signed"):
        load_model(registry)


def test_another_key_is_refused(signed, monkeypatch):
    monkeypatch.setenv("LOANDESK_SIGNING_KEY", "another key")
    with pytest.raises(ModelIntegrityError, match="signature does not match"):
        load_model(signed)
