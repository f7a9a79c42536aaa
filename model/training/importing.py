"""Making a verified LoanDesk version from a pipeline someone fitted and saved elsewhere.

The lesson ends with `joblib.dump(pipeline, "loan_approval_model.pkl")`. This turns such a file, and
labelled data, into a version like any trained one: loaded under the allow-list (nothing in the file
runs), checked to be a fitted two-class classifier with named inputs, measured on the labelled data,
its directions checked on a grid (age may never count against an older applicant), and finally
scored through LoanDesk's own validation path and compared with the pipeline's own `predict_proba`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from model.core.approval import ApprovalClassifier
from model.core.errors import PipelineImportError
from model.core.formatting import percent
from model.core.metrics import evaluate, fingerprint
from model.core.schema import KNOWN_FIELDS, Schema
from model.registry.store import output_folder_problem, save_version
from model.registry.unpickling import Trust, load_file
from model.scoring.predictor import LoanModel
from model.training import directions
from model.training.data import (
    DataError,
    check_label_direction,
    confirmed_meaning,
    label_meaning,
    negative_target,
)
from model.training.protection import Protection, plan_protection
from model.training.proxies import PROXY_THRESHOLD, measure_proxies
from model.training.spec import ColumnSpec, check_against
from model.training.train import (
    DEFAULT_THRESHOLD,
    drift_bins,
    example_defaults,
    kept_aside,
    normalize_features,
    typical_applicant,
)

MATCH_TOLERANCE = 1e-9  # LoanDesk's path must give the pipeline's own probabilities to this
MIN_ROWS, MIN_PER_CLASS = 50, 10  # as for training: fewer cannot measure a model
INFERRED = ({"0", "1"}, "1"), ({"false", "true"}, "true"), ({"0.0", "1.0"}, "1.0")
KIND = "imported"
OVERLAP_NOTE = ("Measured on the labelled data given at import, which may overlap the rows the pipeline was "
                "trained on: if it does, these figures are optimistic.")
BARE_ARRAY = (
    "{file} holds a {kind} fitted on a bare array: it has no feature_names_in_, so it knows its inputs only by "
    "position. That is the lesson's 'changing feature order' mistake waiting to happen: whoever sends the "
    "columns in another order gets a wrong answer and no error. LoanDesk matches every column by name, so it "
    "needs the names: fit the pipeline on a pandas DataFrame (pipeline.fit(X_train, y_train) with X_train = "
    "df[[...columns...]]), dump it again, and import that file.")


@dataclass
class Imported:
    """A pipeline ready to be saved as a version, and what the import found out (for the user)."""

    pipeline: Pipeline
    card: dict[str, Any]
    holdout: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # what was understood and checked, in words
    warnings: list[str] = field(default_factory=list)


def prepare(file: str | Path, frame: pd.DataFrame, target: str, *, positive_label: str | None = None,
            trust: tuple[str, ...] | list[str] = (), allow_version_mismatch: bool = False,
            allow_age_decline: bool = False, justification: str | None = None, source: str = "",
            spec: ColumnSpec | None = None, declared: dict[str, str] | None = None,
            allowed: dict[str, str] | None = None, proxy_threshold: float = PROXY_THRESHOLD,
            confirm_label: bool = False) -> Imported:
    """Check a saved pipeline against labelled data and build its card; nothing is saved yet.

    The fair-lending rules apply as in training: a protected column the pipeline reads (other than age)
    is refused unless `allowed` ({column: justification}); protected columns of the labelled data that it
    does not read are kept beside the hold-out for the fairness report; a column spec gives labels,
    units and descriptions, and its directions are checked against the measured ones. Which class
    means approved is refused when it reads as the opposite ('yes' for a target named 'deny') unless
    `confirm_label`, as in training.
    """
    file = Path(file)
    if allow_age_decline and not (justification or "").strip():
        raise PipelineImportError("--allow-age-decline needs --justification \"why this is lawful\", "
                                  "which is recorded in the model card")
    trusted = Trust.parse(trust)
    loaded = load_file(file, trusted)
    notes, warns = [], list(loaded.warnings)
    mismatch = loaded.made_with_sklearn is not None
    if mismatch and not allow_version_mismatch:
        raise PipelineImportError(
            f"{file.name} was made with scikit-learn {loaded.made_with_sklearn} (its estimators record it), but "
            f"scikit-learn {sklearn.__version__} is installed. A model unpickled under another version may predict "
            f"differently or fail. Import it where scikit-learn {loaded.made_with_sklearn} is installed, refit it "
            "here, or pass --allow-version-mismatch to accept the risk (recorded in the model card).")
    if mismatch:
        warns.append(f"made with scikit-learn {loaded.made_with_sklearn}, imported under {sklearn.__version__} "
                     "(--allow-version-mismatch; recorded in the card)")
    estimator = _check_estimator(file, loaded.obj)
    features = [str(c) for c in estimator.feature_names_in_]
    x_raw, labels = _labelled(frame, target, features)
    inputs = frame.drop(columns=[target]).rename(columns=str)
    spec = (spec or ColumnSpec()).without(target)
    try:
        check_against(spec, inputs)
        protection = plan_protection(inputs, {**spec.declared(), **(declared or {})}, allowed)
    except DataError as exc:
        raise PipelineImportError(str(exc)) from exc
    _check_protected_inputs(file, protection, features)
    classes = [str(c).strip() for c in estimator.classes_]
    positive = _positive_class(file, classes, labels, target, positive_label)
    doubt = check_label_direction(target, positive, classes, confirmed=confirm_label, option="--approved-value",
                                  error=PipelineImportError)
    index = classes.index(positive)
    y = (labels == positive).to_numpy().astype(int)
    notes.append(f"Approved means {target} = {positive} (the model's class {classes[index]}, column "
                 f"{index} of predict_proba): {int(y.sum()):,} of {len(y):,} labelled rows "
                 f"({percent(float(y.mean()))}).")
    ignored = [str(c) for c in frame.columns if c not in features and c != target]
    if ignored:
        notes.append(f"Columns the pipeline does not read, ignored: {', '.join(ignored)}.")
    pipeline = _as_loandesk_pipeline(estimator, index)
    try:
        own = np.asarray(estimator.predict_proba(x_raw), dtype=float)[:, index]
    except Exception as exc:
        gaps = [f for f in features if x_raw[f].isna().any()]
        hint = (f" The labelled data has gaps in {', '.join(gaps)}, which the pipeline cannot fill: drop those "
                "rows, or refit with an imputer in the pipeline." if gaps else "")
        raise PipelineImportError(f"{file.name} could not score the labelled data: "
                                  f"{type(exc).__name__}: {' '.join(str(exc).split())}.{hint}") from exc
    features_frame = normalize_features(x_raw)
    numbers = [n for n in features if pd.api.types.is_numeric_dtype(features_frame[n])]
    ages = [n for n in numbers if directions.is_age_column(n)]
    found = directions.measure(lambda rows: pipeline.predict_proba(rows)[:, 1], features_frame, numbers)
    age_decline = _check_age(found, ages, allow_age_decline, justification)
    _check_stated_directions(spec, found)
    used = {n: b for n, b in protection.bases_used().items() if n in features}
    schema = _schema(pipeline, features_frame, found, ages, spec, used)
    validation = schema.validate(features_frame)
    ok = ~validation.bad_rows
    if not ok.any():
        raise PipelineImportError(f"no labelled row passes LoanDesk's checks: {validation.errors[0]}")
    if not ok.all():
        warns.append(f"{int((~ok).sum()):,} labelled row(s) fail LoanDesk's checks and are left out of the "
                     f"measurements, e.g. {validation.errors[0]}")
    clean = validation.clean[ok]
    card = _card(file, loaded, pipeline, schema, target, positive, index, trusted, mismatch, found, ages,
                 age_decline, justification, source, features_frame, y)
    model = LoanModel(pipeline, {**card, "name": "import", "version": "checking", "pipeline_sha256": loaded.sha256},
                      file.parent)
    ours = model.approval_probability(clean)
    gap = float(np.max(np.abs(ours - own[ok])))
    if not gap <= MATCH_TOLERANCE:
        raise PipelineImportError(
            f"scored through LoanDesk's validation, {file.name} gives probabilities up to {gap:.2g} away from its own "
            "predict_proba on the labelled data: the pipeline depends on input types LoanDesk does not reproduce "
            "(for example integer codes it treats as categories). Convert those columns in the data and the "
            "pipeline to text or to floats, and import again.")
    notes.append(f"Scored through LoanDesk's validation, the {int(ok.sum()):,} labelled rows get the pipeline's own "
                 f"probabilities (largest difference {gap:.1e}).")
    y_ok, p_ok = y[ok], ours
    if min(int(y_ok.sum()), int(len(y_ok) - y_ok.sum())) < 1:
        raise PipelineImportError("the labelled rows that pass the checks hold only one class: "
                                  "the model cannot be measured on them")
    metrics = evaluate(y_ok, p_ok, DEFAULT_THRESHOLD)
    metrics["n_test"] = int(ok.sum())  # no n_train: the rows it was fitted on are not known
    card["metrics"] = metrics
    card["reference"] = typical_applicant(clean[y_ok == 1], schema)
    card["drift_bins"] = drift_bins(clean, schema)
    holdout = clean.reset_index(drop=True).copy()
    holdout["label"] = y_ok
    holdout["probability"] = p_ok
    aside_names = [n for n in protection.excluded if n not in features]
    aside = kept_aside(inputs.loc[ok, aside_names]).reset_index(drop=True)
    for name in aside_names:  # beside the hold-out, never an input: for the fairness report
        holdout[name] = aside[name].to_numpy()
    proxies = measure_proxies(clean.reset_index(drop=True), aside, proxy_threshold, 0) if aside_names else []
    card["protected"] = {"columns": protection.to_card(), "proxy_threshold": proxy_threshold,
                         "proxies": [p.to_dict() for p in proxies]}
    card["label_meaning"] = confirmed_meaning(label_meaning(target, positive, y_ok), doubt)
    card["label_direction_confirmed"] = doubt
    if found:
        rows = next(iter(found.values())).rows
        notes.append(f"Directions, measured on a {directions.GRID_POINTS}-point grid over each field's range for "
                     f"{rows:,} labelled applicants: approval "
                     + ", ".join(directions.phrase(d, schema[n].label.lower()) for n, d in found.items()) + ".")
    for name, d in found.items():
        expected = KNOWN_FIELDS.get(name, {}).get("monotone", d.monotone)
        if d.direction in ("falls", "mixed") and (name in ages or d.direction == "mixed" or expected != d.monotone):
            notes.append(f"  {schema[name].label}: {d.sentence(schema[name].label.lower())}")
    for name in ages:
        if found[name].largest_fall == 0:
            notes.append(f"  {schema[name].label}: never counts against an older applicant (checked).")
    return Imported(pipeline, card, holdout, notes, warns)


def import_pipeline(file: str | Path, frame: pd.DataFrame, target: str, out: str | Path, **options: Any
                    ) -> tuple[str, Imported]:
    """`prepare` then save as a new active version in `out`; returns the version id and what was found."""
    problem = output_folder_problem(out)
    if problem:
        raise PipelineImportError(problem)
    imported = prepare(file, frame, target, **options)
    version = save_version(out, imported.pipeline, imported.card, imported.holdout)
    return version, imported


# --- the checks ------------------------------------------------------------------------------
def _check_estimator(file: Path, obj: Any) -> Any:
    kind = type(obj).__name__
    if not hasattr(obj, "fit") or not hasattr(obj, "get_params"):
        raise PipelineImportError(f"{file.name} holds a {kind}, not a scikit-learn pipeline or classifier")
    if not is_classifier(obj) and not hasattr(obj, "predict_proba"):
        raise PipelineImportError(f"{file.name} holds a {kind}, which is not a classifier: LoanDesk needs the "
                                  "probability of approval (predict_proba)")
    try:
        check_is_fitted(obj)
    except NotFittedError as exc:
        raise PipelineImportError(f"{file.name} holds a {kind} that was never fitted: call .fit(X_train, y_train) "
                                  "before joblib.dump") from exc
    if not hasattr(obj, "predict_proba"):
        raise PipelineImportError(f"{file.name} holds a {kind} with no predict_proba: LoanDesk needs probabilities "
                                  "(for an SVC, fit it with probability=True)")
    classes = getattr(obj, "classes_", None)
    if classes is None or len(classes) != 2:
        shown = "none" if classes is None else ", ".join(map(str, classes))
        raise PipelineImportError(f"{file.name} holds a {kind} with {0 if classes is None else len(classes)} "
                                  f"classes ({shown}): a loan model has two, approved and not")
    if getattr(obj, "feature_names_in_", None) is None:
        raise PipelineImportError(BARE_ARRAY.format(file=file.name, kind=kind))
    return obj


def _labelled(frame: pd.DataFrame, target: str, features: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    if target not in frame.columns:
        raise PipelineImportError(f"the labelled data has no target column {target!r}; its columns are: "
                                  f"{', '.join(map(str, frame.columns))}")
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise PipelineImportError(f"the pipeline reads {', '.join(features)}, and the labelled data lacks "
                                  f"{', '.join(missing)}")
    if target in features:
        raise PipelineImportError(f"the pipeline reads the target {target!r} as an input: it was fitted with its "
                                  "own answer among the features")
    labels = frame[target]
    if labels.isna().any():
        raise PipelineImportError(f"target column {target!r} has {int(labels.isna().sum())} empty value(s)")
    if len(frame) < MIN_ROWS:
        raise PipelineImportError(f"{len(frame)} labelled rows is too few to measure a model (need {MIN_ROWS} "
                                  "or more)")
    return frame[features], labels.astype(str).str.strip()


def _positive_class(file: Path, classes: list[str], labels: pd.Series, target: str, given: str | None) -> str:
    values = sorted(labels.unique())
    foreign = [v for v in values if v not in classes]
    if foreign:
        raise PipelineImportError(f"{target!r} in the labelled data holds {', '.join(map(repr, foreign))}, which "
                                  f"{file.name} does not know: its classes are {', '.join(map(repr, classes))}")
    counts = labels.value_counts()
    if min(int(counts.get(c, 0)) for c in classes) < MIN_PER_CLASS:
        raise PipelineImportError(f"each class needs at least {MIN_PER_CLASS} labelled rows to measure the model; "
                                  + ", ".join(f"{c}: {int(counts.get(c, 0))}" for c in classes))
    if given is not None:
        given = str(given).strip()
        if given not in classes:
            raise PipelineImportError(f"--approved-value {given!r} is not one of the model's classes "
                                      f"({', '.join(map(repr, classes))})")
        return given
    if negative_target(target):
        raise PipelineImportError(f"target column {target!r} reads as a bad outcome, so its class "
                                  f"{classes[1]} may mean rejected: say which class means approved with "
                                  f"--approved-value {classes[0]} or --approved-value {classes[1]}")
    lowered = {c.lower(): c for c in classes}
    for pair, positive in INFERRED:
        if set(lowered) == pair:
            return lowered[positive]
    raise PipelineImportError(f"say which class of {file.name} means approved: --approved-value {classes[0]} or "
                              f"--approved-value {classes[1]} (or --positive-label, its older name)")


def _check_age(found: dict[str, directions.Direction], ages: list[str], allowed: bool,
               justification: str | None) -> list[str]:
    falling = [found[a] for a in ages if found[a].largest_fall > 0]
    if falling and not allowed:
        said = " ".join(d.sentence(d.field) for d in falling)
        raise PipelineImportError(
            f"refused: approval falls as age rises. {said} Under ECOA and Regulation B an empirically derived "
            "system may use age only if it never counts against older applicants. Refit without that effect "
            "(for gradient boosting, monotonic_cst=+1 for age), or, if you have a lawful reason, pass "
            "--allow-age-decline --justification \"...\" (recorded in the model card and shown on the Model page).")
    return [d.field for d in falling]


def _check_protected_inputs(file: Path, protection: Protection, features: list[str]) -> None:
    """A pipeline cannot leave out a column it reads: a prohibited basis among its inputs is refused."""
    read = [protection.column(n) for n in protection.excluded if n in features]
    if read:
        said = "; ".join(c.describe() for c in read)
        first = read[0].name
        raise PipelineImportError(
            f"{file.name} reads a prohibited basis of credit decisions (ECOA / Regulation B): {said}. A pipeline "
            f"cannot leave out a column it was fitted on: refit it without {', '.join(c.name for c in read)}, or, "
            f"if using it is lawful, pass --allow {first} --justification \"...\" (recorded in the model card "
            "and shown in red on the Model page).")


def _check_stated_directions(spec: ColumnSpec, found: dict[str, directions.Direction]) -> None:
    """A direction the spec states is a requirement: the measured one must keep it."""
    broken = []
    for name, sign in spec.monotone().items():
        d = found.get(name)
        if d is None or not sign:
            continue
        if (sign > 0 and d.rows_falling) or (sign < 0 and d.rows_rising):
            rule = "never fall" if sign > 0 else "never rise"
            broken.append(f"{name}: the spec says approval must {rule} as it rises, but {d.sentence(name)}")
    if broken:
        raise PipelineImportError("the pipeline does not keep the spec's directions: " + " ".join(broken)
                                  + " Refit it with those constraints, or change the spec.")


def _as_loandesk_pipeline(estimator: Any, index: int) -> Pipeline:
    """A Pipeline whose predict_proba column 1 is approval and whose labels are 0/1."""
    plain = [str(c) for c in estimator.classes_] == ["0", "1"] and index == 1
    if isinstance(estimator, Pipeline) and plain:
        return estimator
    if plain:
        return Pipeline([("model", estimator)])
    return Pipeline([("model", ApprovalClassifier.wrap(estimator, index))])


def _schema(pipeline: Pipeline, frame: pd.DataFrame, found: dict[str, directions.Direction],
            ages: list[str], spec: ColumnSpec, protected: dict[str, str]) -> Schema:
    """The schema from the labelled data and the spec, with measured directions, age protected, and gaps
    allowed only where the pipeline can fill them."""
    described = {n: d for n, d in spec.described().items() if n in frame.columns}
    schema = Schema.infer(frame, {name: d.monotone for name, d in found.items()}, described=described,
                          protected={**protected, **dict.fromkeys(ages, "age")})
    fields = []
    sample = frame.head(1).reset_index(drop=True)
    for f in schema.fields:
        gap = sample.copy()
        gap[f.name] = np.nan if f.is_number else None
        try:
            p = pipeline.predict_proba(gap)[:, 1]
            fills_gaps = bool(np.all(np.isfinite(p)))
        except Exception:
            fills_gaps = False
        f = replace(f, required=f.required or not fills_gaps)
        if f.name in ages:
            f = replace(f, protected=True, basis="age",
                        help=f.help or "Applicant's age. By law (ECOA) it can never count against an applicant.")
        fields.append(f)
    schema = Schema(tuple(fields))
    return schema.with_defaults(example_defaults(schema))


def _card(file: Path, loaded: Any, pipeline: Pipeline, schema: Schema, target: str, positive: str, index: int,
          trusted: Trust, mismatch: bool, found: dict[str, directions.Direction], ages: list[str],
          age_decline: list[str], justification: str | None, source: str, frame: pd.DataFrame,
          y: np.ndarray) -> dict[str, Any]:
    labelled = pd.concat([frame.reset_index(drop=True), pd.Series(y, name=target)], axis=1)
    return {
        "model_kind": KIND,
        "target": target,
        "positive_label": positive,
        "threshold": DEFAULT_THRESHOLD,
        "schema": schema.to_dict(),
        "selection": {"cv_auc": {}, "chosen": KIND, "refused": []},
        "data": {"source": source, "rows": len(frame), "fingerprint": fingerprint(labelled),
                 "approval_rate": float(np.mean(y))},
        "pipeline_steps": describe(pipeline),
        "imported": {
            "file": file.name,
            "sha256": loaded.sha256,
            "format": loaded.format,
            "made_with_sklearn": loaded.made_with_sklearn or sklearn.__version__,
            "version_mismatch_allowed": mismatch,
            "trusted_modules": trusted.to_list(),
            "positive_class": positive,
            "positive_index": index,
            "holdout_note": OVERLAP_NOTE,
        },
        "directions": {
            "grid_points": directions.GRID_POINTS,
            "fields": {name: d.to_dict() for name, d in found.items()},
            "age_fields": ages,
            "age_decline_allowed": {"fields": age_decline, "justification": justification} if age_decline else None,
        },
    }


def describe(pipeline: Pipeline) -> list[str]:
    """The steps of any pipeline in words: 'scaler: StandardScaler', a ColumnTransformer by its columns."""
    steps = []
    for name, step in pipeline.steps:
        if isinstance(step, ApprovalClassifier):
            inner = step.estimator
            if isinstance(inner, Pipeline):
                steps.extend(describe(inner))
                continue
            step = inner
        if isinstance(step, Pipeline):
            steps.extend(describe(step))
        elif isinstance(step, ColumnTransformer):
            for branch, transformer, columns in step.transformers_:
                if isinstance(transformer, str) and transformer == "drop":
                    continue
                inner_steps = (" → ".join(type(s).__name__ for _, s in transformer.steps)
                               if isinstance(transformer, Pipeline) else
                               transformer if isinstance(transformer, str) else type(transformer).__name__)
                steps.append(f"{name}/{branch} [{', '.join(map(str, columns))}]: {inner_steps}")
        else:
            steps.append(f"{name}: {type(step).__name__}")
    return steps
