"""Loading a pickled scikit-learn model that someone else made, without letting the file run code.

A pickle is a program: each `GLOBAL` it names is imported and may then be called with arguments the
file chooses, which is how a crafted `__reduce__` runs `os.system`. Here every global goes through
`find_class`, and is checked against an allow-list there, when the unpickler meets it and before the
object that needs it is built: a name that is not allowed is never imported, never resolved, never
called. The allow-list holds what fitted scikit-learn models are made of, and nothing that reads or
writes files or runs code when called:

- scikit-learn's estimators (every `BaseEstimator` subclass it defines) and the few internal types
  they hold (trees, losses, links, kernels, distance metrics, optimizers);
- NumPy arrays, dtypes, scalars, random generators and ufuncs (`np.log1p` in a FunctionTransformer);
  SciPy's sparse matrices and special functions; pandas' frames, series and indexes;
- joblib's array wrapper, so `joblib.dump`'s arrays (written raw after the pickle) load as usual,
  compressed or not, and object arrays (`feature_names_in_`) are read through the same check;
- a handful of builtins and standard-library constructors (`slice`, `set`, `functools.partial`, ...).

Not allowed: anything else, including functions of the libraries above that touch files or unpickle
again (`numpy.load`, `pandas.read_pickle`, `joblib.load`), `builtins.getattr`/`eval`, and dotted
names. A user's own code is allowed only by naming its module (`trusted=("mypackage",)`), and a
function pickled from `__main__` (the script or notebook that saved it) only by saying which module
now holds it (`"__main__=my_features"`). Every refused name is reported at once.

`.skops` files are read by `skops.io` with the same allow-list as its trusted types.
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import importlib
import io
import pickle
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler, _validate_fileobject_and_memmap
from sklearn.exceptions import InconsistentVersionWarning

from model.core.errors import UnsafePickleError

# Packages whose modules may be imported while checking a name (importing runs a module's code, so a
# module outside these and the trusted ones is never imported).
LIBRARIES = ("sklearn", "numpy", "scipy", "pandas", "joblib", "pyarrow")
LIBRARY_NAMES = "scikit-learn, NumPy, SciPy, pandas and joblib's arrays"

# Exact (module, name) pairs: constructors and reconstructors with no side effects.
_EXACT: frozenset[tuple[str, str]] = frozenset({
    *(("builtins", n) for n in ("slice", "bytearray", "bytes", "complex", "set", "frozenset", "range",
                                 "object", "list", "dict", "tuple", "int", "float", "str", "bool")),
    ("copyreg", "_reconstructor"), ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "deque"),
    ("functools", "partial"), ("_codecs", "encode"), ("codecs", "encode"),  # bytes in protocol 0-2 pickles
    ("numpy", "dtype"), ("numpy", "ndarray"),
    *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.bit_generator", "SeedSequence"), ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._pcg64", "PCG64"), ("numpy.random._pcg64", "PCG64DXSM"),
    ("numpy.random._philox", "Philox"), ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.mtrand", "RandomState"), ("numpy.random._generator", "Generator"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("pandas", "DataFrame"), ("pandas", "Series"), ("pandas", "Index"), ("pandas", "RangeIndex"),
    ("pandas", "Categorical"), ("pandas", "CategoricalDtype"), ("pandas", "StringDtype"),
    ("pandas.core.indexes.base", "_new_Index"), ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.internals.managers", "BlockManager"), ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.arrays", "ArrowStringArray"), ("pandas.core.arrays.string_arrow", "ArrowStringArray"),
    ("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "py_buffer"), ("pyarrow.lib", "type_for_alias"),
    ("sklearn.compose._column_transformer", "make_column_selector"),
    # HistGradientBoosting with categorical features keeps partial(check_array, ...) to validate them:
    # it converts and checks an array, and reads or runs nothing.
    ("sklearn.utils.validation", "check_array"),
    ("sklearn.compose._column_transformer", "_RemainderColsList"),
    ("scipy.interpolate._bsplines", "BSpline"), ("scipy._lib.array_api_compat.numpy._aliases", "asarray"),
    ("sklearn.metrics._dist_metrics", "newObj"), ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    *(("sklearn.feature_selection._univariate_selection", n)
      for n in ("f_classif", "chi2", "f_regression", "r_regression")),
    *(("sklearn.feature_selection._mutual_info", n) for n in ("mutual_info_classif", "mutual_info_regression")),
    # LoanDesk's own pipelines (old and new paths of the one function they reference).
    ("model.pipeline", "blanks_to_nan"), ("model.core.pipeline", "blanks_to_nan"),
    ("model.core.approval", "ApprovalClassifier"),
})

# scikit-learn types that are not estimators but are what fitted estimators hold.
_SKLEARN_BASES = frozenset({
    "sklearn.base.BaseEstimator", "sklearn.tree._tree.Tree", "sklearn._loss._loss.CyLossFunction",
    "sklearn._loss.loss.BaseLoss", "sklearn._loss.link.BaseLink", "sklearn._loss.link.Interval",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.gaussian_process.kernels.Kernel", "sklearn.gaussian_process.kernels.Hyperparameter",
    "sklearn.metrics._dist_metrics.DistanceMetric", "sklearn.neighbors._kd_tree.BinaryTree64",
    "sklearn.neighbors._kd_tree.BinaryTree32", "sklearn.neighbors._ball_tree.BinaryTree64",
    "sklearn.neighbors._ball_tree.BinaryTree32", "sklearn.neural_network._stochastic_optimizers.BaseOptimizer",
    "sklearn.utils._bunch.Bunch", "sklearn.calibration._CalibratedClassifier",
})
MAIN = "__main__"


@dataclass(frozen=True)
class Trust:
    """Modules the user trusts beyond the allow-list, and where `__main__`'s names now live."""

    modules: tuple[str, ...] = ()
    main: str | None = None  # "__main__=my_features": read __main__.f as my_features.f

    @classmethod
    def parse(cls, given: Iterable[str] = ()) -> Trust:
        """`("mypackage", "__main__=my_features")` → Trust; each entry is a module name."""
        modules, main = [], None
        for text in given:
            text = text.strip()
            name, sep, target = text.partition("=")
            if sep:
                if name.strip() != MAIN or not _is_module_name(target.strip()):
                    raise ValueError(f"--trust-module {text!r}: use a module name (mypackage) or "
                                     f"__main__=MODULE (where the script's functions now live)")
                main = target.strip()
                modules.append(main)
            elif _is_module_name(text) and text != MAIN:
                modules.append(text)
            else:
                raise ValueError(f"--trust-module {text!r} is not a module name; for functions from the script "
                                 f"that saved the pipeline, use __main__=MODULE")
        return cls(tuple(dict.fromkeys(modules)), main)

    def to_list(self) -> list[str]:
        """As given on the command line (and recorded in the model card)."""
        return [f"{MAIN}={m}" if m == self.main else m for m in self.modules]

    def covers(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)


