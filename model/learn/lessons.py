"""The Learn page's lessons, computed live with the real model: the common deployment mistakes, wrong way
beside right way, the income practice, the exercises, and the train → save → load → input → predict flow.

Each mistake is reproduced for real: the saved pipeline's own fitted parts are taken apart and fed the way
a careless serving script would feed them, so every number the page shows is one the model gave.
Plain Python (no Streamlit), so a notebook or a test can run the same lessons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from model.core.formatting import decision_label, format_value, percent, step_text, with_article
from model.core.metrics import approves
from model.core.pipeline import is_loandesk_shape, model_kind
from model.core.schema import Field
from model.registry.store import ModelIntegrityError, load_holdout
from model.scoring.explain import Curve, flip_decimals, sensitivity_curve

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel

BATCH_SIZE = 10  # "today's applications", scaled on their own in the model-only mistake
SWAP_PREFERENCE = ("income", "loan_amount")  # two columns of the same unit: swapped, nothing looks odd
PRACTICE_FIELD = "income"
KIND_NAMES = {"logistic": "logistic regression", "gbm": "gradient boosting", "imported": "an imported pipeline"}


# --- small pieces ----------------------------------------------------------------------------
def example_customer(model: LoanModel) -> dict[str, Any]:
    """The lesson's example customer (age 35, income $62,000, ...), or the model's typical applicant."""
    return model.schema.defaults()


def _clean(model, data: Any) -> pd.DataFrame:
    validation = model.validate(data)
    validation.raise_if_errors()
    return validation.clean


def _number_steps(pipeline: Pipeline):
    """The fitted numbers branch of the ColumnTransformer: (imputer, scaler, output positions)."""
    pre = pipeline.named_steps["preprocess"]
    branch = pre.named_transformers_["numbers"]
    names = list(pre.get_feature_names_out())
    columns = next(cols for name, _, cols in pre.transformers_ if name == "numbers")
    return branch.named_steps["impute"], branch.named_steps["scale"], [names.index(c) for c in columns], list(columns)


def _classifier_proba(pipeline: Pipeline, z: np.ndarray) -> np.ndarray:
    return pipeline.named_steps["model"].predict_proba(z)[:, 1]


def _with_numbers(model, clean: pd.DataFrame, numbers: np.ndarray) -> np.ndarray:
    """What the classifier receives when the numbers columns are replaced by `numbers` (categories kept right)."""
    pre = model.pipeline.named_steps["preprocess"]
    z = np.array(pre.transform(clean), dtype=float)
    _, _, positions, _ = _number_steps(model.pipeline)
    z[:, positions] = numbers
    return z


def _unscaled(model, clean: pd.DataFrame) -> np.ndarray:
    imputer, _, _, columns = _number_steps(model.pipeline)
    return imputer.transform(clean[columns])


_LOAD: Any = object()  # "load the hold-out from the model's folder"


def _holdout(model, given: Any = _LOAD) -> pd.DataFrame | None:
    """The stored hold-out applicants, validated; None when the version has none."""
    if given is not _LOAD:
        return given
    try:
        frame = load_holdout(model)
    except (OSError, ModelIntegrityError, ValueError):
        return None
    validation = model.validate(frame[model.schema.names])
    return validation.clean[~validation.bad_rows].reset_index(drop=True)


def _signif(value: float, digits: int = 1) -> float:
    """Round to significant figures, as someone copying numbers off a notebook by hand would."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(round(value, digits - 1 - math.floor(math.log10(abs(value)))))


def _code_number(value: float) -> str:
    """A number as a person would type it in Python: 62_000, 720, 6.5."""
    value = float(value)
    if value.is_integer():
        return f"{int(value):_}"
    return f"{value:g}"


def _code_row(values: list[float]) -> str:
    return "[" + ", ".join(_code_number(v) for v in values) + "]"


def _scaled(value: float) -> str:
    return f"{value:+,.2f}".replace("-", "−")


def points(difference: float) -> str:
    """A probability difference in percentage points, signed: "−7.6 points"."""
    shown = f"{100 * abs(difference):.1f}"
    if shown == "0.0":
        shown = f"{100 * abs(difference):.2g}"
    sign = "+" if difference > 0 else "−" if difference < 0 else ""
    return f"{sign}{shown} points"


