"""Tables as people read them: the batch results, the decision log, and the log's CSV export.

Presentation only: the numbers come from the core; here they are written out ("$62,000", "71.4%",
"Approved") and labelled with the schema's field titles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.core.coercion import to_numbers
from model.core.formatting import decision_label, format_value, percent
from model.core.schema import Schema
from model.records.log import inputs_frame
from model.scoring.predictor import LoanModel


def readable_results(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The scored rows as an officer reads them: "$62,000", "71.4%", "Approved", field labels."""
    out = frame.copy()
    for f in schema.fields:
        if f.is_number and f.name in out:
            numbers = to_numbers(out[f.name].to_numpy(dtype=object))
            text = [format_value(f, v) if not np.isnan(v) else raw if isinstance(raw, str) else ""
                    for v, raw in zip(numbers, out[f.name], strict=True)]
            out[f.name] = pd.Series(text, index=out.index, dtype="string")
    scored = out["probability"].notna()
    referred = out["referred"] if "referred" in out else pd.Series(0, index=out.index)
    out["decision"] = [decision_label(d == 1, r == 1) if s else ""
                       for d, r, s in zip(out["decision"], referred, scored, strict=True)]
    out["probability"] = [percent(p) if s else "" for p, s in zip(out["probability"], scored, strict=True)]
    labels = {f.name: f.label for f in schema.fields}
    out["out_of_range"] = [", ".join(labels.get(n.strip(), n) for n in str(v).split(",")) if isinstance(v, str) and v
                           else "" for v in out["out_of_range"]]
    for name in ("reasons", "reason_codes", "error", "decision_id"):
        if name in out:
            out[name] = out[name].astype("string").fillna("")
    out = out.drop(columns=["referred"], errors="ignore")  # the decision says "Refer to underwriter"
    # what the officer reads first
    first = [c for c in ("decision", "probability", "error", "reasons", "reason_codes", "out_of_range", "decision_id")
             if c in out]
    out = out[first + [c for c in out.columns if c not in first]]
    out = out.rename(columns={**{f.name: f.title for f in schema.fields}, "probability": "Approval probability",
                              "decision": "Decision", "reasons": "Reasons", "reason_codes": "Reason codes",
                              "out_of_range": "Outside training range", "error": "Error",
                              "decision_id": "Decision id"})
    out.index.name = "Row"
    return out


def readable_log(model: LoanModel, log: pd.DataFrame) -> pd.DataFrame:
    """The log as an officer reads it: times, money and percentages written out, simulated rows marked."""
    inputs = inputs_frame(log)
    out = pd.DataFrame({
        "Decided (UTC)": log["decided_at"].dt.strftime("%d %b %Y, %H:%M"),
        "Decision": np.where(log["decision"].astype(int) == 1, "Approved", "Rejected"),
        "Approval probability": [percent(p) for p in log["probability"]],
    }, index=log.index)
    for f in model.schema.fields:
        if f.name in inputs.columns:
            out[f.label] = [format_value(f, v) for v in inputs[f.name]]
    out["Reasons"] = log["reasons"]
    out["Out of range"] = log["out_of_range"]
    out["Source"] = np.where(log["simulated"], "simulated", log["source"])
    out["Officer"] = log["officer"].fillna("")
    out["Version"] = log["model_version"]
    return out.reset_index(drop=True)


def export_frame(log_frame: pd.DataFrame) -> pd.DataFrame:
    """The log as one flat table for a CSV: one column per input, the decision in words."""
    inputs = inputs_frame(log_frame)
    out = log_frame.drop(columns=["inputs"]).copy()
    out["decided_at"] = out["decided_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["decision"] = [decision_label(bool(d)) for d in out["decision"]]
    clash = [c for c in inputs.columns if c in out.columns]
    inputs = inputs.rename(columns={c: f"input_{c}" for c in clash})
    front = ["id", "decision_id", "decided_at", "model_name", "model_version", "model_sha256", "source",
             "officer", "simulated"]
    back = ["probability", "threshold", "decision", "reasons", "out_of_range"]
    return pd.concat([out[front], inputs, out[back]], axis=1)