def _is_module_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


# --- the check -------------------------------------------------------------------------------
def allowed(module: str, name: str, trust: Trust = Trust()) -> bool:
    """Whether the global `module.name` may be used. Imports only library or trusted modules."""
    if module == MAIN:
        return trust.main is not None and "." not in name
    if trust.covers(module):
        return True
    if (module, name) in _EXACT:
        return True
    if "." in name or module.split(".")[0] not in LIBRARIES:
        return False
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return _safe_object(obj)


def _safe_object(obj: Any) -> bool:
    """Library objects that are harmless to call with any arguments the file chooses."""
    top = str(getattr(obj, "__module__", "") or "").split(".")[0]
    if isinstance(obj, np.ufunc):  # np.log1p, scipy.special.expit: arithmetic only
        return True
    if not isinstance(obj, type):
        return False
    if top == "numpy":
        return issubclass(obj, np.generic | np.dtype)
    if top == "scipy":
        import scipy.sparse as sparse

        return issubclass(obj, sparse.spmatrix | sparse.sparray)
    if top == "sklearn":
        return any(f"{c.__module__}.{c.__qualname__}" in _SKLEARN_BASES for c in obj.__mro__)
    return False


def _python3_name(unpickler: pickle._Unpickler, module: str, name: str) -> tuple[str, str]:
    """Protocol 0-2 pickles spell Python 2 names (`__builtin__`); map them as pickle itself does."""
    if getattr(unpickler, "proto", 4) < 3 and getattr(unpickler, "fix_imports", True):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        return _compat_pickle.IMPORT_MAPPING.get(module, module), name
    return module, name


def _resolve(module: str, name: str, trust: Trust) -> Any:
    if module == MAIN and trust.main is not None:
        module = trust.main
    return getattr(importlib.import_module(module), name)


