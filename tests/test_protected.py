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
    "mortgage", "page_views", "employment_years", "pti", "dti",
    # status words and look-alikes that are ordinary credit fields
    "account_status", "loan_status", "employment_status", "housing_status", "checking_status", "colorado_branch",
    "car_color", "card_colour", "autopay_disabled", "alerts_disabled", "social_security_number", "ssn",
    "relationship_years", "relationship_manager", "present_residence", "complaint_category", "childcare_expense",
    "dependent_variable", "marketing_channel", "visa_card", "single_payment",
])
def test_an_ordinary_name_is_not_protected(name):
    assert bases_of_name(name) is None


@pytest.mark.parametrize("name, basis", [
    # color and marital status, in the spellings data sets use
    ("color", "color"), ("colour", "color"), ("Skin_Colour", "color"), ("complexion", "color"),
    ("mar_status", "marital_status"), ("mstat", "marital_status"), ("MSTAT", "marital_status"),
    ("marstatus", "marital_status"), ("spouse", "marital_status"), ("spouse_income", "marital_status"),
    ("has_spouse", "marital_status"), ("widow", "marital_status"), ("widower", "marital_status"),
    ("husband", "marital_status"), ("unmarried", "marital_status"), ("civil_status", "marital_status"),
    # race and national origin: HMDA, Adult/census, German credit
    ("applicant_race_1", "race"), ("derived_race", "race"), ("co_applicant_race_2", "race"),
    ("native_american", "race"), ("NativeAmerican", "race"), ("american_indian", "race"),
    ("pacific_islander", "race"), ("derived_ethnicity", "national_origin"), ("native-country", "national_origin"),
    ("citizenship", "national_origin"), ("CitizenshipStatus", "national_origin"), ("us_citizen", "national_origin"),
    ("noncitizen", "national_origin"), ("immigrant", "national_origin"), ("immigration_status", "national_origin"),
    ("green_card", "national_origin"), ("permanent_resident", "national_origin"),
    ("derived_sex", "sex"), ("applicant_sex", "sex"),
    ("SeniorCitizen", "age"), ("senior_citizen", "age"),
    # public assistance (Regulation B comment 2(z)-3: Social Security, SSI, unemployment compensation)
    ("social_security_income", "public_assistance"), ("ssdi", "public_assistance"),
    ("unemployment_benefits", "public_assistance"), ("housing_assistance", "public_assistance"),
    # good-faith exercise of consumer-credit rights
    ("billing_disputes", "credit_rights"), ("num_complaints", "credit_rights"),
    # familial status and disability (housing loans)
    ("dependents", "familial_status"), ("num_dependents", "familial_status"),
    ("NumberOfDependents", "familial_status"), ("number_of_dependents", "familial_status"),
    ("dependants", "familial_status"), ("children", "familial_status"), ("num_children", "familial_status"),
    ("household_size", "familial_status"), ("people_liable", "familial_status"), ("pregnant", "familial_status"),
    ("is_pregnant", "familial_status"), ("handicap", "disability"), ("handicapped", "disability"),
    ("disabled", "disability"), ("is_disabled", "disability"), ("disabilities", "disability"),
])
def test_every_basis_of_regulation_b_and_the_fair_housing_act_is_found_in_data_set_spellings(name, basis):
    found = bases_of_name(name)
    assert found is not None and basis in found[0], (name, found)


def test_a_senior_citizen_flag_is_age_not_citizenship_and_never_used_as_age_in_years():
    [col] = find_protected(["SeniorCitizen"])
    assert col.bases == ("age",) and not col.is_age  # a 65-or-older flag is left out, not used as age


def test_a_basis_lawful_in_part_says_when_allow_is_lawful():
    found = {c.name: c.rule for c in find_protected(["num_dependents", "citizenship", "handicap", "race"])}
    assert "Fair Housing Act" in found["num_dependents"] and "1002.5(d)(3)" in found["num_dependents"]
    assert "--allow" in found["num_dependents"]
    assert "1002.6(b)(7)" in found["citizenship"] and "--allow" in found["citizenship"]
    assert "Fair Housing Act" in found["handicap"]
    assert found["race"] == 'its name contains "race"'  # no excuse offered for race


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
    (["widowed", "divorced"], "marital_status"), (["Married", "Widow", "Never married"], "marital_status"),
    (["Husband", "Wife", "Own-child", "Unmarried", "Not-in-family"], "marital_status"),  # Adult's relationship
    (["citizen", "non-citizen"], "national_origin"), (["US citizen", "Permanent resident", "Other"],
                                                      "national_origin"),
    (["Naturalized citizen", "Resident alien"], "national_origin"),
    (["pregnant", "not pregnant"], "familial_status"), (["no children", "with children"], "familial_status"),
    (["disabled", "not disabled"], "disability"),
    (["Salary", "Social Security", "SSI", "Pension"], "public_assistance"),
])
def test_text_values_that_name_groups_are_found(values, basis):
    found = bases_of_values(values)
    assert found is not None and basis in found[0]


@pytest.mark.parametrize("values", [
    ["white collar", "blue collar"], ["single family", "condo", "townhouse"], ["car", "home", "education"],
    ["A", "B", "C"], ["rent", "own", "mortgage"], ["active", "closed", "charged off"],
    ["checking", "savings", "none"], ["red", "blue", "green"], ["resident", "non-resident"],
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
