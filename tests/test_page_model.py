"""The Model page, driven through Streamlit's AppTest."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import sklearn
from sklearn.metrics import brier_score_loss, roc_auc_score

from model.records.log import DecisionLog
from model.registry.store import active_version, load_holdout, load_model, save_version
from model.training.train import train_builtin

PAGE = "app_pages/model.py"


def _open(app):
    at = app.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _specs(at) -> dict[str, dict]:
    """Every plotly chart on the page by its key."""
    out = {}
    for chart in at.get("plotly_chart"):
        key = chart.proto.id.rsplit("-", 1)[-1]
        out[key] = json.loads(chart.proto.spec)
    return out


def _title(spec: dict) -> str:
    return spec["layout"]["title"]["text"]


def _metrics(at) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def _rates(holdout: pd.DataFrame, t: float) -> dict[str, str]:
    """The explorer's three numbers at threshold t, from their plain definitions, as the page writes them."""
    good, approved = holdout["label"] == 1, holdout["probability"] >= t
    rates = {
        "Approval rate": approved.mean(),
        "Bad-loan rate among the approved": (~good[approved]).mean() if approved.any() else 0.0,
        "Good applicants rejected": (~approved[good]).mean(),
    }
    return {label: f"{100 * value:.1f}%" for label, value in rates.items()}


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def _second_version(registry: Path, activate: bool) -> str:
    trained = train_builtin(seed=7, model="logistic")
    return save_version(registry, trained.pipeline, trained.card, trained.holdout, activate=activate)


def _justify(at, kind: str, text: str = "Agreed at the risk committee") -> None:
    """Every model change needs a justification (demo mode too: it is kept in the change history)."""
    next(t for t in at.text_area if t.key.startswith(f"model.why.{kind}.")).input(text)


def _slider(at):
    return next(s for s in at.slider if s.key.startswith("model.threshold."))


def _selectbox(at, prefix: str):
    """Version pickers are keyed by the active version, so they start from it again after a change."""
    return next(s for s in at.selectbox if s.key.startswith(prefix + "."))


def test_the_page_shows_the_model_card_and_every_chart(app, app_env):
    at = _open(app)
    model = load_model(app_env)
    holdout = load_holdout(model)
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert model.version in text
    assert f"Rows: {model.card['data']['rows']:,}" in text
    assert model.card["data"]["fingerprint"][:12] in text
    assert f"scikit-learn {sklearn.__version__}" in text
    assert "LogisticRegression with sigmoid calibration" in text

    specs = _specs(at)
    auc = roc_auc_score(holdout["label"], holdout["probability"])
    brier = brier_score_loss(holdout["label"], holdout["probability"])
    assert _title(specs["model.roc"]) == f"ROC curve · AUC {auc:.3f}"
    assert _title(specs["model.reliability"]) == f"Reliability · Brier score {brier:.3f}"
    assert _title(specs["model.pr"]).startswith("Precision and recall")
    assert _title(specs["model.confusion"]) == "Confusion matrix at a threshold of 50.0%"
    assert _title(specs["model.effects"]) == "How each input moves the score"
    assert _title(specs["model.thresholds"]) == "Rates on the hold-out as the threshold moves"
    heat = specs["model.confusion"]["data"][0]
    approved = holdout["probability"] >= 0.5
    good = holdout["label"] == 1
    assert heat["y"] == ["Good loan", "Bad loan"] and heat["x"] == ["Approved", "Rejected"]
    assert heat["text"][0][0].startswith(f"{int((good & approved).sum()):,}<br>")
    assert heat["text"][1][1].startswith(f"{int((~good & ~approved).sum()):,}<br>")

    metrics = _metrics(at)
    assert metrics["AUC"][0] == f"{auc:.3f}"
    assert metrics["Brier score"][0] == f"{brier:.3f}"
    assert any("only one version" in i.value for i in at.info)


def test_the_slider_moves_the_numbers_the_curves_mark_and_the_matrix(app, app_env):
    at = _open(app)
    holdout = load_holdout(load_model(app_env))
    for label, value in _rates(holdout, 0.5).items():
        assert _metrics(at)[label][0] == value
    assert at.button(key="model.use_threshold").disabled

    _slider(at).set_value(70.0).run()
    assert not at.exception
    metrics = _metrics(at)
    for label, value in _rates(holdout, 0.7).items():
        assert metrics[label][0] == value
    assert metrics["Approval rate"][1].startswith("-") and metrics["Approval rate"][1].endswith("points")
    specs = _specs(at)
    assert _title(specs["model.confusion"]) == "Confusion matrix at a threshold of 70.0%"
    lines = [shape["x0"] for shape in specs["model.thresholds"]["layout"]["shapes"]]
    assert sorted(lines) == [0.5, 0.7]
    assert not at.button(key="model.use_threshold").disabled


def test_use_this_threshold_saves_a_new_active_version_and_keeps_the_old_one(app, app_env):
    at = _open(app)
    old = active_version(app_env)
    before = _files(app_env / "versions" / old)
    _slider(at).set_value(62.5).run()
    _justify(at, "threshold")
    at.button(key="model.use_threshold").click().run()
    assert not at.exception

    new = active_version(app_env)
    assert new != old
    assert load_model(app_env).threshold == 0.625
    assert load_model(app_env, version=old).threshold == 0.5
    assert _files(app_env / "versions" / old) == before
    assert any(new in s.value and "62.5%" in s.value for s in at.success)
    # The rerun already shows the new version: its threshold on the slider, nothing left to save.
    assert _slider(at).value == 62.5
    assert at.button(key="model.use_threshold").disabled
    assert new in " ".join(c.value for c in at.caption)
    assert _selectbox(at, "model.pick").value == new

    # ...and decisions are now made at the new threshold.
    at.switch_page("app_pages/decide.py").run()
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    logged = DecisionLog(os.environ["LOANDESK_DB_URL"]).read()
    assert list(logged["model_version"]) == [new] and logged["threshold"].iloc[0] == 0.625