class _Refused:
    """Stands in for a refused global so that the rest of the file can still be checked: it is
    never the real thing, and calling it, building it or setting its state does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Refused:
        return _Refused()

    def __setstate__(self, state: Any) -> None:
        pass


def _from_data(kind: type) -> Any:
    """`bytes` or `bytearray` built only from data the file holds: `bytearray(500_000_000)` in a
    46-byte file would otherwise make the loader allocate half a gigabyte before anything refuses it."""
    def build(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise pickle.UnpicklingError(f"the file asks for {kind.__name__}({args[0]:,}): a saved model holds its "
                                         "bytes, it never asks for them by size")
        return kind(*args)

    return build


_SIZED = {("builtins", "bytearray"): _from_data(bytearray), ("builtins", "bytes"): _from_data(bytes)}


class _TrustedMissing(pickle.UnpicklingError):
    """A trusted module or name that cannot be imported here."""


class _Checker:
    """The one find_class every unpickler here uses; it remembers what it refused."""

    def __init__(self, trust: Trust):
        self.trust = trust
        self.refused: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> Any:
        if allowed(module, name, self.trust):
            if (module, name) in _SIZED:
                return _SIZED[(module, name)]
            try:
                return _resolve(module, name, self.trust)
            except (ImportError, AttributeError) as exc:
                if module == MAIN or self.trust.covers(module):
                    raise _TrustedMissing(_missing_trusted(module, name, self.trust, exc)) from exc
                raise
        if (module, name) not in self.refused:
            self.refused.append((module, name))
        return _Refused


class _Plain(pickle._Unpickler):  # the pure-Python unpickler, as joblib uses
    """A nested pickle stream (joblib's object arrays) read through the same check."""

    def __init__(self, file: Any, checker: _Checker):
        super().__init__(file)
        self._checker = checker

    def find_class(self, module: str, name: str) -> Any:
        return self._checker.find_class(*_python3_name(self, module, name))


class _Restricted(NumpyUnpickler):
    """joblib's unpickler (arrays stored raw after the pickle) with every global checked."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def __init__(self, file: Any, checker: _Checker):
        super().__init__("", file, ensure_native_byte_order=True)
        self._checker = checker

    def find_class(self, module: str, name: str) -> Any:
        return self._checker.find_class(*_python3_name(self, module, name))

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("the file uses persistent ids, which a saved model never needs")

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        top = self.stack[-1]
        if not isinstance(top, NumpyArrayWrapper):
            return
        self.stack.pop()
        # An object array is a nested pickle stream; older joblib reads it with an unchecked pickle.load.
        nested = top.dtype.hasobject
        self.stack.append(_Plain(self.file_handle, self._checker).load() if nested else top.read(self, True))

    dispatch[pickle.BUILD[0]] = load_build


# --- loading ---------------------------------------------------------------------------------
@dataclass
class Loaded:
    """What a model file held, with the facts the importer records."""

    obj: Any
    sha256: str
    made_with_sklearn: str | None  # the version the estimators recorded (None: the running one)
    format: str  # "joblib/pickle" or "skops"
    warnings: list[str] = field(default_factory=list)


def load_file(path: str | Path, trust: Trust = Trust()) -> Loaded:
    """The object in a .pkl/.joblib/.pickle or .skops file, loaded under the allow-list.

    Raises UnsafePickleError (naming every refused global and how to trust it), or ValueError for a
    file that is not a model file at all.
    """
    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        if path.suffix.lower() == ".skops":
            obj, fmt = _load_skops(path, data, trust), "skops"
        else:
            obj, fmt = loads(data, trust, source=path.name), "joblib/pickle"
    versions = sorted({w.message.original_sklearn_version for w in caught
                       if isinstance(w.message, InconsistentVersionWarning)})
    others = [str(w.message) for w in caught if not isinstance(w.message, InconsistentVersionWarning)]
    return Loaded(obj, digest, ", ".join(versions) or None, fmt, others)


def loads(data: bytes, trust: Trust = Trust(), source: str = "the file") -> Any:
    """Unpickle `data` (a joblib file, compressed or not, or a plain pickle) under the allow-list."""
    checker = _Checker(trust)
    stopped = ""
    obj = None
    with _validate_fileobject_and_memmap(io.BytesIO(data), "", None) as (fobj, _):
        if isinstance(fobj, str):
            raise ValueError(f"{source} was written by joblib older than 0.10, which LoanDesk cannot read safely; "
                             "load it where it was made and dump it again with a current joblib")
        try:
            obj = _Restricted(fobj, checker).load()
        except _TrustedMissing as exc:
            raise ValueError(f"{source}: {exc}") from exc
        except pickle.UnpicklingError as exc:
            if not checker.refused:
                raise ValueError(f"{source} could not be read as a pickle: {exc}") from exc
            stopped = str(exc)
        except Warning:  # InconsistentVersionWarning turned into an error by the caller
            raise
        except Exception as exc:
            if not checker.refused:  # a damaged or foreign file: say what failed, as the loader does
                raise ValueError(f"{source} could not be read as a pickle ({type(exc).__name__}: {exc})") from exc
            stopped = "the check stopped there: what follows needs the refused code"
    if checker.refused:
        raise UnsafePickleError(refusal_message(source, checker.refused, stopped), checker.refused)
    return obj


def _load_skops(path: Path, data: bytes, trust: Trust) -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is in requirements.txt
        raise ValueError(f"{path.name} is a .skops file, and skops is not installed (pip install skops)") from exc
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise ValueError(f"{path.name} could not be read as a .skops file ({exc})") from exc
    refused = []
    for qualified in untrusted:
        module, _, name = qualified.rpartition(".")
        if not allowed(module, name, trust):
            refused.append((module, name))
    if refused:
        raise UnsafePickleError(refusal_message(path.name, refused), refused)
    return sio.loads(data, trusted=list(untrusted))


# --- messages --------------------------------------------------------------------------------
def _standard_library(module: str) -> bool:
    """Python's own modules: a model never needs more of them than the allow-list holds."""
    return module.split(".")[0] in sys.stdlib_module_names


def refusal_message(source: str, refused: Sequence[tuple[str, str]], stopped: str = "") -> str:
    """Which globals were refused and what to do about each kind, in words."""
    names = ", ".join(f"{m}.{n}" for m, n in refused)
    lines = [f"{source} was not loaded: it needs {names}, which LoanDesk does not load from a model file "
             f"(allowed: {LIBRARY_NAMES}). Nothing it names was imported or run."]
    mains = [n for m, n in refused if m == MAIN]
    if mains:
        lines.append(
            f"{', '.join(mains)} {'was' if len(mains) == 1 else 'were'} defined in the script or notebook that "
            "saved the pipeline (__main__), so no one else can load it from this file. Put the code in a module "
            "(say my_features.py) that Python can import here, and pass --trust-module __main__=my_features; "
            "or import it from that module in your script, dump again, and pass --trust-module my_features.")
    risky = [f"{m}.{n}" for m, n in refused if m != MAIN and _standard_library(m)]
    if risky:
        lines.append(f"{', '.join(risky)} can read or write files or run code: a model never needs "
                     f"{'it' if len(risky) == 1 else 'them'}. Do not use this file unless you know who made it "
                     "and why; it may be crafted to run code when it is loaded.")
    library = [f"{m}.{n}" for m, n in refused if m.split(".")[0] in LIBRARIES]
    if library:
        lines.append(f"{', '.join(library)} {'is' if len(library) == 1 else 'are'} part of an allowed library but "
                     "not among the types fitted models are made of (functions that load files, or run or "
                     "unpickle code, are left out on purpose). If you know where the file comes from and trust it, "
                     + " ".join(f"--trust-module {m}" for m in dict.fromkeys(m for m, n in refused
                                                                            if m.split(".")[0] in LIBRARIES))
                     + " allows it.")
    ours = [f"{m}.{n}" for m, n in refused if m.split(".")[0] == "model"]
    if ours:
        lines.append(f"{', '.join(ours)} is LoanDesk's own code, but not one of the names a saved pipeline may use: "
                     "a pipeline LoanDesk builds may name only what model/registry/unpickling.py lists (_EXACT); "
                     "add a new pipeline function there.")
    own = sorted({m for m, _ in refused if m != MAIN and not _standard_library(m)
                  and m.split(".")[0] not in (*LIBRARIES, "model")})
    if own:
        lines.append(f"If {', '.join(own)} is your own code and you trust it, pass "
                     + " ".join(f"--trust-module {m}" for m in dict.fromkeys(m.split('.')[0] for m in own))
                     + " (it must be importable here, and wherever the model is served); the model card "
                     "records it.")
    if stopped:
        lines.append(f"({stopped})")
    return "\n".join(lines)


def _missing_trusted(module: str, name: str, trust: Trust, exc: Exception) -> str:
    where = trust.main if module == MAIN else module
    return (f"{module}.{name} is trusted, but {where}.{name} cannot be imported here ({exc}): make "
            f"{where} importable (run from its folder or add it to PYTHONPATH)")


def dump_bytes(obj: Any) -> bytes:
    """`joblib.dump` into bytes, as the registry stores pipelines (for tests and checks)."""
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()
