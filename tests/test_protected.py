"""Finding prohibited bases by name, by the user's word and by values (model/core/protected.py)."""

import pandas as pd
import pytest

from model.core.protected import (
    ELDERLY_AGE,
    age_column,
    bases_of_name,
    bases_of_values,
    find_protected,
    is_age_name,
)


@pytest.mark.parametrize("name, basis", [
    ("race", "race"), ("Race", "race"), ("RACE", "race"), ("applicant_race", "race"), ("afam", "race"),
    ("black", "race"), ("isBlack", "race"), ("white", "race"), ("ETHNICITY", "national_origin"),
    ("hispanic", "national_origin"), ("Latino", "national_origin"), ("nationality", "national_origin"),
    ("national_origin", "national_origin"), ("NationalOrigin", "national_origin"),
    ("country_of_birth", "national_origin"), ("foreign_worker", "national_origin"),
    ("sex", "sex"), ("Gender", "sex"), ("GENDERCODE", "sex"), ("female", "sex"), ("is_male", "sex"),
    ("MaritalStatus", "marital_status"), ("marital-status", "marital_status"), ("maritalstatus", "marital_status"),
    ("married", "marital_status"), ("single", "marital_status"), ("religion", "religion"),
    ("public_assistance", "public_assistance"), ("welfare", "public_assistance"),
    ("receives_tanf", "public_assistance"),
    ("familial_status", "familial_status"), ("disability", "disability"), ("skin_color", "color"),
    ("age", "age"), ("Age", "age"), ("AGE", "age"), ("applicantAge", "age"), ("age_years", "age"),
    ("dob", "age"), ("birth_year", "age"),
])
def test_a_protected_name_is_found_in_any_case_and_spelling(name, basis):
    found = bases_of_name(name)
    assert found is not None and basis in found[0]


@pytest.mark.parametrize("name", [
    "income", "credit_score", "loan_amount", "trace", "grace_period", "Sussex", "age_of_oldest_account",
    "car_age", "AvgAgeOfAccounts", "credit_history_age", "single_family_home", "white_collar",
    "num_dependents", "mortgage", "page_views", "employment_years", "pti", "dti",
])
def test_an_ordinary_name_is_not_protected(name):
    assert bases_of_name(name) is None


def test_german_credits_personal_status_is_sex_and_marital_status():
    assert bases_of_name("personal_status")[0] == ("sex", "marital_status")


@pytest.mark.parametrize("name, expected", [
    ("age", True), ("Age", True), ("AGE", True), ("ApplicantAge", True), ("age_years", True),
    ("dob", False), ("birth_year", False), ("age_of_oldest_account", False), ("race", False),
])
def test_age_in_years_is_told_apart_from_a_birth_date_and_an_accounts_age(name, expected):
    assert is_age_name(name) is expected


def test_the_age_column_is_found_whatever_its_case():
    assert age_column(["income", "Age", "credit"]) == "Age"
    assert age_column(["income", "car_age"]) is None
    assert ELDERLY_AGE == 62


@pytest.mark.parametrize("values, basis", [
    (["female", "male"], "sex"), (["M", "F", "F"], "sex"), (["Married", "Single", "Divorced"], "marital_status"),
    (["male : single", "female : divorced/separated/married", "male : married/widowed"], "marital_status"),
    (["Black or African American", "White", "Asian"], "race"), (["Hispanic or Latino", "Not Hispanic or Latino"],
                                                               "national_origin"),
    (["Married-civ-spouse", "Never-married", "Divorced"], "marital_status"),
    (["Christian", "Muslim", "None"], "religion"),
])
def test_text_values_that_name_groups_are_found(values, basis):
    found = bases_of_values(values)
    assert found is not None and basis in found[0]


@pytest.mark.parametrize("values", [
    ["white collar", "blue collar"], ["single family", "condo", "townhouse"], ["car", "home", "education"],
    ["A", "B", "C"], ["rent", "own", "mortgage"],
])
def test_values_that_name_no_group_twice_are_not_protected(values):
    assert bases_of_values(values) is None


def test_find_protected_reads_names_values_and_the_users_word_and_says_which_rule():
    frame = pd.DataFrame({
        "income": [50_000, 60_000], "Race": ["x", "y"], "status": ["married", "single"],
        "grp": [1, 2], "zone": ["n", "s"], "Age": [30, 40], "code": [1, 2],
    })
    found = {c.name: c for c in find_protected(frame, declared=["zone"])}
    assert set(found) == {"Race", "status", "zone", "Age"}
    assert found["Race"].rule == 'its name contains "race"'
    assert found["status"].rule.startswith("its values name groups (")
    assert found["zone"].rule == "named by --protected"
    assert found["Age"].is_age and not found["Race"].is_age
    assert found["status"].basis == "marital status"
    assert "Race (race): its name contains" in found["Race"].describe()


def test_numeric_codes_are_not_read_as_groups():
    assert find_protected(pd.DataFrame({"grp": [1, 2, 1, 2]})) == []


def test_a_declared_basis_and_an_unknown_declared_column():
    [col] = find_protected(pd.DataFrame({"zone": ["a", "b"]}), declared={"zone": "national_origin"})
    assert col.bases == ("national_origin",)
    with pytest.raises(ValueError, match="unknown column"):
        find_protected(pd.DataFrame({"zone": ["a"]}), declared=["nope"])


def test_a_finding_round_trips_through_the_card():
    [col] = find_protected(["personal_status"])
    from model.core.protected import ProtectedColumn
    assert ProtectedColumn.from_dict(col.to_dict()) == col
    assert col.basis == "sex and marital status"
