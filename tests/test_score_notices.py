"""`score.py --notices DIR`: one adverse action notice per rejected row, named by row or by an id column."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
from pypdf import PdfReader

from model.records import access
from model.records.log import DecisionLog
from model.records.notices import notices_for

from .test_score_cli import applicants_csv, assert_one_line_error, run


@pytest.fixture
def env(trained, tmp_path) -> dict[str, str]:
    return {**os.environ, "LOANDESK_MODEL_DIR": str(trained), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}


def text_of(path) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(path).pages))


def test_one_notice_per_rejected_row_named_by_row_number_each_with_its_reasons(env, tmp_path):
    source = applicants_csv(tmp_path / "applicants.csv", n=40, bad_incomes=(2,))
    folder = tmp_path / "notices"
    result = run(env, source, "-o", tmp_path / "decisions.csv", "--notices", folder)
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "decisions.csv", dtype={"decision_id": str})
    rejected = out.index[(out["decision"] == 0) & out["error"].isna()]
    assert len(rejected) > 3
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"row-{i + 1}.pdf" for i in rejected)
    assert "row-3.pdf" not in {p.name for p in folder.iterdir()}  # row 3 has an error: no decision, no notice
    for i in rejected:
        text = text_of(folder / f"row-{i + 1}.pdf")
        for code in out.loc[i, "reason_codes"].split(";")[:4]:
            assert f"reason code {code}" in text
        assert f"Application reference: {out.loc[i, 'decision_id']}" in text
        assert "The Federal Equal Credit Opportunity Act prohibits" in text
    assert f"Notices: {len(rejected)} adverse action notice(s) written to {folder}, {len(rejected)} recorded" \
           in result.stdout
    log = DecisionLog(env["LOANDESK_DB_URL"])
    [record] = notices_for(log, out.loc[rejected[0], "decision_id"])
    assert record.produced_by == access.shell().label and record.reason_codes == out.loc[rejected[0], "reason_codes"]


def test_notices_named_by_an_id_column_carry_the_agencys_key_factors(env, tmp_path):
    source = applicants_csv(tmp_path / "applicants.csv", n=30)
    frame = pd.read_csv(source)
    frame.insert(0, "application_id", [f"APP/{k:03d}" for k in range(len(frame))])
    frame["credit_score_factors"] = "Serious delinquency; Short credit history"
    frame.to_csv(source, index=False)
    folder = tmp_path / "notices"
    result = run(env, source, "-o", tmp_path / "decisions.csv", "--notices", folder, "--notice-id", "application_id")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "decisions.csv")
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"APP_{k:03d}.pdf" for k in out.index[out["decision"] == 0])  # "/" is no file name
    text = text_of(folder / names[0])
    assert "Key factors that adversely affected your credit score: 1. Serious delinquency 2. Short credit history" \
           in text


def test_an_unknown_id_column_is_refused_before_scoring(env, tmp_path):
    result = run(env, applicants_csv(tmp_path / "a.csv"), "-o", tmp_path / "d.csv", "--notices", tmp_path / "n",
                 "--notice-id", "nope")
    assert_one_line_error(result, "--notice-id", "'nope'")
    assert not (tmp_path / "d.csv").exists()


def test_a_broken_template_is_refused_before_scoring(env, tmp_path):
    broken = tmp_path / "bank.toml"
    broken.write_text("[creditor]\nname = 'Bank'\n")
    result = run({**env, "LOANDESK_NOTICE_TEMPLATE": str(broken)}, applicants_csv(tmp_path / "a.csv"),
                 "-o", tmp_path / "d.csv", "--notices", tmp_path / "n")
    assert_one_line_error(result, "notice template", "bank.toml", "is missing")
    assert not (tmp_path / "d.csv").exists()


def test_notices_are_the_owners_only_and_a_link_planted_at_a_notice_name_is_never_written_through(env, tmp_path):
    source = applicants_csv(tmp_path / "applicants.csv", n=40)
    folder = tmp_path / "notices"
    assert run(env, source, "-o", tmp_path / "decisions.csv", "--notices", folder).returncode == 0
    made = sorted(folder.iterdir())
    assert made and folder.stat().st_mode & 0o777 == 0o700  # notices name applicants: a folder made here is private
    assert {p.stat().st_mode & 0o777 for p in made} == {0o600}
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    made[0].unlink()
    made[0].symlink_to(victim)  # planted where the next run writes a notice
    assert run(env, source, "-o", tmp_path / "again.csv", "--notices", folder).returncode == 0
    assert victim.read_text() == "keep me"
    assert not made[0].is_symlink() and made[0].read_bytes().startswith(b"%PDF")
