"""train.py as a subprocess: every refusal and message about prohibited bases, age, proxies, the
label's direction and the column spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fair_data import credit_frame

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def refused(done: subprocess.CompletedProcess) -> str:
    """The one error line of a refused run (exit 2, no traceback, nothing saved)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "apps.csv"
    credit_frame(900).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("out") / "model"
    done = run("--data", str(data), "--target", "outcome", "--approved-value", "granted", "--model", "logistic",
               "--out", str(out), cwd=data.parent)
    assert done.returncode == 0, done.stderr
    return done, out


def _card(out: Path) -> dict:
    version = (out / "ACTIVE").read_text().strip()
    return json.loads((out / "versions" / version / "model_card.json").read_text())


def test_it_says_what_approved_means_in_counts(trained, data):
    done, _ = trained
    granted = (credit_frame(900)["outcome"] == "granted").sum()
    assert done.stdout.splitlines()[0] == f"approved means outcome = granted: {granted:,} of 900 rows " \
                                          f"({100 * granted / 900:.1f}%)"


def test_it_names_each_protected_column_with_the_rule_that_caught_it(trained):
    out = trained[0].stdout
    assert ('  Race (race): its name contains "race"; left out of the model; kept beside the hold-out to measure '
            'fairness') in out
    assert '  single (marital status): its name contains "single"; left out of the model' in out
    assert '  Age (age): its name contains "age"; used: approval never falls as age rises' in out


def test_it_warns_of_a_proxy_and_names_it(trained):
    err = trained[0].stderr
    assert "warning: The model's inputs predict Race with a cross-validated AUC of" in err
    assert "strongest: zip_index" in err and "single" not in err


def test_the_card_says_it_all(trained):
    card = _card(trained[1])
    assert card["label_meaning"].startswith("approved means outcome = granted: ")
    assert [c["name"] for c in card["protected"]["columns"]] == ["Age", "Race", "single"]
    assert card["protected"]["proxy_threshold"] == 0.7
    assert {f["name"] for f in card["schema"]["fields"]} == {"Age", "zip_index", "pti", "credit"}


def test_a_target_that_is_not_0_1_needs_the_approved_value(data, tmp_path):
    line = refused(run("--data", str(data), "--target", "outcome", "--out", str(tmp_path / "m"), cwd=tmp_path))
    assert line == ("error: target column 'outcome' has the values 'denied' and 'granted': say which one means "
                    "approved with --approved-value denied or --approved-value granted")
    assert not (tmp_path / "m").exists()


def test_a_0_1_target_named_like_a_bad_outcome_needs_it_too(tmp_path):
    frame = credit_frame(300)
    frame["deny"] = (frame.pop("outcome") == "denied").astype(int)
    frame.to_csv(tmp_path / "d.csv", index=False)
    line = refused(run("--data", str(tmp_path / "d.csv"), "--target", "deny", "--out", str(tmp_path / "m"),
                       cwd=tmp_path))
    assert "reads as a bad outcome, so 1 may mean rejected" in line and "--approved-value 0" in line


@pytest.fixture(scope="module")
def deny_csv(tmp_path_factory) -> Path:
    """A target named deny: yes is a denial."""
    frame = credit_frame(300)
    frame["deny"] = np.where(frame.pop("outcome") == "denied", "yes", "no")
    path = tmp_path_factory.mktemp("deny") / "d.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("flag", ["--positive-label", "--approved-value"])