# --- the mistakes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Mistake:
    """One deployment mistake for the example customer, wrong way beside right way."""

    key: str
    title: str
    wrong_way: str  # what the careless serving code does
    right_way: str
    wrong: float  # approval probability the wrong way
    right: float  # approval probability from the saved pipeline (= model.predict_proba)
    threshold: float
    why: str  # one or two sentences, with the real numbers
    seen: pd.DataFrame  # what the model received each way, field by field, written for people
    code: str | None  # the wrong code, runnable against `pipeline` (all-number schemas only)
    holdout_rows: int = 0
    changed_share: float | None = None  # share of hold-out decisions the mistake changes
    wrong_approval_rate: float | None = None
    right_approval_rate: float | None = None

    @property
    def wrong_label(self) -> str:
        return decision_label(bool(approves(self.wrong, self.threshold)))

    @property
    def right_label(self) -> str:
        return decision_label(bool(approves(self.right, self.threshold)))

    @property
    def difference(self) -> float:
        return self.wrong - self.right

    @property
    def decision_changed(self) -> bool:
        return bool(approves(self.wrong, self.threshold) != approves(self.right, self.threshold))

    @property
    def holdout_text(self) -> str:
        """The mistake's effect on every hold-out applicant, in one sentence."""
        if self.changed_share is None:
            return ""
        return (f"Across the {self.holdout_rows:,} hold-out applicants it changes {percent(self.changed_share)} "
                f"of the decisions: the wrong way approves {percent(self.wrong_approval_rate)}, "
                f"the saved pipeline {percent(self.right_approval_rate)}.")


def _holdout_effect(model, wrong_probs: np.ndarray, right_probs: np.ndarray) -> dict[str, Any]:
    t = model.threshold
    wrong, right = wrong_probs >= t, right_probs >= t
    return dict(holdout_rows=len(right), changed_share=float(np.mean(wrong != right)),
                wrong_approval_rate=float(np.mean(wrong)), right_approval_rate=float(np.mean(right)))


def _scaling_effect(model, holdout: pd.DataFrame | None, wrong_numbers) -> dict[str, Any]:
    """The hold-out effect of giving the classifier `wrong_numbers(unscaled values)` instead of the fitted scaling."""
    if holdout is None:
        return {}
    wrong = _classifier_proba(model.pipeline, _with_numbers(model, holdout, wrong_numbers(_unscaled(model, holdout))))
    return _holdout_effect(model, wrong, model.approval_probability(holdout))


def _all_numbers(model) -> bool:
    return not model.schema.categories


