"""Saving, verifying and loading model versions.

Layout of a model (a registry folder, e.g. artifacts/loan_approval_model):

    ACTIVE                        the id of the active version
    versions/<id>/pipeline.joblib the fitted pipeline
    versions/<id>/model_card.json schema, metrics, versions, fingerprints, SHA-256 of every file
    versions/<id>/holdout.parquet hold-out features, labels and probabilities

Every write goes to a temporary name and is renamed into place, so a crash mid-save leaves the
previous version active and loadable. Every load checks the SHA-256 before a byte is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.pipeline import Pipeline

from model.core import config
from model.core.errors import ModelFolderError, ModelIntegrityError, UnsafePickleError
from model.core.schema import Schema
from model.registry import unpickling
from model.registry.signing import sign, signature_problem
from model.registry.unpickling import Trust

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel

CARD_FORMAT = 1
PIPELINE_FILE = "pipeline.joblib"
CARD_FILE = "model_card.json"
HOLDOUT_FILE = "holdout.parquet"
ACTIVE_FILE = "ACTIVE"
VERSIONS_DIR = "versions"
DEFAULT_MODEL_DIR = Path("artifacts") / "loan_approval_model"
PROJECT_ROOT = config.PROJECT_ROOT
# A version's name: its UTC time, the first 8 hex digits of its pipeline's SHA-256, maybe a tie-breaker.
VERSION_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}(-[0-9a-f]{4})?")
REQUIRED_CARD_KEYS = ("card_format", "name", "version", "schema", "threshold", "files", "pipeline_sha256",
                      "libraries", "target")




def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_model_dir() -> Path:
    """Where the app, score.py and serve.py look unless told otherwise (LOANDESK_MODEL_DIR overrides).

    Beside the project, like the decision log, so that commands run from any folder find the same model.
    """
    return config.model_dir()


# --- which folder: never guessed ---------------------------------------------------------------
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".skops", ".sav")
IMPORT_HINT = "python train.py --import {file} --data labelled.csv --target approved --out {out}"


def builtin_model_dir() -> Path:
    """The built-in model's folder beside the project, whatever LOANDESK_MODEL_DIR says."""
    return PROJECT_ROOT / DEFAULT_MODEL_DIR


def holds_versions(path: str | Path) -> bool:
    """Whether `path` is a LoanDesk model folder: a versions/ folder with at least one model card."""
    versions = Path(path) / VERSIONS_DIR
    return versions.is_dir() and any((v / CARD_FILE).is_file() for v in versions.iterdir()
                                     if not v.name.startswith("."))


def may_train_builtin(path: str | Path) -> bool:
    """A first start trains the built-in model only into the built-in folder, and only while that
    folder holds nothing yet: any other folder is used as given or refused, never filled with a guess."""
    path = Path(path)
    if _same_path(path, builtin_model_dir()):
        return not path.exists() or (path.is_dir() and _only_empty_versions(path))
    return False


def _only_empty_versions(path: Path) -> bool:
    """Empty, or holding nothing but an empty versions/ folder (a save that never finished)."""
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    if not entries:
        return True
    return [e.name for e in entries] == [VERSIONS_DIR] and entries[0].is_dir() and not holds_versions(path)


