"""Model cards signed with an Ed25519 key pair: the training host signs, replicas and the app only verify."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import stat
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from model.registry import signing
from model.registry.store import CARD_FILE, ModelIntegrityError, load_model, save_version
from model.training.train import train_builtin
from model.training.workflows import copy_with_threshold

from .conftest import ROOT


@pytest.fixture(scope="module")
def small():
    return train_builtin(rows=1500, model="logistic", seed=3)


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in ("LOANDESK_SIGNING_KEY", "LOANDESK_SIGNING_KEY_FILE",
                 "LOANDESK_VERIFY_KEY", "LOANDESK_VERIFY_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pair(tmp_path):
    return signing.new_key_pair(tmp_path / "keys")


@pytest.fixture
def signed(small, tmp_path, monkeypatch, pair):
    """A registry saved on the training host (which holds the private key)."""
    monkeypatch.setenv("LOANDESK_SIGNING_KEY_FILE", str(pair[0]))
    registry = tmp_path / "signed"
    save_version(registry, small.pipeline, small.card, small.holdout)
    return registry


def replica(monkeypatch, pair) -> None:
    """From here on, this process is a replica: it holds the public key only."""
    monkeypatch.delenv("LOANDESK_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("LOANDESK_VERIFY_KEY_FILE", str(pair[1]))


def _rewrite(folder, change) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    change(card)
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_the_training_host_signs_every_card_and_threshold_copies_too(signed):
    model = load_model(signed)
    assert model.card["signature"].startswith("ed25519:")
    assert model.card["signed_by"] == signing.status().key_id and signing.status().mode == "sign"
    copy = load_model(signed, version=copy_with_threshold(signed, model.version, 0.6))
    assert copy.threshold == 0.6 and copy.card["signature"] != model.card["signature"]


def test_a_replica_with_the_public_key_loads_signed_models_but_cannot_sign(signed, monkeypatch, pair):
    replica(monkeypatch, pair)
    model = load_model(signed)
    status = signing.status()
    assert status.mode == "verify" and not status.can_sign and "cannot sign" in status.text
    with pytest.raises(signing.SigningKeyError, match="only the public key"):
        copy_with_threshold(signed, model.version, 0.6)
    assert len(list((signed / "versions").iterdir())) == 1  # nothing half-saved


def test_a_hand_edited_card_is_refused(signed, monkeypatch, pair):
    replica(monkeypatch, pair)
    _rewrite(load_model(signed).path, lambda card: card.update(threshold=0.05))
    with pytest.raises(ModelIntegrityError, match="signature does not match"):
        load_model(signed)


def test_a_swapped_pickle_with_a_matching_checksum_in_the_card_never_runs(signed, tmp_path, monkeypatch, pair):
    """The attack the checksum alone cannot stop: new pickle and its SHA-256 written into the card."""
    replica(monkeypatch, pair)
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


def test_once_a_public_key_is_configured_an_unsigned_model_is_refused(small, tmp_path, monkeypatch, pair):
    registry = tmp_path / "unsigned"
    save_version(registry, small.pipeline, small.card, small.holdout)
    assert "signature" not in load_model(registry).card and signing.status().mode == "off"
    replica(monkeypatch, pair)
    with pytest.raises(ModelIntegrityError, match="not signed"):
        load_model(registry)


def test_an_hmac_signed_card_from_before_key_pairs_is_refused(small, tmp_path, monkeypatch, pair):
    registry = tmp_path / "old"
    save_version(registry, small.pipeline, small.card, small.holdout)
    _rewrite(load_model(registry).path, lambda card: card.update(signature="hmac-sha256:" + "0" * 64))
    replica(monkeypatch, pair)
    with pytest.raises(ModelIntegrityError, match="not Ed25519"):
        load_model(registry)


def test_a_card_signed_by_another_key_pair_is_refused_naming_both_keys(signed, tmp_path, monkeypatch):
    other = signing.new_key_pair(tmp_path / "other")
    replica(monkeypatch, other)
    with pytest.raises(ModelIntegrityError, match=r"signed with another key \(it names key id"):
        load_model(signed)


def test_keys_can_be_given_as_pem_text_or_base64_in_the_variables(signed, monkeypatch, pair):
    monkeypatch.delenv("LOANDESK_SIGNING_KEY_FILE")
    public = serialization.load_pem_public_key(pair[1].read_bytes())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    monkeypatch.setenv("LOANDESK_VERIFY_KEY", base64.b64encode(raw).decode())
    assert load_model(signed).version
    monkeypatch.setenv("LOANDESK_VERIFY_KEY", pair[1].read_text())
    assert load_model(signed).version
    monkeypatch.setenv("LOANDESK_SIGNING_KEY", pair[0].read_text())
    assert signing.status().mode == "sign"


def test_a_key_that_cannot_be_read_is_named(monkeypatch):
    monkeypatch.setenv("LOANDESK_VERIFY_KEY", "correct horse battery staple")
    with pytest.raises(signing.SigningKeyError, match="LOANDESK_VERIFY_KEY is not an Ed25519 public key"):
        signing.status()
    monkeypatch.delenv("LOANDESK_VERIFY_KEY")
    monkeypatch.setenv("LOANDESK_SIGNING_KEY_FILE", "/nonexistent/key.pem")
    with pytest.raises(signing.SigningKeyError, match="cannot be read"):
        signing.status()


def test_a_private_and_public_key_that_are_not_a_pair_are_refused(tmp_path, monkeypatch, pair):
    other = signing.new_key_pair(tmp_path / "other")
    monkeypatch.setenv("LOANDESK_SIGNING_KEY_FILE", str(pair[0]))
    monkeypatch.setenv("LOANDESK_VERIFY_KEY_FILE", str(other[1]))
    with pytest.raises(signing.SigningKeyError, match="not a pair"):
        signing.status()


def test_with_no_keys_models_are_unsigned_and_the_status_says_so(small, tmp_path):
    registry = tmp_path / "plain"
    save_version(registry, small.pipeline, small.card, small.holdout)
    assert "signature" not in load_model(registry).card
    assert signing.status().mode == "off" and "not signed" in signing.status().text


def test_train_py_makes_a_key_pair_with_the_private_key_owner_only(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--new-key-pair", str(tmp_path / "k")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    private, public = tmp_path / "k" / signing.PRIVATE_FILE, tmp_path / "k" / signing.PUBLIC_FILE
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and public.is_file()
    assert "LOANDESK_SIGNING_KEY_FILE" in result.stdout and "LOANDESK_VERIFY_KEY_FILE" in result.stdout
    with pytest.raises(FileExistsError):  # never overwrites a key
        signing.new_key_pair(tmp_path / "k")
