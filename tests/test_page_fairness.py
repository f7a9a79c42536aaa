"""The Model page's prohibited bases, proxies and fairness report, through AppTest, for a model
trained on a CSV with a race column, a marital-status column (used by --allow) and a capitalized Age."""

from __future__ import annotations

import re

import pytest

from model.registry.store import save_version
from model.training.data import split_target
from model.training.train import train
from tests.conftest import APP
from tests.fair_data import credit_frame
from ui.text import WORD_JOINER

PAGE = "app_pages/model.py"


def shown(markdown: str) -> str:
    """The text a reader sees: markdown's backslash escapes and the word joiners (ui.text) undone."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")
WHY = "a special purpose credit program"


@pytest.fixture(scope="module")
def fair_app(tmp_path_factory):
    """The Model page, rendered once for the module (training with proxies takes a while)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    tmp_path = tmp_path_factory.mktemp("fair_page")
    features, y, positive = split_target(credit_frame(900), "outcome", "granted")
    trained = train(features, y, target="outcome", positive_label=positive, model="logistic",
                    allowed={"single": WHY})
    folder = tmp_path / "model"
    save_version(folder, trained.pipeline, trained.card, trained.holdout)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOANDESK_MODEL_DIR", str(folder))
        env.setenv("LOANDESK_DB_URL", f"sqlite:///{tmp_path / 'decisions.db'}")
        st.cache_resource.clear()
        st.cache_data.clear()
        at = AppTest.from_file(str(APP), default_timeout=120).run()
        at.switch_page(PAGE).run()
        assert not at.exception, at.exception
        yield at
        st.cache_resource.clear()
        st.cache_data.clear()


def test_an_allowed_prohibited_basis_is_shown_in_red_with_its_justification(fair_app):
    [error] = [e for e in fair_app.error if "prohibited basis" in e.value]
    assert "This model uses single (marital status), a prohibited basis under ECOA, by --allow" in error.value
    assert WHY in error.value


def test_every_protected_column_is_listed_with_its_rule_and_what_was_done(fair_app):
    table = next(d.value for d in fair_app.dataframe if "Found because" in d.value.columns)
    rows = table.set_index("Column")
    assert rows.loc["Race", "Found because"] == 'its name contains "race"'
    assert rows.loc["Race", "In the model"] == "left out of the model"
    assert rows.loc["single", "Justification"] == WHY
    assert rows.loc["Age", "In the model"].startswith("used: approval never falls as age rises")


def test_the_proxy_for_race_is_warned_and_tabled(fair_app):
    assert any("predict Race with a cross-validated AUC" in shown(w.value) and "Zip index" in shown(w.value)
               for w in fair_app.warning)
    table = next(d.value for d in fair_app.dataframe if "Strongest inputs alone" in d.value.columns)
    assert table.set_index("Protected column").loc["Race", "Strongest inputs alone"].startswith("Zip index")


def test_the_fairness_report_has_every_protected_column_and_age_bands(fair_app):
    headers = [shown(h.value) for h in fair_app.subheader]
    assert "Race (race; not used by the model)" in headers
    assert "single (marital status; used by the model)" in headers
    assert "Age (age; used by the model)" in headers
    tables = [d.value for d in fair_app.dataframe if "Adverse impact ratio" in d.value.columns]
    assert len(tables) == 3
    age = next(t for t in tables if "62 or older" in set(t["Group"]))
    assert list(age["Group"]) == ["under 25", "25–39", "40–61", "62 or older"]
    race = next(t for t in tables if "Black" in set(t["Group"])).set_index("Group")
    assert race.loc["Black", "Approval rate"].endswith("%)") and " to " in race.loc["Black", "Approval rate"]
    flagged = race.index[race["Flag"] == "under four fifths"].tolist()
    if flagged:
        assert any("under four fifths" in w.value for w in fair_app.warning)


def test_the_card_says_what_approved_means(fair_app):
    assert any(t.value.startswith("approved means outcome = granted: ") for t in fair_app.text)
