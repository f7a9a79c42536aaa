"""The Learn page, driven through AppTest: practice slider, live mistakes, exercises, quiz and flow."""

from __future__ import annotations

import pytest

from model.core.formatting import percent
from model.learn import lessons
from model.registry.store import load_model
from model.scoring.explain import sensitivity_curve

from .conftest import EXAMPLE

PAGE = "app_pages/learn.py"


@pytest.fixture
def learn(app):
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception
    return app


def practice_decision(at) -> str:
    shown = [m.value for m in at.markdown if "learn-practice-decision" in m.value]
    assert len(shown) == 1
    return "Approved" if ">Approved<" in shown[0] else "Rejected" if ">Rejected<" in shown[0] else shown[0]


def page_text(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "success", "error", "info", "warning")
             for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def test_page_renders_every_section(learn, app_env):
    model = load_model(app_env)
    assert learn.title[0].value.startswith("Learn")
    headers = [h.value for h in learn.header]
    assert any("Mini-practice" in h for h in headers)
    assert any("mistakes" in h for h in headers)
    assert "Exercises" in headers
    assert any(h.startswith("The flow") for h in headers)
    # One sensitivity chart plus one comparison per mistake.
    assert len(learn.get("plotly_chart")) == 1 + len(lessons.mistakes(model))
    # Every flow snippet is shown exactly as the tested constant.
    shown_code = [c.value for c in learn.code]
    for step in lessons.FLOW:
        assert step.code in shown_code


def test_each_mistake_shows_both_live_probabilities(learn, app_env):
    model = load_model(app_env)
    text = page_text(learn)
    for mistake in lessons.mistakes(model):
        assert mistake.title in [s.value.split(". ", 1)[-1] for s in learn.subheader]
        assert f"Approval probability <b>{percent(mistake.wrong)}</b>" in text, mistake.key
        assert f"Approval probability <b>{percent(mistake.right)}</b>" in text, mistake.key
        assert lessons.points(mistake.difference) in text, mistake.key
    order = lessons.changed_order(model)
    assert ">Rejected<" in text and order.wrong_label == "Rejected"
    assert "matched by name" in text  # LoanDesk's own refusal of bare arrays, quoted live


def test_practice_slider_across_the_flip_point_changes_the_decision(learn, app_env):
    model = load_model(app_env)
    flip = sensitivity_curve(model, EXAMPLE, "income").flips[0]
    step = 1000
    below = int(flip // step) * step - step
    above = int(flip // step) * step + 2 * step
    assert model.predict({**EXAMPLE, "income": below})[0] == 0
    assert model.predict({**EXAMPLE, "income": above})[0] == 1

    assert practice_decision(learn) == ("Approved" if model.predict(EXAMPLE)[0] else "Rejected")
    learn.slider(key="learn.practice").set_value(below).run()
    assert not learn.exception
    assert practice_decision(learn) == "Rejected"
    expected = model.predict_proba({**EXAMPLE, "income": below})[0, 1]
    assert f"Approval probability <b>{percent(expected)}</b>" in page_text(learn)
    learn.slider(key="learn.practice").set_value(above).run()
    assert practice_decision(learn) == "Approved"
    assert "The decision flips at about" in page_text(learn)


def test_quiz_feedback_explains_each_choice(learn):
    quiz = lessons.QUIZ
    assert quiz.right not in [s.value for s in learn.success]
    assert not set(quiz.wrong.values()) & {e.value for e in learn.error}
    learn.radio(key="learn.quiz").set_value(quiz.correct).run()
    assert [s.value for s in learn.success if s.value == quiz.right]
    wrong = next(iter(quiz.wrong))
    learn.radio(key="learn.quiz").set_value(wrong).run()
    assert [e.value for e in learn.error] == [quiz.wrong[wrong]]
    assert not [s.value for s in learn.success if s.value == quiz.right]


def test_answer_is_revealed_only_after_writing_one(learn):
    exercise = lessons.EXERCISES[0]
    answer = f"**Our answer.** {exercise.answer}"
    learn.button(key=f"learn.reveal.{exercise.key}").click().run()
    assert answer not in [i.value for i in learn.info]
    assert any("Write your own answer first" in w.value for w in learn.warning)

    learn.text_area(key=f"learn.answer.{exercise.key}").input("The scaler belongs to the model.").run()
    learn.button(key=f"learn.reveal.{exercise.key}").click().run()
    assert answer in [i.value for i in learn.info]
    other = f"**Our answer.** {lessons.EXERCISES[1].answer}"
    assert other not in [i.value for i in learn.info]
