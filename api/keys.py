"""API keys: created once and shown once, stored only as salted hashes beside the decision log.

A key is 256 random bits, so one salted SHA-256 is enough to make a stolen table useless (a slow
password hash would only add milliseconds to every request: nobody can guess such a key). Checks
compare every stored hash in constant time. A running server rereads the table from a thread of
its own every KEYS_REFRESH_SECONDS, never on a request's path (a slow or unreachable database must
not hold answers up), so a key made or revoked from the command line counts within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from model.core.errors import LoanDeskError
from model.records.log import DecisionLog
from model.records.tables import api_keys  # made by the decision log's migrations

log = logging.getLogger("loandesk.api")

KEYS_REFRESH_SECONDS = 2.0
# A copy of the table older than this (the database unreachable all that time) is no longer
# trusted: a key revoked meanwhile must not keep working, so requests get 503 until a reread.
KEYS_MAX_AGE_SECONDS = 300.0
NAME_LENGTH = 36  # the log's source column holds "api:" + the name in 40 characters
NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_LENGTH - 1}}}")
PREFIX = "ldk_"




class KeyProblem(LoanDeskError, ValueError):
    """A key cannot be created or revoked; the message says why."""


class KeysUnavailable(LoanDeskError, RuntimeError):
    """The key table cannot be read and no earlier copy is at hand: no request can be checked."""


@dataclass(frozen=True)
class StoredKey:
    name: str
    salt: bytes
    key_hash: bytes


def _hash(salt: bytes, key: str) -> bytes:
    return hashlib.sha256(salt + key.encode("utf-8", "surrogatepass")).digest()


class KeyStore:
    """The API keys in the decision log's database."""

    def __init__(self, decision_log: DecisionLog):
        self.decision_log = decision_log
        self._keys: list[StoredKey] = []
        self._read_at = -1e9  # when the table was last read (negative: never)
        self._refreshing = False
        self._lock = threading.Lock()
        self._ready = False
        self._stop = threading.Event()

    def _engine(self) -> Engine:
        if not self._ready:
            self.decision_log.ensure_schema()  # the migrations make the key table too
            self._ready = True
        return self.decision_log.engine

    def create(self, name: str) -> str:
        """A new key for `name`, returned once; only its salted hash is kept."""
        if not NAME.fullmatch(name or ""):
            raise KeyProblem(f"{name!r} is not a usable key name: use 1 to {NAME_LENGTH} letters, digits, "
                             "'_', '.' or '-', starting with a letter or digit")
        key = PREFIX + secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        exists = KeyProblem(f"a key named {name!r} exists already; revoke it first "
                            f"(python serve.py --revoke-key {name})")
        try:
            with self._engine().begin() as conn:
                if conn.execute(select(api_keys.c.id).where(
                        api_keys.c.name == name, api_keys.c.revoked_at.is_(None))).first():
                    raise exists
                conn.execute(insert(api_keys).values(
                    name=name, salt=salt.hex(), key_hash=_hash(salt, key).hex(), created_at=datetime.now(UTC)))
        except IntegrityError:  # another command made one between the check and the insert
            raise exists from None
        self._reload()
        return key

    def revoke(self, name: str) -> int:
        """Revoke every live key of `name`; returns how many."""
        with self._engine().begin() as conn:
            done = conn.execute(update(api_keys).where(
                api_keys.c.name == name, api_keys.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC)))
        self._reload()
        if not done.rowcount:
            raise KeyProblem(f"there is no live key named {name!r}")
        return done.rowcount

    def listing(self) -> list[dict]:
        """Every key ever made: name, created, revoked (never the key or its hash)."""
        with self._engine().connect() as conn:
            rows = conn.execute(select(api_keys.c.name, api_keys.c.created_at, api_keys.c.revoked_at)
                                .order_by(api_keys.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def name_for(self, key: str | None) -> str | None:
        """The name of the live key `key`, or None. Every stored key is compared, in constant time."""
        if not key:
            return None
        keys = self._live()
        found = None
        for stored in keys:
            if hmac.compare_digest(_hash(stored.salt, key), stored.key_hash):
                found = stored.name
        return found

    def unusable(self) -> str | None:
        """Why no request can be checked now (the table never read, or the copy too old), or None."""
        if self._read_at < 0:
            return "the API keys have not been read yet"
        if time.monotonic() - self._read_at > KEYS_MAX_AGE_SECONDS:
            return f"the API keys have not been reread for over {KEYS_MAX_AGE_SECONDS:.0f} s"
        return None

    def _live(self) -> list[StoredKey]:
        if self._read_at < 0:
            if self._refreshing:  # a server: its thread reads the table, never a request
                raise KeysUnavailable("the API keys have not been read yet")
            with self._lock:  # a script or a test with no refresher: read them now
                if self._read_at < 0:
                    self._reload()
        if time.monotonic() - self._read_at > KEYS_MAX_AGE_SECONDS:
            raise KeysUnavailable(f"the API keys have not been reread for over {KEYS_MAX_AGE_SECONDS:.0f} s")
        return self._keys

    def refresh(self) -> None:
        """Reread the table now (the background thread does this every KEYS_REFRESH_SECONDS)."""
        with self._lock:
            self._reload()

    def start_refreshing(self) -> None:
        """Reread the table every KEYS_REFRESH_SECONDS from a daemon thread, until `stop_refreshing`."""
        self._stop.clear()
        self._refreshing = True
        threading.Thread(target=self._refresh_loop, name="api-keys-refresh", daemon=True).start()

    def stop_refreshing(self) -> None:
        self._stop.set()
        self._refreshing = False

    def _refresh_loop(self) -> None:
        while not self._stop.wait(KEYS_REFRESH_SECONDS):
            try:
                self.refresh()
            except KeysUnavailable as exc:  # never loaded yet: requests get 503 until this succeeds
                log.error("%s", exc)

    def _reload(self) -> None:
        try:
            with self._engine().connect() as conn:
                rows = conn.execute(select(api_keys.c.name, api_keys.c.salt, api_keys.c.key_hash)
                                    .where(api_keys.c.revoked_at.is_(None))).all()
        except (SQLAlchemyError, OSError, RuntimeError) as exc:  # unreachable, unwritable, too new
            why = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            if self._read_at < 0:
                log.error("the API keys cannot be read: %s", why)
                raise KeysUnavailable("the API keys cannot be read (the server log says why)") from exc
            log.error("the API keys cannot be reread; the copy from %.0f s ago stays in use for up to %.0f s: %s",
                      time.monotonic() - self._read_at, KEYS_MAX_AGE_SECONDS, why)
            return
        self._keys = [StoredKey(n, bytes.fromhex(s), bytes.fromhex(h)) for n, s, h in rows]
        self._read_at = time.monotonic()


def bearer(header: str | None) -> str | None:
    """The key in an `Authorization: Bearer KEY` header."""
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None
