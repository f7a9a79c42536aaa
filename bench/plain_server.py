"""The baseline for bench_api.py: the plain FastAPI server a tutorial would write over the same pipeline.

    PLAIN_PIPELINE=.../versions/<id>/pipeline.joblib python -m uvicorn bench.plain_server:app --port 8001

No validation, no API key, no reasons, no decision log: a DataFrame of the body, predict_proba, JSON.
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from fastapi import Body, FastAPI

pipeline = joblib.load(os.environ["PLAIN_PIPELINE"])
app = FastAPI()


@app.post("/v1/decisions")
def decisions(body: dict | list = Body(...)):  # noqa: B008 (FastAPI's idiom); no return type: no response model
    frame = pd.DataFrame(body if isinstance(body, list) else [body])
    probabilities = pipeline.predict_proba(frame)[:, 1]
    answers = [{"decision": int(p >= 0.5), "probability": float(p)} for p in probabilities]
    return answers if isinstance(body, list) else answers[0]