def test_yes_for_a_target_named_deny_is_refused_with_the_fix(deny_csv, tmp_path, flag):
    line = refused(run("--data", str(deny_csv), "--target", "deny", flag, "yes", "--out", str(tmp_path / "m"),
                       cwd=tmp_path))
    assert line.startswith("error: 'deny' reads as a bad outcome (a denial, rejection or default), so deny = yes "
                           "records that outcome, not approval: --approved-value yes would save a model of that "
                           "outcome as one of approval"), line
    assert "Use --approved-value no" in line and "add --confirm-approved-value" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("target, values, given, fix", [
    ("deny", (1, 0), "1", "--approved-value 0"),
    ("is_default", ("true", "false"), "true", "--approved-value False"),  # pandas reads them as booleans
    ("status", ("denied", "approved"), "denied", "--approved-value approved"),
    ("loan_status", ("Charged Off", "Fully Paid"), "Charged Off", "--approved-value 'Fully Paid'"),
    ("approved", ("yes", "no"), "no", "--approved-value yes"),
], ids=["deny-1", "default-true", "value-denied", "value-charged-off", "approved-no"])
def test_every_value_that_reads_as_the_opposite_of_approval_is_refused(tmp_path, target, values, given, fix):
    frame = credit_frame(300)
    frame[target] = np.where(frame.pop("outcome") == "denied", values[0], values[1])
    frame.to_csv(tmp_path / "d.csv", index=False)
    line = refused(run("--data", str(tmp_path / "d.csv"), "--target", target, "--approved-value", given,
                       "--out", str(tmp_path / "m"), cwd=tmp_path))
    assert f"Use {fix};" in line and "--confirm-approved-value" in line, line
    assert not (tmp_path / "m").exists()


