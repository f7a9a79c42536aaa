"""Every LOANDESK_* setting, declared once with its type, default and meaning.

Settings are read when asked for, never at import, so that a test (or a server's worker) can set
the environment first. Modules ask `config.model_dir()` and friends; nothing else reads os.environ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding model/, app and CLIs


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, what it is for, and its default (as text, or None)."""

    name: str
    help: str
    default: str | None = None

    def read(self) -> str | None:
        value = os.environ.get(self.name, "")
        return value if value else self.default


MODEL_DIR = Setting("LOANDESK_MODEL_DIR", "the model folder the app, score.py and serve.py use",
                    str(PROJECT_ROOT / "artifacts" / "loan_approval_model"))
DB_URL = Setting("LOANDESK_DB_URL", "SQLAlchemy URL of the decision log (default: a SQLite file in data/)")
UNSENT_DIR = Setting("LOANDESK_UNSENT_DIR", "where decisions that could not be logged are kept until replayed",
                     str(PROJECT_ROOT / "data" / "unsent"))
SIGNING_KEY = Setting("LOANDESK_SIGNING_KEY", "the training host's Ed25519 private key (PEM or base64), "
                      "which signs every saved model card")
SIGNING_KEY_FILE = Setting("LOANDESK_SIGNING_KEY_FILE", "a PEM file holding that private key, instead of the variable")
VERIFY_KEY = Setting("LOANDESK_VERIFY_KEY", "the Ed25519 public key (PEM or base64) that model cards must be signed "
                     "with; replicas and the app hold this one only")
VERIFY_KEY_FILE = Setting("LOANDESK_VERIFY_KEY_FILE", "a PEM file holding that public key, instead of the variable")
REPLAY_KEY = Setting("LOANDESK_REPLAY_KEY", "secret that seals the journal, unsent files and batch spools (share "
                     "it between replicas to replay each other's files); default: a key made on first use")
REPLAY_KEY_FILE = Setting("LOANDESK_REPLAY_KEY_FILE", "where the host's own replay key is kept (owner-only)",
                          str(PROJECT_ROOT / "data" / "replay.key"))

NOTICE_TEMPLATE = Setting("LOANDESK_NOTICE_TEMPLATE", "the bank's adverse action notice template (TOML)",
                          str(PROJECT_ROOT / "model" / "notices" / "template.toml"))
SQLITE_SYNC = Setting("LOANDESK_SQLITE_SYNC", "FULL (the default): every commit of a SQLite log is synced and survives "
                      "power loss; NORMAL: commits survive a crash of the process, not power loss, and cost no fsync",
                      "FULL")

SESSION_HOURS = Setting("LOANDESK_SESSION_HOURS", "hours a sign-in lasts before the person must sign in again "
                        "(Streamlit itself never checks the identity token's age)", "8")

SETTINGS = (MODEL_DIR, DB_URL, UNSENT_DIR, SIGNING_KEY, SIGNING_KEY_FILE, VERIFY_KEY, VERIFY_KEY_FILE,
            REPLAY_KEY, REPLAY_KEY_FILE, NOTICE_TEMPLATE, SQLITE_SYNC, SESSION_HOURS)
DEFAULT_DB_PATH = PROJECT_ROOT / "data" / "decisions.db"


def model_dir() -> Path:
    """Where the app, score.py and serve.py look for the model unless told otherwise."""
    return Path(MODEL_DIR.read() or "")


def model_dir_given() -> bool:
    """Whether LOANDESK_MODEL_DIR names the model folder (so messages can say where a wrong path came from)."""
    return bool(os.environ.get(MODEL_DIR.name, ""))


def db_url() -> str:
    """The decision log's URL: LOANDESK_DB_URL, else a SQLite file in the data folder beside the app."""
    return DB_URL.read() or f"sqlite:///{DEFAULT_DB_PATH}"


def unsent_dir() -> Path:
    """Where decisions the log could not take wait for `serve.py --replay`."""
    return Path(UNSENT_DIR.read() or "")


def notice_template() -> Path:
    """The adverse action notice template the app, score.py and serve.py fill in."""
    return Path(NOTICE_TEMPLATE.read() or "")


def sqlite_sync() -> str:
    """SQLite's `synchronous` for the decision log: FULL (the default: a decision returned survives a
    power cut) or NORMAL (opted into where losing the last commits to one is acceptable)."""
    value = (SQLITE_SYNC.read() or "FULL").strip().upper()
    if value not in ("FULL", "NORMAL"):
        raise ValueError(f"LOANDESK_SQLITE_SYNC must be FULL or NORMAL, not {value!r}")
    return value


def replay_key() -> bytes | None:
    """The configured replay key, or None (then the host's key file is used)."""
    key = REPLAY_KEY.read()
    return key.encode() if key else None


def replay_key_file() -> Path:
    return Path(REPLAY_KEY_FILE.read() or "")


def session_hours() -> float:
    """How long a sign-in lasts: LOANDESK_SESSION_HOURS, else 8; a value that is not a number of hours
    between a minute and 30 days falls back to 8 rather than to no limit."""
    try:
        hours = float(SESSION_HOURS.read() or "8")
    except ValueError:
        return 8.0
    return hours if 1 / 60 <= hours <= 24 * 30 else 8.0
