"""Learn: the mini-practice, the common deployment mistakes shown live, exercises, a quiz, and the flow."""

import streamlit as st

from model.core.formatting import format_value, percent
from model.core.pipeline import model_kind
from model.learn import lessons
from model.records.access import Action
from ui import charts, learn_charts
from ui.identity import refuse_unless
from ui.resources import current_model
from ui.text import md, md_table

refuse_unless(Action.LEARN)
model = current_model()
schema = model.schema
example = lessons.example_customer(model)
state = st.session_state


@st.cache_data(show_spinner="Working through the mistakes with the real model…", max_entries=8)
def _mistakes(_model, sha256: str, folder: str) -> list[lessons.Mistake]:
    return lessons.mistakes(_model)


def verdict(label: str, probability: float, approved: bool, css: str) -> None:
    color = charts.APPROVE if approved else charts.REJECT
    st.markdown(f"<div class='{css}' style='font-size:1.9rem;font-weight:700;color:{color};line-height:1.15'>"
                f"{label}</div>Approval probability <b>{percent(probability)}</b>", unsafe_allow_html=True)


st.title("Learn: from a trained model to a trustworthy decision")
described = ", ".join(f"{f.label.lower()} {format_value(f, example[f.name])}" for f in schema.fields)
st.markdown(
    f"Everything on this page is computed live by the model in use ({lessons.KIND_NAMES[model_kind(model.pipeline)]}, "
    f"version `{model.version}`) for the lesson's **example customer**: {md(described)}."
)

# --- mini-practice -----------------------------------------------------------------------------
st.header("Mini-practice: move one number, watch the decision")
field_name = lessons.practice_field(model)


@st.fragment
def practice_section() -> None:
    f = schema[field_name]
    step = lessons.sentence_step(f)
    lo, hi = float(f.train_min), float(f.train_max)
    start = min(max(float(example[field_name]), lo), hi)
    integer = f.integer and float(step).is_integer()
    cast = int if integer else float
    fmt = "$%,d" if f.unit == "$" and integer else ("%,d" if integer else "%.1f")
    value = st.slider(f"{md(f.title)} of the example customer", cast(lo), cast(hi), cast(start), cast(step),
                      format=fmt, key="learn.practice",
                      help="Every other field stays as the example customer's. Drag it across the flip point.")
    p = lessons.practice(model, value, field_name)
    left, right = st.columns([1, 2], gap="large")
    with left:
        verdict(p.label, p.probability, p.approved, "learn-practice-decision")
        st.caption(f"Threshold {percent(p.threshold)}")
    with right:
        st.markdown(md(lessons.practice_sentence(model, p)))
    st.plotly_chart(charts.sensitivity_figure(p.curve, f), key="learn.practice.curve")


if field_name is None:
    st.info("The model in use has no number field to vary.")
else:
    practice_section()

# --- the mistakes ------------------------------------------------------------------------------
found = _mistakes(model, model.sha256, str(model.path))
st.header("Four common deployment mistakes, shown live" if len(found) == 4
          else "A common deployment mistake, shown live" if len(found) == 1
          else "Common deployment mistakes, shown live")
st.markdown(
    "Each one below is done for real: the saved pipeline's own fitted parts, fed the way a careless serving "
    "script would feed them, beside the saved pipeline answering the same customer. "
    + lessons.kind_note(model)
)
for number, mistake in enumerate(found, start=1):
    st.subheader(f"{number}. {mistake.title}")
    wrong_col, right_col = st.columns(2, gap="large")
    with wrong_col, st.container(border=True):
        st.markdown(f"**Wrong way.** {md(mistake.wrong_way)}")
        verdict(mistake.wrong_label, mistake.wrong, mistake.wrong >= mistake.threshold, "learn-wrong")
    with right_col, st.container(border=True):
        st.markdown(f"**Right way.** {md(mistake.right_way)}")
        verdict(mistake.right_label, mistake.right, mistake.right >= mistake.threshold, "learn-right")
    st.plotly_chart(learn_charts.comparison_figure(mistake), config={"displayModeBar": False},
                    key=f"learn.mistake.{mistake.key}")
    outcome = ("**the decision changes**" if mistake.decision_changed
               else "the same decision, but a different probability")
    st.markdown(f"**Difference: {lessons.points(mistake.difference)}**, {outcome}. {md(mistake.why)}")
    if mistake.holdout_text:
        st.caption(md(mistake.holdout_text))
    with st.expander("What the model received each way" + (", and the wrong code" if mistake.code else "")):
        st.table(md_table(mistake.seen))
        if mistake.code:
            st.code(mistake.code, language="python")
    if mistake.key == "feature_order":
        guard = lessons.order_guard(model)
        st.success(
            "**Why it cannot happen in LoanDesk.** The pipeline picks every column by its name, and LoanDesk "
            "refuses to guess names for a bare array. `model.predict(np.array(...))` stops with: "
            f"*{md(guard.refusal)}*. Named columns in any order give the same answer: in the order "
            f"{md(', '.join(schema[n].label.lower() for n in guard.shuffled_columns))}, the example customer gets "
            f"{percent(guard.shuffled_probability)}, as in schema order ({percent(guard.probability)}).",
            icon=":material/verified_user:",
        )

# --- exercises and quiz ------------------------------------------------------------------------
st.header("Exercises")
st.markdown("Write your own answer first; then compare it with ours.")
for exercise in lessons.EXERCISES:
    st.markdown(f"**{exercise.question}**")
    written = st.text_area("Your answer", key=f"learn.answer.{exercise.key}", height=110,
                           placeholder="A few sentences in your own words…")
    shown = f"learn.revealed.{exercise.key}"
    if st.button("Show our answer", key=f"learn.reveal.{exercise.key}"):
        if written.strip():
            state[shown] = True
        else:
            st.warning("Write your own answer first: ours means more once you have tried.", icon=":material/edit:")
    if state.get(shown):
        st.info(f"**Our answer.** {exercise.answer}", icon=":material/lightbulb:")

st.subheader("Quick quiz")
quiz = lessons.QUIZ
choice = st.radio(quiz.question, range(len(quiz.options)), format_func=lambda i: quiz.options[i],
                  index=None, key="learn.quiz")
if choice is not None:
    if choice == quiz.correct:
        st.success(quiz.right, icon=":material/check_circle:")
    else:
        st.error(quiz.wrong[choice], icon=":material/info:")

# --- the flow ----------------------------------------------------------------------------------
st.header("The flow: train → save → load → accept input → return predictions")
st.markdown("Each step, where you meet it in LoanDesk, and the few lines of Python that do it with LoanDesk's "
            "core. Run them in order in one Python session, from the project folder.")
for number, step in enumerate(lessons.FLOW, start=1):
    st.markdown(f"**{number}. {step.step}.** {step.where}")
    st.code(step.code, language="python")

# --- deploy the pipeline you saved ---------------------------------------------------------------
st.header("Deploy the pipeline you saved")
st.markdown("The lesson ends with `joblib.dump(pipeline, \"loan_approval_model.pkl\")`. These steps turn that file "
            "into a verified LoanDesk version and serve it. Run them in order from the project folder.")
for number, step in enumerate(lessons.DEPLOY, start=1):
    st.markdown(f"**{number}. {step.step}.** {step.where}")
    st.code(step.code, language=step.language)
