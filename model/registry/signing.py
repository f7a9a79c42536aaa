"""Model cards signed with an Ed25519 key pair: one host signs, every host verifies.

The SHA-256s in the card catch an altered, truncated or swapped pipeline file, but someone who can
write the card too could put a crafted pickle's checksum in it. A signature over the whole card
closes that. With one shared secret (HMAC) every replica and the app could also sign; with a key
pair only the training host holds the private key (`LOANDESK_SIGNING_KEY`, or a PEM file named by
`LOANDESK_SIGNING_KEY_FILE`), and replicas and the app hold only the public key
(`LOANDESK_VERIFY_KEY` or `LOANDESK_VERIFY_KEY_FILE`), which verifies but cannot sign.

- A private key configured: every saved card is signed, and only cards it signed load.
- Only a public key: cards load only when signed by its private key; saving a version (a threshold
  copy) is refused, since this host cannot sign.
- No key at all (the default, for a laptop): cards are neither signed nor checked, and the Model
  page says so.

Keys are PEM (PKCS#8 private, SubjectPublicKeyInfo public) or the 32 raw bytes in base64; make a
pair with `python train.py --new-key-pair DIR`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from model.core import config
from model.core.errors import ModelIntegrityError
from model.core.files import create_private, private_dir

SIGNATURE_KEY = "signature"
SIGNED_BY_KEY = "signed_by"  # the public key's id, so that a refusal can say which key signed
SCHEME = "ed25519"
PRIVATE_FILE = "loandesk-signing.pem"
PUBLIC_FILE = "loandesk-verify.pem"


class SigningKeyError(ModelIntegrityError):
    """A configured key cannot be read, or this host cannot sign; the message says which and why."""


@dataclass(frozen=True)
class SigningStatus:
    """What this host can do with model cards, for the Model page and the sidebar."""

    mode: str  # "off" (no keys), "verify" (public key only), "sign" (private key)
    key_id: str | None

    @property
    def can_sign(self) -> bool:
        return self.mode != "verify"

    @property
    def text(self) -> str:
        if self.mode == "off":
            return ("Model cards are not signed: no signing key is configured, so anyone who can write the "
                    "model folder can change the model unnoticed. Set LOANDESK_SIGNING_KEY on the training "
                    "host and LOANDESK_VERIFY_KEY here to have every card signed and checked.")
        if self.mode == "verify":
            return (f"Every model card is checked against the training host's public key (key id {self.key_id}); "
                    "this host holds no private key, so it cannot sign: new versions are made on the "
                    "training host.")
        return f"Every model card is signed with this host's private key (key id {self.key_id}) and checked."


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key() -> Ed25519PrivateKey | None:
    """The training host's private key, or None when this host has none."""
    text, where = _configured(config.SIGNING_KEY, config.SIGNING_KEY_FILE)
    if text is None:
        return None
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SigningKeyError(f"{where} is not an Ed25519 private key (PEM, or 32 bytes in base64): {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def public_key() -> Ed25519PublicKey | None:
    """The key cards are checked with: the configured public key, else the private key's own."""
    text, where = _configured(config.VERIFY_KEY, config.VERIFY_KEY_FILE)
    own = private_key()
    if text is None:
        return own.public_key() if own is not None else None
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SigningKeyError(f"{where} is not an Ed25519 public key (PEM, or 32 bytes in base64): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{where} holds a {type(key).__name__}, not an Ed25519 public key")
    if own is not None and key_id(own.public_key()) != key_id(key):
        raise SigningKeyError("the configured private and public keys are not a pair: cards signed here would "
                              "be refused here")
    return key


def status() -> SigningStatus:
    public = public_key()
    if public is None:
        return SigningStatus("off", None)
    return SigningStatus("sign" if private_key() is not None else "verify", key_id(public))


def _canonical(card: dict[str, Any]) -> bytes:
    body = {k: v for k, v in card.items() if k != SIGNATURE_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(card: dict[str, Any]) -> dict[str, Any]:
    """The card signed with this host's private key; unchanged when no key is configured at all.

    Raises SigningKeyError on a host that verifies but cannot sign: a card it saved would be
    refused everywhere, so it must not save one.
    """
    key = private_key()
    if key is None:
        if public_key() is not None:
            raise SigningKeyError("this host holds only the public key (LOANDESK_VERIFY_KEY), so it cannot sign a "
                                  "new model version: make it on the training host, which holds "
                                  "LOANDESK_SIGNING_KEY")
        return {k: v for k, v in card.items() if k not in (SIGNATURE_KEY, SIGNED_BY_KEY)}
    body = {k: v for k, v in card.items() if k != SIGNATURE_KEY}
    body[SIGNED_BY_KEY] = key_id(key.public_key())
    signature = base64.b64encode(key.sign(_canonical(body))).decode()
    return {**body, SIGNATURE_KEY: f"{SCHEME}:{signature}"}


def signature_problem(card: dict[str, Any]) -> str | None:
    """Why the card's signature does not hold under the configured public key (None when it
    holds, or when no key is configured)."""
    key = public_key()
    if key is None:
        return None
    found = card.get(SIGNATURE_KEY)
    if not found:
        return ("the model card is not signed, and this host accepts only models signed by the training host's "
                f"key (key id {key_id(key)}): sign it by saving it on the training host")
    scheme, _, encoded = str(found).partition(":")
    if scheme != SCHEME:
        return (f"the model card is signed with {scheme or 'an unknown scheme'}, not Ed25519: "
                "re-save it on the training host")
    try:
        key.verify(base64.b64decode(encoded, validate=True), _canonical(card))
    except (InvalidSignature, ValueError, binascii.Error):
        signer = card.get(SIGNED_BY_KEY)
        trusted = key_id(key)
        other = f" (it names key id {signer}; this host trusts {trusted})" if signer and signer != trusted else ""
        return f"the model card's signature does not match: the card was altered, or signed with another key{other}"
    return None


def new_key_pair(folder: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 pair into `folder`: the private key owner-only, the public key to copy anywhere."""
    folder = private_dir(Path(folder))
    key = Ed25519PrivateKey.generate()
    private_path, public_path = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    with create_private(private_path) as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    with create_private(public_path) as fh:
        fh.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    public_path.chmod(0o644)
    return private_path, public_path


def _configured(value: config.Setting, file: config.Setting) -> tuple[str | None, str]:
    """A key's text from its variable, else from the file its _FILE variable names."""
    text = value.read()
    if text:
        return text.strip(), value.name
    path = file.read()
    if not path:
        return None, file.name
    try:
        return Path(path).read_text(encoding="ascii").strip(), f"{file.name} ({path})"
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"{file.name} names {path}, which cannot be read: {exc}") from None