def _scaling_table(model, columns: list[str], wrong_mean, wrong_std, wrong_z, right_mean, right_std, right_z,
                   wrong_name: str) -> pd.DataFrame:
    schema = model.schema
    rows = {}
    for k, name in enumerate(columns):
        f = schema[name]
        rows[f.label] = {
            f"Mean ({wrong_name})": format_value(f, wrong_mean[k]),
            f"Std ({wrong_name})": format_value(f, wrong_std[k]),
            "Scaled value (wrong)": _scaled(wrong_z[k]),
            "Mean (saved pipeline)": format_value(f, right_mean[k]),
            "Std (saved pipeline)": format_value(f, right_std[k]),
            "Scaled value (right)": _scaled(right_z[k]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def unscaled_inputs(model: LoanModel, applicant: Any | None = None, holdout: Any = _LOAD) -> Mistake:
    """Mistake 1: the fitted classifier alone, fed raw numbers, as if preprocessing had been forgotten."""
    applicant = example_customer(model) if applicant is None else applicant
    clean = _clean(model, applicant)
    _, scaler, _, columns = _number_steps(model.pipeline)
    raw = _unscaled(model, clean)
    right = float(model.predict_proba(applicant)[0, 1])
    wrong = float(_classifier_proba(model.pipeline, _with_numbers(model, clean, raw))[0])
    right_z = scaler.transform(raw)[0]
    schema = model.schema
    seen = pd.DataFrame.from_dict({
        schema[c].label: {"Wrong way: the classifier gets": f"{raw[0, k]:,g}",
                          "Right way: the classifier gets": _scaled(right_z[k])}
        for k, c in enumerate(columns)
    }, orient="index")
    k = int(np.argmax(np.abs(raw[0])))
    f = schema[columns[k]]
    kind = model_kind(model.pipeline)
    how = ("Its weights multiply these huge numbers, so the score is pushed to an extreme."
           if kind == "logistic" else
           "Its trees split on scaled values, mostly between −3 and +3, so raw numbers land past the outer "
           "splits and very different applicants end in the same leaves.")
    why = (f"The classifier was fitted on scaled values: to it, {f.label.lower()} {raw[0, k]:,g} means "
           f"{raw[0, k]:,g} standard deviations from the average applicant, where the pipeline would give it "
           f"{_scaled(right_z[k])}. {how}")
    code = None
    if _all_numbers(model):
        code = (f'classifier = pipeline.named_steps["model"]  # the fitted model without its preprocessing\n'
                f"wrong = classifier.predict_proba([{_code_row(list(raw[0]))}])[0, 1]")
    effect = _scaling_effect(model, _holdout(model, holdout), lambda raw: raw)
    return Mistake(
        key="preprocessing", title="Different preprocessing at serving time",
        wrong_way="The serving code calls the fitted classifier directly with the raw values: no imputing, "
                  "no scaling.",
        right_way="The saved pipeline imputes and scales with the values it learned in training, then predicts.",
        wrong=wrong, right=right, threshold=model.threshold, why=why, seen=seen, code=code, **effect,
    )


def swap_fields(model: LoanModel) -> tuple[str, str] | None:
    """The two number columns the feature-order lesson swaps: income and loan amount when there are."""
    numbers = [f.name for f in model.schema.fields if f.is_number]
    if all(name in numbers for name in SWAP_PREFERENCE):
        return SWAP_PREFERENCE
    return (numbers[0], numbers[1]) if len(numbers) >= 2 else None


def _relabel(clean: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The frame a positional reader builds when the sender put `a` and `b` in each other's place."""
    out = clean.copy()
    out[a], out[b] = clean[b].to_numpy(), clean[a].to_numpy()
    return out


def changed_order(model: LoanModel, applicant: Any | None = None, holdout: Any = _LOAD) -> Mistake | None:
    """Mistake 2: the same values in another column order, read by position instead of by name."""
    pair = swap_fields(model)
    if pair is None:
        return None
    a, b = pair
    applicant = example_customer(model) if applicant is None else applicant
    clean = _clean(model, applicant)
    right = float(model.predict_proba(applicant)[0, 1])
    wrong = float(model.approval_probability(_relabel(clean, a, b))[0])
    schema = model.schema
    fa, fb = schema[a], schema[b]
    va, vb = clean[a].iloc[0], clean[b].iloc[0]
    wrong_col, right_col = "Wrong way: the model reads", "Right way: the model reads"
    seen = pd.DataFrame.from_dict({
        fa.label: {wrong_col: format_value(fa, vb), right_col: format_value(fa, va)},
        fb.label: {wrong_col: format_value(fb, va), right_col: format_value(fb, vb)},
    }, orient="index")
    why = (f"A bare array carries no column names, so the receiver labels its columns by position: "
           f"{fa.label.lower()} and {fb.label.lower()} trade places and the model scores someone with "
           f"{with_value(fa, vb)} and {with_value(fb, va)}. Nothing fails and nothing warns: the answer is "
           f"simply wrong.")
    code = None
    if _all_numbers(model):
        order = list(schema.names)
        sent = list(clean.iloc[0].to_numpy(dtype=float))
        i, j = order.index(a), order.index(b)
        sent[i], sent[j] = sent[j], sent[i]
        code = (f"row = np.array([{_code_row(sent)}])  # the sender put {b} where {a} was\n"
                f"columns = {order!r}  # the training order\n"
                f"wrong = pipeline.predict_proba(pd.DataFrame(row, columns=columns))[0, 1]")
    effect = {}
    holdout = _holdout(model, holdout)
    if holdout is not None:
        wrong_all = model.approval_probability(_relabel(holdout, a, b))
        effect = _holdout_effect(model, wrong_all, model.approval_probability(holdout))
    return Mistake(
        key="feature_order", title="Changed feature order",
        wrong_way=f"The applicant arrives as a bare array with {fa.label.lower()} and {fb.label.lower()} in "
                  "each other's place; the columns are named by position.",
        right_way="Columns are matched by name, in any order, and the pipeline picks each one by its name.",
        wrong=wrong, right=right, threshold=model.threshold, why=why, seen=seen, code=code, **effect,
    )


def with_value(f: Field, value: Any) -> str:
    """'an annual income of $18,000'."""
    return f"{with_article(f.label.lower())} of {format_value(f, value)}"


@dataclass(frozen=True)
class OrderGuard:
    """How LoanDesk rules the feature-order mistake out: bare arrays refused, named columns in any order."""

    refusal: str  # the TypeError's message for a bare array
    shuffled_columns: list[str]
    shuffled_probability: float
    probability: float


def order_guard(model: LoanModel, applicant: Any | None = None) -> OrderGuard:
    applicant = example_customer(model) if applicant is None else applicant
    clean = _clean(model, applicant)
    try:
        model.predict(clean.to_numpy())
        refusal = ""
    except TypeError as exc:
        refusal = str(exc)
    shuffled = list(reversed(model.schema.names))
    return OrderGuard(refusal, shuffled, float(model.predict_proba(clean[shuffled])[0, 1]),
                      float(model.predict_proba(applicant)[0, 1]))


def _batch_scaled(raw: np.ndarray, size: int) -> np.ndarray:
    """Each consecutive batch of `size` rows scaled by a StandardScaler fitted on that batch alone."""
    out = np.empty_like(raw, dtype=float)
    for start in range(0, len(raw), size):
        part = raw[start:start + size]
        out[start:start + size] = StandardScaler().fit_transform(part)
    return out


def todays_batch(model: LoanModel, applicant: Any | None = None, holdout: Any = _LOAD) -> pd.DataFrame:
    """The example customer first, then the next hold-out applicants: a day's applications."""
    applicant = example_customer(model) if applicant is None else applicant
    clean = _clean(model, applicant)
    holdout = _holdout(model, holdout)
    if holdout is None:
        return clean.reset_index(drop=True)
    return pd.concat([clean, holdout.head(BATCH_SIZE - 1)], ignore_index=True)


def model_only(model: LoanModel, applicant: Any | None = None, holdout: Any = _LOAD) -> Mistake:
    """Mistake 3: only the classifier was saved, so serving fits a new scaler on the data it has."""
    applicant = example_customer(model) if applicant is None else applicant
    holdout = _holdout(model, holdout)
    batch = todays_batch(model, applicant, holdout)
    _, scaler, _, columns = _number_steps(model.pipeline)
    raw = _unscaled(model, batch)
    refit = StandardScaler().fit(raw)
    wrong_z = refit.transform(raw)
    wrong = float(_classifier_proba(model.pipeline, _with_numbers(model, batch.head(1), wrong_z[:1]))[0])
    right = float(model.predict_proba(applicant)[0, 1])
    alone = float(_classifier_proba(model.pipeline,
                                    _with_numbers(model, batch.head(1), StandardScaler().fit_transform(raw[:1])))[0])
    seen = _scaling_table(model, columns, refit.mean_, refit.scale_, wrong_z[0],
                          scaler.mean_, scaler.scale_, scaler.transform(raw[:1])[0], "today's batch")
    n_train = int(model.card.metrics.get("n_train") or scaler.n_samples_seen_)
    f = model.schema[columns[0]] if PRACTICE_FIELD not in columns else model.schema[PRACTICE_FIELD]
    k = columns.index(f.name)
    why = (f"The scaler that belongs to this model learned its averages from {n_train:,} training applicants "
           f"(mean {f.label.lower()} {format_value(f, scaler.mean_[k])}); a scaler refitted on today's "
           f"{len(batch)} applications uses {format_value(f, refit.mean_[k])}, so the same customer is scaled "
           f"differently and the score depends on who else applied today. Scored one at a time it is worse: "
           f"every applicant is scaled to all zeros and gets the same {percent(alone)}.")
    code = None
    if _all_numbers(model):
        code = ("classifier = pipeline.named_steps[\"model\"]  # the only thing that was saved\n"
                "scaler = StandardScaler().fit(today)  # a new scaler, fitted on today's applications\n"
                "wrong = classifier.predict_proba(scaler.transform(today))[0, 1]  # the example customer is row 0")
    effect = _scaling_effect(model, holdout, lambda raw: _batch_scaled(raw, BATCH_SIZE))
    return Mistake(
        key="model_only", title="Saving only the model, not the pipeline",
        wrong_way=f"Only the classifier was saved, so the serving code fits a new StandardScaler on today's "
                  f"{len(batch)} applications and scales them with it.",
        right_way="The whole pipeline was saved: the scaler fitted in training travels with the model.",
        wrong=wrong, right=right, threshold=model.threshold, why=why, seen=seen, code=code, **effect,
    )


def typed_constants(model: LoanModel) -> tuple[np.ndarray, np.ndarray]:
    """The training mean and standard deviation as a person copies them by hand: one significant figure."""
    _, scaler, _, _ = _number_steps(model.pipeline)
    mean = np.array([_signif(v) for v in scaler.mean_])
    std = np.array([_signif(v) for v in scaler.scale_])
    return mean, std


def manual_transform(model: LoanModel, applicant: Any | None = None, holdout: Any = _LOAD) -> Mistake:
    """Mistake 4: scaling re-typed by hand in the serving code, with constants that drift from training."""
    applicant = example_customer(model) if applicant is None else applicant
    clean = _clean(model, applicant)
    _, scaler, _, columns = _number_steps(model.pipeline)
    mean, std = typed_constants(model)
    raw = _unscaled(model, clean)
    wrong_z = (raw - mean) / std
    wrong = float(_classifier_proba(model.pipeline, _with_numbers(model, clean, wrong_z))[0])
    right = float(model.predict_proba(applicant)[0, 1])
    seen = _scaling_table(model, columns, mean, std, wrong_z[0], scaler.mean_, scaler.scale_,
                          scaler.transform(raw)[0], "typed by hand")
    gaps = np.abs(wrong_z[0] - scaler.transform(raw)[0])
    k = int(np.argmax(gaps))
    f = model.schema[columns[k]]
    why = (f"Each typed constant is close to the fitted one, yet together they move the customer: "
           f"{f.label.lower()} alone shifts by {gaps[k]:.2f} standard deviations "
           f"(mean {format_value(f, mean[k])} typed, {format_value(f, scaler.mean_[k])} fitted). "
           f"Every hand copy of a transform is a second version that can drift from the one the model "
           f"learned with.")
    code = None
    if _all_numbers(model):
        code = (f"mean = np.array({_code_row(list(mean))})  # copied from the notebook, rounded\n"
                f"std = np.array({_code_row(list(std))})\n"
                f"x = np.array([{_code_row(list(raw[0]))}])\n"
                f"wrong = pipeline.named_steps[\"model\"].predict_proba((x - mean) / std)[0, 1]")
    effect = _scaling_effect(model, _holdout(model, holdout), lambda raw: (raw - mean) / std)
    return Mistake(
        key="manual_transform", title="Manual data transformations",
        wrong_way="The serving code re-implements scaling by hand, (x − mean) / std, with the constants typed "
                  "in from the training notebook and rounded.",
        right_way="The transform is part of the saved pipeline, so serving uses exactly the fitted constants.",
        wrong=wrong, right=right, threshold=model.threshold, why=why, seen=seen, code=code, **effect,
    )


def mistakes(model: LoanModel, applicant: Any | None = None) -> list[Mistake]:
    """All four mistakes for one applicant (the example customer by default).

    Three of them take LoanDesk's own pipeline apart (its imputer and scaler); an imported pipeline
    has its own shape, so it gets the one that applies to any pipeline: the changed feature order.
    """
    holdout = _holdout(model)
    if not is_loandesk_shape(model.pipeline):
        return [m for m in (changed_order(model, applicant, holdout),) if m is not None]
    out = [unscaled_inputs(model, applicant, holdout), changed_order(model, applicant, holdout),
           model_only(model, applicant, holdout), manual_transform(model, applicant, holdout)]
    return [m for m in out if m is not None]


def kind_note(model: LoanModel) -> str:
    """A sentence on why the mistakes matter for the active model's kind."""
    kind = model_kind(model.pipeline)
    if kind == "imported":
        return ("The model in use is a pipeline imported from a file, so only the mistake that applies to any "
                "pipeline is shown here; the other three take LoanDesk's own pipeline apart (its imputer and "
                "scaler) and appear with a model trained by `python train.py`.")
    if kind == "gbm":
        return ("The active model is gradient boosting. Trees do not multiply values, but their split points "
                "were learned on scaled values, so a scaling mistake still moves applicants across them.")
    return ("The active model is logistic regression: it multiplies each scaled value by a weight, so a "
            "value on the wrong scale moves the score in proportion.")


# --- the mini-practice -----------------------------------------------------------------------
@dataclass(frozen=True)
class Practice:
    """The example customer at one value of the practice field: decision, curve and where it flips."""

    field: str
    value: float
    probability: float
    threshold: float
    curve: Curve
    flip: float | None
    slope_at_flip: float | None  # probability change per `step` around the flip point
    slope_here: float  # probability change per `step` at `value`
    step: float

    @property
    def approved(self) -> bool:
        return bool(approves(self.probability, self.threshold))

    @property
    def label(self) -> str:
        return decision_label(self.approved)


def practice_field(model: LoanModel) -> str | None:
    """The field the practice slider moves: income, else the first number with a direction."""
    numbers = [f for f in model.schema.fields if f.is_number and f.train_max > f.train_min]
    if any(f.name == PRACTICE_FIELD for f in numbers):
        return PRACTICE_FIELD
    directed = [f.name for f in numbers if f.monotone and not f.protected]
    usual = [f.name for f in numbers if not f.protected]  # age is no lever to practise on
    choices = directed or usual or [f.name for f in numbers]
    return choices[0] if choices else None


def sentence_step(f: Field) -> float:
    """The change the sensitivity sentence talks about: $1,000 of income, 10 points of credit score."""
    span = float(f.train_max) - float(f.train_min)
    return float(10 ** math.floor(math.log10(span / 50))) if span > 0 else 1.0


def _slope(model, clean: pd.DataFrame, name: str, at: float, step: float) -> float:
    """Probability change per `step` of one field around `at` (central difference, one predict call)."""
    rows = pd.concat([clean] * 2, ignore_index=True)
    rows[name] = [at - step / 2, at + step / 2]
    probs = model.approval_probability(rows)
    return float(probs[1] - probs[0])


def practice(model: LoanModel, value: float, field: str | None = None, applicant: Any | None = None) -> Practice:
    """The example customer with `field` set to `value`: the decision, the curve and the flip point."""
    field = field or practice_field(model)
    applicant = dict(example_customer(model) if applicant is None else applicant)
    applicant[field] = value
    clean = _clean(model, applicant)
    curve = sensitivity_curve(model, clean, field)
    f = model.schema[field]
    step = sentence_step(f)
    flip = float(curve.flips[0]) if len(curve.flips) == 1 else None
    return Practice(
        field=field, value=float(value), probability=float(curve.current_probability), threshold=model.threshold,
        curve=curve, flip=flip, slope_at_flip=_slope(model, clean, field, flip, step) if flip is not None else None,
        slope_here=_slope(model, clean, field, float(value), step), step=step,
    )


def _per_step(f: Field, slope: float, step: float) -> str:
    more = "adds" if slope >= 0 else "takes away"
    return f"each extra {step_text(f, step)} of {f.label.lower()} {more} {abs(100 * slope):.1f} points"


def _points_only(slope: float) -> str:
    return f"{'' if slope >= 0 else '−'}{abs(100 * slope):.1f} points"


def practice_sentence(model: LoanModel, p: Practice) -> str:
    """Where the decision flips and how sensitive the model is there, in words."""
    f = model.schema[p.field]
    label = f.label.lower()
    if p.flip is None:
        probs = p.curve.probabilities
        if np.all(probs >= p.threshold):
            where = f"This customer is approved at any {label} seen in training."
        elif np.all(probs < p.threshold):
            where = f"No {label} seen in training gets this customer approved."
        else:
            where = f"The decision changes more than once as {label} varies."
        return f"{where} At {format_value(f, p.value)}, {_per_step(f, p.slope_here, p.step)} of approval probability."
    # Which side is approved is read from the curve, not assumed from a direction the field may not have.
    rises = bool(approves(p.curve.probabilities[-1], p.threshold))
    above, below = ("approved", "rejected") if rises else ("rejected", "approved")
    shown = (format_value(f, round(p.flip / p.step) * p.step) if f.unit == "$"  # "about $24,000"
             else format_value(f, p.flip, flip_decimals(f)))  # a ratio's 0.545, never "0.5"
    return (f"The decision flips at about {shown}: below it this customer is {below}, above it {above}. "
            f"Around {shown}, {_per_step(f, p.slope_at_flip, p.step)} of approval probability; "
            f"at {format_value(f, p.value)}, {_points_only(p.slope_here)}.")


# --- exercises and quiz ----------------------------------------------------------------------
@dataclass(frozen=True)
class Exercise:
    key: str
    question: str
    answer: str


EXERCISES = (
    Exercise(
        "why_pipeline",
        "Why save the whole pipeline rather than only the trained model?",
        "Because the model never saw raw applications: it learned from values that were imputed and scaled "
        "with constants computed on the training data. Those constants are part of what was learned. Save "
        "only the classifier and the serving side has to rebuild them, by refitting on whatever data it has "
        "(mistake 3) or by typing them in again (mistake 4), and every rebuild is a chance to differ. A saved "
        "pipeline carries imputer, scaler and classifier as one object, with one checksum, so what answers "
        "in production is exactly what was evaluated.",
    ),
    Exercise(
        "feature_order",
        "What happens if the order of the features changes between training and serving?",
        "If the inputs are matched by position, the model quietly reads one field as another: here income "
        "and loan amount trade places and a comfortable applicant looks like one borrowing three times their "
        "income (mistake 2). No error is raised, because the numbers still have the right shape. The cure "
        "is to match columns by name: LoanDesk's pipeline selects each column by its name, and LoanDesk "
        "refuses bare arrays, so any order of named columns gives the same answer.",
    ),
)


@dataclass(frozen=True)
class Quiz:
    question: str
    options: tuple[str, ...]
    correct: int
    right: str  # feedback for the correct choice
    wrong: dict[int, str]  # feedback for each wrong choice


QUIZ = Quiz(
    question="Can a deployed model keep making decisions without being retrained?",
    options=(
        "No: it has to be retrained before every prediction.",
        "Yes, for as long as new applicants look like the ones it learned from; watch for drift and "
        "retrain when they stop.",
        "Yes, forever: a saved model never needs attention again.",
    ),
    correct=1,
    right="Right. Prediction only reads the saved pipeline; nothing is learned at serving time, so a model "
          "can answer for months. What it cannot do is notice that the world has changed: if incomes, loan "
          "sizes or the link between them and repayment move away from the training data, its answers grow "
          "worse without any error. That is why LoanDesk logs every decision and compares new inputs with "
          "the training data, and why retraining saves a new version you can roll back from.",
    wrong={
        0: "Not quite. Prediction uses the fitted pipeline as it is; refitting on every request would make "
           "the answer depend on whoever applied last (see mistake 3) and would need labels you do not have "
           "yet. Retrain when monitoring shows the applicants have changed, not on every call.",
        2: "Not quite. The model keeps working mechanically, but it only knows the world of its training data. "
           "When applicants or repayment behaviour drift, its answers grow worse silently. Watch the decision "
           "log for drift and retrain when it shows.",
    },
)


# --- the flow, train → save → load → accept input → return predictions -----------------------
@dataclass(frozen=True)
class FlowStep:
    step: str
    where: str  # where in LoanDesk a person sees this step
    code: str  # runs as shown, in order, in one namespace


FLOW = (
    FlowStep(
        "Train",
        "`python train.py` on the command line; the **Model** page shows what was trained and how well it "
        "scores on the hold-out.",
        "from model.training.train import train_builtin\n\n"
        "trained = train_builtin()  # preprocessing and classifier fitted together, as one pipeline\n"
        "print(trained.card[\"model_kind\"], round(trained.card[\"metrics\"][\"auc\"], 3))",
    ),
    FlowStep(
        "Save",
        "Every training run saves a new version; the **Model** page lists the versions and activates one "
        "(which is also how you roll back).",
        "from model.registry.store import default_model_dir, save_version\n\n"
        "model_dir = default_model_dir()  # artifacts/loan_approval_model unless LOANDESK_MODEL_DIR says otherwise\n"
        "version = save_version(model_dir, trained.pipeline, trained.card, trained.holdout)\n"
        "print(version)",
    ),
    FlowStep(
        "Load",
        "Every page loads the active version once, checksums verified; the sidebar says which version answers.",
        "from model import load_model\nfrom model.registry.store import default_model_dir\n\n"
        "model = load_model(default_model_dir())  # refuses altered files before unpickling anything\n"
        "print(model.version, model.threshold)",
    ),
    FlowStep(
        "Accept input",
        "The **Decide** page's form and the **Batch** page's upload: columns are matched by name, and every "
        "bad value is named with its row and field.",
        "applicant = {\"income\": 62_000, \"age\": 35, \"loan_amount\": 18_000,\n"
        "             \"credit_score\": 720, \"employment_years\": 6}  # any order: matched by name\n"
        "checked = model.validate(applicant)\n"
        "print(checked.errors or \"no problems\")",
    ),
    FlowStep(
        "Return predictions",
        "The **Decide** page shows the decision, its reasons and what would change it; **Batch** scores a "
        "file; **Monitoring** watches the decision log.",
        "decision = model.decide(applicant)\n"
        "print(decision.label, f\"{decision.probability:.1%}\")\n"
        "print(model.predict_proba([applicant])[:, 1])  # the same probability, scikit-learn style",
    ),
)


# --- deploy the pipeline you saved -----------------------------------------------------------
@dataclass(frozen=True)
class DeployStep:
    step: str
    where: str
    code: str  # runs as shown, from the project folder, in order
    language: str  # "python" (one session) or "bash" (one command a line)


DEPLOY = (
    DeployStep(
        "Save it the lesson's way",
        "In your notebook or script: fit the pipeline on a DataFrame, so that it knows its columns by name, and "
        "dump it. Here the built-in applicants stand in for your labelled data.",
        "import joblib\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import Pipeline\nfrom sklearn.preprocessing import StandardScaler\n\n"
        "from model.training.data import generate_applicants\n\n"
        "generate_applicants(2000, seed=7).to_csv(\"labelled.csv\", index=False)  # your labelled applicants\n"
        "df = pd.read_csv(\"labelled.csv\")\n"
        "X = df[[\"age\", \"income\", \"credit_score\", \"loan_amount\", \"employment_years\"]]  # named columns\n"
        "pipeline = Pipeline([(\"scaler\", StandardScaler()), (\"classifier\", LogisticRegression())])\n"
        "pipeline.fit(X, df[\"approved\"])\n"
        "joblib.dump(pipeline, \"loan_approval_model.pkl\")",
        "python",
    ),
    DeployStep(
        "Import it as a verified version",
        "On the command line. The file is loaded under an allow-list, so nothing in it can run; LoanDesk checks "
        "it is a fitted two-class classifier with named inputs, measures it on the labelled data, checks that "
        "age never counts against an older applicant, and saves it as a version like any trained one.",
        "python train.py --import loan_approval_model.pkl --data labelled.csv --target approved "
        "--out artifacts/my_pipeline",
        "bash",
    ),
    DeployStep(
        "Serve it everywhere",
        "The same folder works for a batch, the REST API and the app (Decide, Batch, Model, Monitoring).",
        "python score.py labelled.csv --model artifacts/my_pipeline -o decisions.csv --no-log\n"
        "python serve.py --model artifacts/my_pipeline\n"
        "LOANDESK_MODEL_DIR=artifacts/my_pipeline streamlit run streamlit_app.py",
        "bash",
    ),
    DeployStep(
        "Or from Python",
        "The imported version loads, verified, like any other, and answers with the pipeline's own probabilities.",
        "from model import load_model\n\n"
        "mine = load_model(\"artifacts/my_pipeline\")\n"
        "customer = {\"age\": 35, \"income\": 62_000, \"credit_score\": 720, \"loan_amount\": 18_000, "
        "\"employment_years\": 6}\n"
        "print(mine.decide(customer).label, mine.predict_proba(customer)[0, 1])\n"
        "print(pipeline.predict_proba(pd.DataFrame([customer]))[0, 1])  # the same number",
        "python",
    ),
)
