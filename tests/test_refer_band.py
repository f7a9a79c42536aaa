"""The refer band: set on the Model page, kept in the card, applied the same way by every face."""

from __future__ import annotations

import numpy as np
import pytest

from model.core.errors import ModelIntegrityError
from model.registry.store import active_version, load_model
from model.scoring.rows import RowDecision, decide_rows
from model.training.data import generate_applicants
from model.training.workflows import copy_with_threshold

from .conftest import EXAMPLE
from .test_page_model import _open

FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]


def test_the_model_page_saves_a_refer_band_as_a_new_version_and_says_what_it_would_refer(app, app_env):
    at = _open(app)
    old = active_version(app_env)
    band = next(s for s in at.slider if s.key.startswith("model.refer_band."))
    band.set_value(10.0).run()
    share = load_model(app_env)
    expected = np.mean(np.abs(_holdout_probabilities(share) - share.threshold) < 0.05)
    assert any(f"would send {100 * expected:.1f}% of the hold-out applicants to an underwriter" in c.value
               for c in at.caption)
    next(t for t in at.text_area if t.key.startswith("model.why.threshold.")).input("Close cases to underwriters")
    at.button(key="model.use_threshold").click().run()  # demo mode: four eyes off, so at once
    assert not at.exception
    model = load_model(app_env)
    assert active_version(app_env) != old and model.refer_band == 0.10 and model.threshold == share.threshold
    assert load_model(app_env, version=old).refer_band == 0.0


def _holdout_probabilities(model) -> np.ndarray:
    from model.registry.store import load_holdout

    return load_holdout(model)["probability"].to_numpy()


@pytest.fixture
def banded(registry):
    model = load_model(registry)
    copy_with_threshold(registry, model.version, model.threshold, refer_band=0.2, activate=True)
    return load_model(registry)


def test_the_band_is_half_its_width_either_side_of_the_threshold(banded):
    t = banded.threshold
    p = np.array([t - 0.1001, t - 0.0999, t, t + 0.0999, t + 0.1001])
    assert banded.referred(p).tolist() == [False, True, True, True, False]


def test_rows_from_every_face_are_referred_by_the_same_rule(banded):
    rows = generate_applicants(300, seed=5)[FEATURES].to_dict("records")
    results = decide_rows(banded, rows)
    p = np.array([r.probability for r in results if isinstance(r, RowDecision)])
    flags = [r.referred for r in results if isinstance(r, RowDecision)]
    assert flags == banded.referred(p).tolist() and any(flags) and not all(flags)
    single = banded.decide(EXAMPLE)
    assert single.referred == bool(banded.referred(np.array([single.probability]))[0])


def test_a_card_with_a_nonsense_band_is_refused_before_loading(banded):
    import json

    card_path = banded.path / "model_card.json"
    card = json.loads(card_path.read_text())
    card["refer_band"] = 1.5
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match=r"refer_band 1\.5 is not a width"):
        load_model(banded.path, allow_version_mismatch=True)
