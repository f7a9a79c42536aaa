"""The Model page's prohibited-bases and fairness tables, written for people (percentages with their
intervals, flags in words). Values from a user's file reach the page only inside tables, never as markdown."""

from __future__ import annotations

import math

import pandas as pd

from model.core.formatting import percent
from model.core.protected import card_columns
from model.evaluation.fairness import FOUR_FIFTHS, Fairness
from model.training.proxies import Proxy


def _rate(value: float, low: float, high: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    interval = "" if math.isnan(low) or math.isnan(high) else f" ({percent(low)} to {percent(high)})"
    return percent(value) + interval


def _ratio(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "–"
    interval = "" if math.isnan(low) or math.isnan(high) else f" ({low:.2f} to {high:.2f})"
    return f"{value:.2f}{interval}"


def fairness_frame(report: Fairness) -> pd.DataFrame:
    """One row per group: the four measures, each with its 95% bootstrap interval."""
    t = report.table
    return pd.DataFrame({
        "Group": t["group"],
        "Hold-out rows": t["rows"].map(lambda n: f"{int(n):,}"),
        "Approval rate": [_rate(*r) for r in zip(t["approval_rate"], t["approval_rate_low"],
                                                 t["approval_rate_high"], strict=True)],
        "Adverse impact ratio": [_ratio(*r) for r in zip(t["impact_ratio"], t["impact_ratio_low"],
                                                         t["impact_ratio_high"], strict=True)],
        "Flag": ["under four fifths" if f else "" for f in t["flagged"]],
        "Good loans approved (TPR)": [_rate(*r) for r in zip(t["tpr"], t["tpr_low"], t["tpr_high"], strict=True)],
        "Bad-loan rate among approved": [_rate(*r) for r in zip(t["bad_rate"], t["bad_rate_low"],
                                                                t["bad_rate_high"], strict=True)],
    })


def flag_sentence(report: Fairness) -> str | None:
    groups = report.flagged
    if not groups:
        return None
    return (f"{report.column}: approval rate under four fifths ({FOUR_FIFTHS:.0%}) of the most-approved group's for "
            f"{', '.join(groups)}. Review before relying on this model.")


def protected_frame(card: dict) -> pd.DataFrame:
    """Every protected column the card records: its basis, the rule that found it, what was done."""
    rows = [{"Column": c["name"], "Basis": c.get("basis", ""), "Found because": c.get("rule", ""),
             "In the model": c.get("status", ""), "Justification": c.get("justification", "")}
            for c in card_columns(card)]
    return pd.DataFrame(rows, columns=["Column", "Basis", "Found because", "In the model", "Justification"])


def proxies_frame(proxies: list[Proxy], labels: dict[str, str]) -> pd.DataFrame:
    rows = [{"Protected column": p.column, "Measure": f"cross-validated {p.measure}", "Value": f"{p.value:.3f}",
             "Above the threshold": f"yes (over {p.threshold:.2f})" if p.warn else f"no (at most {p.threshold:.2f})",
             "Strongest inputs alone": ", ".join(f"{labels.get(n, n)} ({v:.3f})" for n, v in p.strongest)}
            for p in proxies]
    return pd.DataFrame(rows, columns=["Protected column", "Measure", "Value", "Above the threshold",
                                       "Strongest inputs alone"])