def test_make_this_version_active_rolls_back(app, app_env):
    older = active_version(app_env)
    newer = _second_version(app_env, activate=True)
    at = _open(app)
    assert _selectbox(at, "model.pick").value == newer
    assert at.button(key="model.activate").disabled

    _selectbox(at, "model.pick").select(older).run()
    _justify(at, "activate")
    at.button(key="model.activate").click().run()
    assert not at.exception
    assert active_version(app_env) == older
    assert any(older in s.value and "now active" in s.value for s in at.success)
    assert older in " ".join(c.value for c in at.caption)
    assert _selectbox(at, "model.pick").value == older
    assert at.button(key="model.activate").disabled
    holdout = load_holdout(load_model(app_env))
    auc = roc_auc_score(holdout["label"], holdout["probability"])
    assert _metrics(at)["AUC"][0] == f"{auc:.3f}"
    table = next(d.value for d in at.dataframe if "version" in d.value.columns)
    assert table.set_index("version").loc[older, "active"]
    assert not table.set_index("version").loc[newer, "active"]


def test_two_versions_side_by_side(app, app_env):
    first = active_version(app_env)
    second = _second_version(app_env, activate=False)
    at = _open(app)
    table = at.table[0].value
    assert list(table.columns) == [first, second]
    for version in (first, second):
        holdout = load_holdout(load_model(app_env, version=version))
        assert table.loc["AUC", version] == f"{roc_auc_score(holdout['label'], holdout['probability']):.3f}"
    roc = _specs(at)["model.compare.roc"]
    names = [trace["name"] for trace in roc["data"]]
    assert any(n.startswith(first) for n in names) and any(n.startswith(second) for n in names)
    assert any("different hold-out applicants" in i.value for i in at.info)

    _selectbox(at, "model.compare.second").select(first).run()
    assert any("Choose two different versions" in i.value for i in at.info)
    assert "model.compare.roc" not in _specs(at)


def test_a_damaged_holdout_is_reported_and_rollback_still_works(app, app_env):
    older = active_version(app_env)
    newer = _second_version(app_env, activate=True)
    at = app.run()  # the app loads (and caches) the newer version
    (app_env / "versions" / newer / "holdout.parquet").write_bytes(b"not a parquet file")
    at.switch_page(PAGE).run()
    assert not at.exception
    assert any("cannot be read" in e.value and newer in e.value for e in at.error)
    assert "model.roc" not in _specs(at)
    _selectbox(at, "model.pick").select(older).run()
    _justify(at, "activate")
    at.button(key="model.activate").click().run()
    assert not at.exception
    assert active_version(app_env) == older
    assert "model.roc" in _specs(at)


@pytest.fixture(autouse=True)
def _quiet_streamlit_warnings(caplog):
    caplog.set_level("ERROR", logger="streamlit")



def test_a_broken_active_version_can_still_be_rolled_back(app, app_env):
    """The sidebar and the Model page survive an active version that fails verification."""
    from model.registry.store import active_version, list_versions, save_version
    from model.training.train import train_builtin

    good = list_versions(app_env)[0].version
    other = train_builtin(seed=5, rows=1200)
    broken = save_version(app_env, other.pipeline, other.card, other.holdout)
    (app_env / "versions" / broken / "pipeline.joblib").write_bytes(b"tampered")
    at = app.switch_page("app_pages/model.py").run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)
    at.selectbox(key=f"model.pick.{broken}").select(good).run()
    _justify(at, "activate", "The active version fails verification")
    at.button(key="model.activate").click().run()
    assert not at.exception
    assert active_version(app_env) == good


def test_with_no_keys_the_page_says_models_are_not_signed_and_the_threshold_can_be_saved(app, monkeypatch):
    for name in ("LOANDESK_SIGNING_KEY", "LOANDESK_SIGNING_KEY_FILE",
                 "LOANDESK_VERIFY_KEY", "LOANDESK_VERIFY_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    at = _open(app)
    assert any("not signed" in _shown(w.value) and "LOANDESK_SIGNING_KEY" in _shown(w.value) for w in at.warning)
    assert [b for b in at.button if b.key == "model.use_threshold"]


def test_a_host_with_only_the_public_key_is_not_offered_use_this_threshold(app, app_env, tmp_path, monkeypatch):
    from model.registry import signing

    private, public = signing.new_key_pair(tmp_path / "keys")
    monkeypatch.setenv("LOANDESK_SIGNING_KEY_FILE", str(private))  # the training host signs a version ...
    trained = train_builtin(rows=1500, model="logistic", seed=3)
    save_version(app_env, trained.pipeline, trained.card, trained.holdout)
    monkeypatch.delenv("LOANDESK_SIGNING_KEY_FILE")  # ... and the app holds only the public key
    monkeypatch.setenv("LOANDESK_VERIFY_KEY_FILE", str(public))
    at = _open(app)
    assert not [b for b in at.button if b.key == "model.use_threshold"]
    [info] = [_shown(i.value) for i in at.info if "cannot sign" in i.value]
    assert "python train.py --set-threshold" in info
    assert any("This version is signed" in c.value and "cannot sign" in c.value for c in at.caption)


def _shown(markdown: str) -> str:
    """The text a reader sees: markdown's backslash escapes undone."""
    return re.sub(r"\\(.)", r"\1", markdown)
