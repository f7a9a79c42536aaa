"""Synthetic credit data with known protected columns, a proxy and an age effect, for the fairness tests.

`Race` (capitalized, text) is left out by name; `single` (0/1) is marital status by name; `Age`
(capitalized) is age; `zip_index` is a strong proxy for Race (its mean differs by group); `pti` is a
payment-to-income ratio where approval falls as it rises; the target `outcome` is granted/denied.
Approval in the data falls with age when `age_effect` is negative: the model must not learn that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def credit_frame(n: int = 1200, seed: int = 3, age_effect: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    race = rng.choice(["White", "Black", "Asian"], n, p=[0.6, 0.3, 0.1])
    zip_index = np.where(race == "Black", rng.normal(3, 1, n), rng.normal(0, 1, n)).round(2)
    age = rng.integers(18, 80, n)
    single = rng.integers(0, 2, n)
    pti = rng.uniform(0.05, 0.6, n).round(3)
    credit = rng.integers(450, 850, n)
    logit = (0.012 * (credit - 650) - 6 * (pti - 0.3) + age_effect * (age - 40) - 0.5 * single
             - 0.4 * (race == "Black"))
    granted = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"Age": age, "Race": race, "single": single, "zip_index": zip_index, "pti": pti,
                         "credit": credit, "outcome": np.where(granted, "granted", "denied")})