def test_a_confirmed_yes_for_deny_is_trained_and_recorded_in_the_card(deny_csv, tmp_path):
    done = run("--data", str(deny_csv), "--target", "deny", "--positive-label", "yes", "--confirm-approved-value",
               "--out", str(tmp_path / "m"), "--model", "gbm", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("approved means deny = yes: ")
    assert "taken as approved because of --confirm-approved-value" in done.stderr
    card = _card(tmp_path / "m")
    assert card["label_direction_confirmed"].startswith("'deny' reads as a bad outcome")
    assert "(confirmed with --confirm-approved-value, although 'deny' reads as a bad outcome" in card["label_meaning"]


def test_the_right_value_for_deny_trains_without_a_word_of_doubt(deny_csv, tmp_path):
    done = run("--data", str(deny_csv), "--target", "deny", "--approved-value", "no", "--out", str(tmp_path / "m"),
               "--model", "logistic", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "reads as a bad outcome" not in done.stderr
    assert _card(tmp_path / "m")["label_direction_confirmed"] is None


@pytest.mark.parametrize("args, problem", [
    (["--allow", "Race"], "error: --allow Race needs --justification"),
    (["--justification", "because"], "error: --justification says why a protected column may be used"),
    (["--allow", "credit", "--justification", "x"], "error: --allow credit: credit is not a protected column"),
    (["--allow", "nope", "--justification", "x"], "error: --allow names unknown column(s): nope"),
    (["--allow", "Age", "--justification", "x"], "error: --allow Age: age is used without --allow"),
    (["--monotone", "Age=-1"], "error: --monotone: Age is protected (ECOA): it is the applicant's age"),
    (["--monotone", "Age=0"], "error: --monotone: Age is protected (ECOA)"),
    (["--monotone", "Race=+1"], "error: --monotone: Race is protected and left out of the model"),
    (["--protected", "nope"], "error: --protected names unknown column(s): nope"),
    (["--protected", "pti=hair"], "error: --protected pti=hair: unknown basis 'hair'"),
    (["--proxy-threshold", "0.2"], "error: --proxy-threshold must be above 0.5"),
    (["--approved-value", "maybe"], "error: --approved-value 'maybe' does not occur in 'outcome'"),
], ids=["allow-without-why", "why-without-allow", "allow-unprotected", "allow-unknown", "allow-age",
        "age-falling", "age-free", "direction-for-left-out", "protected-unknown", "protected-basis",
        "proxy-threshold", "approved-absent"])
def test_every_refusal_is_one_line_naming_the_fix(data, tmp_path, args, problem):
    base = ["--data", str(data), "--target", "outcome", "--out", str(tmp_path / "m")]
    if "--approved-value" not in args:
        base += ["--approved-value", "granted"]
    line = refused(run(*base, *args, cwd=tmp_path))
    assert line.startswith(problem), line
    assert not (tmp_path / "m").exists()


def test_allow_with_a_justification_uses_the_column_and_records_why(data, tmp_path):
    why = "a special purpose credit program (1002.8)"
    done = run("--data", str(data), "--target", "outcome", "--approved-value", "granted", "--model", "logistic",
               "--allow", "single", "--justification", why, "--out", str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"single (marital status): its name contains \"single\"; used, allowed by --allow (justification: " \
           f"{why!r})" in done.stdout
    [entry] = [c for c in _card(tmp_path / "m")["protected"]["columns"] if c["name"] == "single"]
    assert entry["justification"] == why and entry["used"]


def test_protected_names_a_column_the_rules_missed(data, tmp_path):
    done = run("--data", str(data), "--target", "outcome", "--approved-value", "granted", "--model", "logistic",
               "--protected", "zip_index", "--out", str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "zip_index (a prohibited basis (named by the user)): named by --protected; left out" in done.stdout
    assert "zip_index" not in {f["name"] for f in _card(tmp_path / "m")["schema"]["fields"]}


def test_write_spec_then_train_with_it(data, tmp_path):
    spec = tmp_path / "spec.toml"
    done = run("--data", str(data), "--target", "outcome", "--write-spec", str(spec), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"Wrote a column spec for 6 column(s) of {data} to {spec}" in done.stdout
    text = spec.read_text()
    assert "[columns.Race]" in text and 'protected = "race"' in text and "[columns.outcome]" not in text
    assert 'label = "Payment-to-income ratio"' in text
    spec.write_text(text.replace('label = "Payment-to-income ratio"', 'label = "Payment over income"'))
    done = run("--data", str(data), "--target", "outcome", "--approved-value", "granted", "--model", "logistic",
               "--spec", str(spec), "--out", str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    fields = {f["name"]: f for f in _card(tmp_path / "m")["schema"]["fields"]}
    assert fields["pti"]["label"] == "Payment over income"
    again = run("--data", str(data), "--target", "outcome", "--write-spec", str(spec), cwd=tmp_path)
    assert refused(again).startswith(f"error: --write-spec {spec}: the file exists")


def test_write_spec_without_target_is_refused_naming_target_not_written_with_the_label(data, tmp_path):
    spec = tmp_path / "s.toml"
    line = refused(run("--data", str(data), "--write-spec", str(spec), cwd=tmp_path))
    assert "--write-spec leaves the target out of the spec" in line and "name the label column with --target" in line
    assert "'approved' (the default target)" in line and "outcome" in line
    assert not spec.exists()


def test_a_spec_that_describes_the_target_is_accepted_with_that_entry_ignored(data, tmp_path):
    spec = tmp_path / "s.toml"
    assert run("--data", str(data), "--target", "outcome", "--write-spec", str(spec), cwd=tmp_path).returncode == 0
    spec.write_text(spec.read_text() + '\n[columns.outcome]\nlabel = "Outcome"\nprotected = false\n')
    done = run("--data", str(data), "--target", "outcome", "--approved-value", "granted", "--model", "logistic",
               "--spec", str(spec), "--out", str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "not in the data" not in done.stderr
    assert f"note: {spec} describes outcome, the target: that entry is ignored" in done.stdout
    assert "outcome" not in {f["name"] for f in _card(tmp_path / "m")["schema"]["fields"]}


def test_the_help_example_for_write_spec_names_the_target():
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True, text=True,
                          timeout=120)
    examples = [line for line in done.stdout.splitlines() if "--write-spec spec.toml" in line]
    assert examples and all("--target" in line for line in examples), examples
    readme = (ROOT / "README.md").read_text()
    assert all("--target" in line for line in readme.splitlines() if "--write-spec spec.toml" in line
               and line.startswith("python"))


def test_a_spec_that_unprotects_race_is_refused(data, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[columns.Race]\nprotected = false\n')
    line = refused(run("--data", str(data), "--target", "outcome", "--approved-value", "granted",
                       "--spec", str(spec), "--out", str(tmp_path / "m"), cwd=tmp_path))
    assert line.startswith("error: --spec says Race is not protected, but its name contains \"race\"")
    assert "--allow Race --justification" in line