def _same_path(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


def model_folder_problem(path: str | Path, given_as: str = "") -> str | None:
    """Why `path` cannot be read as a model folder (or version folder), in words; None when it can.

    `given_as` names where the path came from ("LOANDESK_MODEL_DIR", "--model") for the message.
    """
    path = Path(path)
    said = f"{given_as} is {path}" if given_as else str(path)
    if (path / CARD_FILE).is_file() or holds_versions(path):
        return None
    if path.is_file() or path.suffix.lower() in PICKLE_SUFFIXES:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            return (f"{said}: a saved model file, not a LoanDesk model folder. Make it a verified version first "
                    f"with `{IMPORT_HINT.format(file=path, out='artifacts/my_model')}`, then use the folder "
                    "artifacts/my_model")
        return f"{said}: a file, not a LoanDesk model folder"
    fix = (f"train a model into it with `python train.py --out {path}`, or import a saved pipeline with "
           f"`{IMPORT_HINT.format(file='FILE.pkl', out=path)}`")
    unset = " (or unset LOANDESK_MODEL_DIR to use the built-in model)" if given_as == "LOANDESK_MODEL_DIR" else ""
    if not path.exists():
        return f"{said}, which does not exist: check the path{unset}, or {fix}"
    if not path.is_dir():
        return f"{said}: not a folder"
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        return (f"{said}, which holds no LoanDesk versions but holds {', '.join(pickles[:3])}: import it with "
                f"`{IMPORT_HINT.format(file=path / pickles[0], out=path / 'loandesk')}` and use {path / 'loandesk'}")
    return f"{said}, which holds no LoanDesk versions{unset}: {fix}"


def output_folder_problem(path: str | Path) -> str | None:
    """Why a new version cannot be saved into `path`: only a new or empty folder, or a LoanDesk model
    folder, takes one (a folder of other files is never turned into a model folder by accident)."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return (f"--out {path} names a file: --out takes a model folder (one is made for you). To turn a saved "
                f"pipeline into a version, use `{IMPORT_HINT.format(file=path, out='artifacts/my_model')}`")
    if not path.exists() or holds_versions(path):
        return None
    if not path.is_dir():
        return f"--out {path} is a file, not a folder"
    if not _only_empty_versions(path):
        return (f"--out {path} is a folder that already holds other files and no LoanDesk versions: choose a new "
                "or empty folder, or an existing model folder")
    return None


# --- saving ----------------------------------------------------------------------------------
def save_version(
    registry: str | Path,
    pipeline: Pipeline | Path,
    card: dict[str, Any],
    holdout: pd.DataFrame,
    *,
    activate: bool = True,
) -> str:
    """Write a new version atomically and (by default) make it active; returns its id.

    `pipeline` is a fitted Pipeline, or the path of a verified pipeline file to copy byte for byte
    (so a version that only changes the threshold keeps its parent's SHA-256).
    """
    registry = Path(registry)
    versions = registry / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    _sweep_temporaries(versions)
    tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=versions))
    try:
        if isinstance(pipeline, Path):
            shutil.copyfile(pipeline, tmp / PIPELINE_FILE)
        else:
            joblib.dump(pipeline, tmp / PIPELINE_FILE)
            _check_loadable(tmp / PIPELINE_FILE, card)
        holdout.to_parquet(tmp / HOLDOUT_FILE, index=False)
        files = {name: sha256_file(tmp / name) for name in (PIPELINE_FILE, HOLDOUT_FILE)}
        created = datetime.now(UTC)
        version = f"{created:%Y%m%d-%H%M%S}-{files[PIPELINE_FILE][:8]}"
        full = {
            "card_format": CARD_FORMAT,
            "name": registry.name,
            "version": version,
            "created_at": created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            **card,
            "libraries": library_versions(),
            "files": files,
            "pipeline_sha256": files[PIPELINE_FILE],
        }
        _write_json(tmp / CARD_FILE, sign(full))
        _fsync_dir(tmp)
        final = versions / version
        if final.exists():  # same pipeline saved twice in one second: keep the ids apart
            version = f"{version}-{os.urandom(2).hex()}"
            full["version"] = version
            _write_json(tmp / CARD_FILE, sign(full))
            final = versions / version
        os.rename(tmp, final)
        _fsync_dir(versions)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if activate:
        activate_version(registry, version)
    return version




def trust_of(card: Mapping[str, Any]) -> Trust:
    """The modules a version's card says its import trusted (none for a version LoanDesk trained)."""
    return Trust.parse((card.get("imported") or {}).get("trusted_modules") or ())


def _check_loadable(path: Path, card: dict[str, Any]) -> None:
    """Refuse to save a pipeline that the safe loader would refuse to load: a version that is saved
    (and made active) must be one that every face of LoanDesk can then use."""
    try:
        unpickling.loads(path.read_bytes(), trust_of(card), source="the pipeline")
    except UnsafePickleError as exc:
        names = ", ".join(f"{m}.{n}" for m, n in exc.refused)
        raise UnsafePickleError(
            f"this pipeline is made of code the safe model loader does not allow ({names}), so no LoanDesk could "
            "load it again: nothing was saved. If that code is yours, name its module with --trust-module; if it "
            "is scikit-learn's, please report it: the loader's allow-list must learn it.", exc.refused) from exc


def check_version_name(version: object) -> str:
    """`version` if it is a version's name; ModelIntegrityError otherwise.

    A version is always named, never a path: `ACTIVE`, `--version` and `activate_version` once
    accepted `../` and absolute paths, which let them load or activate a model from anywhere.
    """
    if not isinstance(version, str) or not VERSION_NAME.fullmatch(version):
        raise ModelIntegrityError(f"{str(version)[:80]!r} is not a version name (like 20261125-103327-ba9fe5bc): "
                                  "versions are named, never given as a path")
    return version


def version_folder(registry: str | Path, version: str) -> Path:
    """The folder of a version inside the registry; refuses a name that is not a version's, and a
    version folder that is a link to somewhere else."""
    versions = Path(registry) / VERSIONS_DIR
    folder = versions / check_version_name(version)
    if folder.is_symlink():
        raise ModelIntegrityError(f"{folder} is a link, not a version folder in {versions}: it was not used")
    return folder


def activate_version(registry: str | Path, version: str) -> None:
    """Make one version the active one (this is also how a rollback is done)."""
    registry = Path(registry)
    try:
        folder = version_folder(registry, version)
    except ModelIntegrityError as exc:
        known = ", ".join(v.version for v in list_versions(registry)) or "none"
        raise ModelIntegrityError(f"{exc} (versions in {registry}: {known})") from None
    if not (folder / CARD_FILE).is_file():
        known = ", ".join(v.version for v in list_versions(registry)) or "none"
        raise ModelIntegrityError(f"no version {version!r} in {registry} (versions: {known})")
    _atomic_write(registry / ACTIVE_FILE, version + "\n")


def active_version(registry: str | Path) -> str | None:
    """The active version's name (None when none is active); ModelIntegrityError when `ACTIVE`
    holds anything but a version's name."""
    path = Path(registry) / ACTIVE_FILE
    if not path.is_file():
        return None
    try:
        return check_version_name(path.read_text(encoding="utf-8").strip())
    except (ModelIntegrityError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"{path} does not hold a version name, so no version is loaded from it ({exc}); "
                                  f"activate one with `python train.py --activate VERSION --out {Path(registry)}`"
                                  ) from None


@dataclass(frozen=True)
class VersionInfo:
    version: str
    created_at: str
    model_kind: str
    auc: float | None
    threshold: float
    active: bool
    parent: str | None


def list_versions(registry: str | Path) -> list[VersionInfo]:
    """Every readable version, newest first."""
    registry = Path(registry)
    active = active_version(registry)
    out = []
    for folder in sorted((registry / VERSIONS_DIR).glob("*"), reverse=True):
        if not VERSION_NAME.fullmatch(folder.name) or folder.is_symlink() or not (folder / CARD_FILE).is_file():
            continue
        try:
            card = json.loads((folder / CARD_FILE).read_text())
        except (OSError, ValueError):
            continue
        out.append(VersionInfo(
            version=folder.name, created_at=card.get("created_at", ""),
            model_kind=card.get("model_kind", "?"), auc=card.get("metrics", {}).get("auc"),
            threshold=float(card.get("threshold", 0.5)), active=folder.name == active,
            parent=card.get("parent"),
        ))
    # Version ids have one-second resolution; the card's time (to the microsecond) orders ties.
    out.sort(key=lambda v: (v.created_at, v.version), reverse=True)
    return out


# --- verifying and loading -------------------------------------------------------------------
def resolve_version_dir(path: str | Path, version: str | None = None) -> Path:
    """A version folder from a version folder, or from a registry folder (its active version)."""
    path = Path(path)
    if version is None and (path / CARD_FILE).is_file():
        return path
    if (path / VERSIONS_DIR).is_dir():
        version = version or active_version(path)
        if not version:
            raise ModelIntegrityError(f"{path} has no active version; activate one with "
                                      f"`python train.py --activate VERSION --out {path}`")
        folder = version_folder(path, version)
        if not folder.is_dir():
            raise ModelIntegrityError(f"{path} has no version {version!r}")
        return folder
    raise ModelFolderError(model_folder_problem(path) or f"no model at {path}")


def read_card(folder: Path) -> dict[str, Any]:
    """The model card, refused if missing, unreadable or lacking what loading depends on."""
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise ModelIntegrityError(f"{folder}: the model card ({CARD_FILE}) is missing")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelIntegrityError(f"{card_path}: the model card is not valid JSON ({exc})") from exc
    if not isinstance(card, dict):
        raise ModelIntegrityError(f"{card_path}: the model card is not a JSON object")
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise ModelIntegrityError(f"{card_path}: the model card lacks {', '.join(missing)}")
    if card["card_format"] != CARD_FORMAT:
        raise ModelIntegrityError(f"{card_path}: card format {card['card_format']!r} is not supported "
                                  f"(this LoanDesk reads format {CARD_FORMAT})")
    expected = card["files"].get(PIPELINE_FILE) if isinstance(card["files"], dict) else None
    if not isinstance(expected, str) or len(expected) != 64:
        raise ModelIntegrityError(f"{card_path}: the model card has no SHA-256 for {PIPELINE_FILE}")
    _check_card_values(card_path, card)
    return card


def _check_card_values(card_path: Path, card: dict[str, Any]) -> None:
    """What the loaded model reads from the card must make sense, or nothing is unpickled."""
    def bad(what: str) -> ModelIntegrityError:
        return ModelIntegrityError(f"{card_path}: the model card is malformed ({what})")

    for name, digest in card["files"].items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise bad(f"file name {name!r} is not a plain name in the version folder")
        if not isinstance(digest, str) or len(digest) != 64:
            raise bad(f"no SHA-256 for {name}")
    if card.get("pipeline_sha256") != card["files"][PIPELINE_FILE]:
        raise bad(f"pipeline_sha256 differs from the SHA-256 listed for {PIPELINE_FILE}")
    if not isinstance(card["libraries"], dict):
        raise bad("libraries is not an object")
    threshold = card["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise bad(f"threshold {threshold!r} is not a number between 0 and 1")
    band = card.get("refer_band", 0)
    if isinstance(band, bool) or not isinstance(band, int | float) or not 0 <= band < 1:
        raise bad(f"refer_band {band!r} is not a width from 0 (no band) to below 1")
    try:
        Schema.from_dict(card["schema"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(f"schema: {exc}") from exc


def verify(folder: Path, card: dict[str, Any], *, allow_version_mismatch: bool = False,
           digests: dict[str, str] | None = None) -> None:
    """Signature (when a key is configured), checksums and library versions, before anything is unpickled.

    `digests` holds SHA-256s the caller already computed from bytes it holds (so they are not read twice).
    """
    if problem := signature_problem(card):
        raise ModelIntegrityError(f"{folder / CARD_FILE}: {problem}. It was not loaded.")
    for name, expected in card["files"].items():
        path = folder / name
        if not path.is_file():
            raise ModelIntegrityError(f"{path} is missing")
        actual = (digests or {}).get(name) or sha256_file(path)
        if actual != expected:
            raise ModelIntegrityError(
                f"{path} does not match its model card (SHA-256 {actual[:12]}… ≠ {expected[:12]}…): "
                "the file was altered, truncated or swapped. It was not loaded; retrain or restore it."
            )
    trained = card["libraries"].get("scikit-learn")
    if trained != sklearn.__version__ and not allow_version_mismatch:
        raise ModelIntegrityError(
            f"this model was trained with scikit-learn {trained}, but scikit-learn {sklearn.__version__} "
            "is installed. Install the same version, retrain, or pass allow_version_mismatch=True "
            "if you accept the risk."
        )


def load_model(path: str | Path | None = None, *, version: str | None = None,
               allow_version_mismatch: bool = False) -> LoanModel:
    """Load a model verified end to end: card, checksums, library versions, then the pipeline."""
    from model.scoring.predictor import LoanModel

    folder = resolve_version_dir(path if path is not None else default_model_dir(), version)
    card = read_card(folder)
    # Read the pipeline once and unpickle exactly the bytes that were checked: the file could be
    # swapped after `verify` looked at it.
    pipeline_path = folder / PIPELINE_FILE
    data = pipeline_path.read_bytes() if pipeline_path.is_file() else None
    digests = {PIPELINE_FILE: hashlib.sha256(data).hexdigest()} if data is not None else None
    verify(folder, card, allow_version_mismatch=allow_version_mismatch, digests=digests)
    assert data is not None  # verify refuses a missing pipeline file
    with warnings.catch_warnings():
        if not allow_version_mismatch:
            warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            # The checksum says these are the bytes that were saved; the allow-list says that even
            # so they can only build a model (a card's trusted modules come from its import).
            pipeline = unpickling.loads(data, trust_of(card), source=str(folder / PIPELINE_FILE))
        except InconsistentVersionWarning as exc:
            raise ModelIntegrityError(f"{folder / PIPELINE_FILE}: {exc}") from exc
        except UnsafePickleError as exc:
            names = ", ".join(f"{m}.{n}" for m, n in exc.refused)
            raise UnsafePickleError(
                f"{folder / PIPELINE_FILE} names code that no LoanDesk version needs ({names}); nothing it names was "
                "imported or run. Its checksum matches its card, so both were replaced: restore this version from a "
                "copy you trust, or make another version active.", exc.refused) from exc
        except ModelIntegrityError:
            raise
        except Exception as exc:  # a file whose checksum matched but cannot be read
            raise ModelIntegrityError(f"{folder / PIPELINE_FILE} could not be loaded: {exc}") from exc
    if not isinstance(pipeline, Pipeline):
        raise ModelIntegrityError(f"{folder / PIPELINE_FILE} holds a {type(pipeline).__name__}, not a Pipeline")
    return LoanModel(pipeline, card, folder)


def load_holdout(model: LoanModel) -> pd.DataFrame:
    """The stored hold-out (features, label, probability), checked against the card.

    Read once: the bytes hashed are the bytes parsed. (Hashing the file and then opening it again
    let a hold-out swapped in between pass the check, and a threshold chosen on it be signed.)
    """
    path = Path(model.path) / HOLDOUT_FILE
    expected = model.card.files.get(HOLDOUT_FILE)
    if not expected:
        raise ModelIntegrityError(f"{path}: the model card lists no SHA-256 for the hold-out, so it is not read")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelIntegrityError(f"{path} does not match its model card")
    return pd.read_parquet(io.BytesIO(data))


# --- file helpers ----------------------------------------------------------------------------
def _write_json(path: Path, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep_temporaries(versions: Path) -> None:
    """Remove what an earlier crashed save left behind (never a finished version)."""
    stale = datetime.now(UTC).timestamp() - 3600  # an hour old: no save takes that long
    for leftover in versions.glob(".saving-*"):
        if leftover.stat().st_mtime < stale:
            shutil.rmtree(leftover, ignore_errors=True)
