"""Optional model-card signatures: with LOANDESK_SIGNING_KEY set, only cards signed with it load.

The SHA-256 in the card catches an altered, truncated or swapped pipeline file, but someone who can
write the card too could put a crafted pickle's checksum in it. An HMAC over the whole card, with a
key kept outside the model folder, closes that: a rewritten card no longer verifies, so its pickle
is never opened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from model.core import config

SIGNATURE_KEY = "signature"
ENV_KEY = config.SIGNING_KEY.name
signing_key = config.signing_key


def _digest(card: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in card.items() if k != SIGNATURE_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "hmac-sha256:" + hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def sign(card: dict[str, Any]) -> dict[str, Any]:
    """The card with its signature when a key is configured; unchanged otherwise."""
    key = signing_key()
    if key is None:
        return card
    return {**card, SIGNATURE_KEY: _digest(card, key)}


def signature_problem(card: dict[str, Any]) -> str | None:
    """Why the card's signature does not hold under the configured key (None when it holds, or no key)."""
    key = signing_key()
    if key is None:
        return None
    found = card.get(SIGNATURE_KEY)
    if not found:
        return f"the model card is not signed, and {ENV_KEY} requires signed models: retrain with the key set"
    if not hmac.compare_digest(str(found), _digest(card, key)):
        return "the model card's signature does not match: the card was altered, or signed with another key"
    return None
