"""Plotly figures for the Monitoring page: activity, probabilities, drift and fairness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from model.core.formatting import percent
from model.monitoring.performance import Reference
from model.monitoring.report import FOUR_FIFTHS, PSI_ACT, PSI_WATCH, FieldDrift
from ui.text import plot

from .charts import APPROVE, INK, LINE, REJECT

WATCH = "#e0a100"
TRAINING = "#9aa5b1"
BANDS = {"stable": APPROVE, "watch": WATCH, "act": REJECT, "no data": TRAINING}


def _layout(fig: go.Figure, height: int = 320, **kwargs) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50 if "title" in kwargs else 30, b=10),
                      plot_bgcolor="white", legend=dict(orientation="h", y=1.12, x=1, xanchor="right"), **kwargs)
    fig.update_xaxes(gridcolor="#eef1f5")
    fig.update_yaxes(gridcolor="#eef1f5")
    return fig


def _title(text: str) -> dict:
    return dict(text=text, x=0, font=dict(size=14))


def daily_counts_figure(daily: pd.DataFrame) -> go.Figure:
    """Decisions per day, approved and rejected stacked."""
    fig = go.Figure([
        go.Bar(x=daily["day"], y=daily["approved"], name="Approved", marker_color=APPROVE,
               hovertemplate="%{x|%d %b %Y}: %{y:,} approved<extra></extra>"),
        go.Bar(x=daily["day"], y=daily["rejected"], name="Rejected", marker_color=REJECT,
               hovertemplate="%{x|%d %b %Y}: %{y:,} rejected<extra></extra>"),
    ])
    return _layout(fig, barmode="stack", legend_traceorder="normal", title=_title("Decisions per day"),
                   xaxis=dict(title="Day (UTC)", tickformat="%d %b"),
                   yaxis=dict(title="Decisions", tickformat=","))


def approval_rate_figure(daily: pd.DataFrame, holdout_rate: float | None) -> go.Figure:
    """Daily approval rate, against the rate the model gave its hold-out at training time."""
    fig = go.Figure(go.Scatter(
        x=daily["day"], y=daily["approval_rate"], mode="lines+markers", name="Approval rate",
        line=dict(color=LINE, width=3), customdata=daily["decisions"],
        hovertemplate="%{x|%d %b %Y}: %{y:.1%} of %{customdata:,} decisions<extra></extra>",
    ))
    if holdout_rate is not None:
        fig.add_hline(y=holdout_rate, line_dash="dash", line_color=INK,
                      annotation_text=f"hold-out {percent(holdout_rate)}", annotation_position="bottom right")
    return _layout(fig, title=_title("Approval rate per day"), xaxis=dict(title="Day (UTC)", tickformat="%d %b"),
                   yaxis=dict(title="Approval rate", range=[0, 1], tickformat=".0%"))


def probability_figure(recent_counts: np.ndarray, holdout: np.ndarray, threshold: float) -> go.Figure:
    """Approval probabilities of recent decisions (counted per five-point bin) against the hold-out's."""
    size = len(recent_counts)
    edges = np.linspace(0, 1, size + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    held = np.bincount(np.minimum((np.asarray(holdout, dtype=float) * size).astype(int), size - 1), minlength=size)
    total = max(int(np.sum(recent_counts)), 1)
    fig = go.Figure([
        go.Bar(x=centres, y=100 * held / max(held.sum(), 1), width=1 / size, name="Hold-out (training time)",
               marker_color=TRAINING, opacity=0.75,
               hovertemplate="%{x:.0%}: %{y:.1f}% of the hold-out<extra></extra>"),
        go.Bar(x=centres, y=100 * np.asarray(recent_counts) / total, width=1 / size, name="Recent decisions",
               marker_color=LINE, opacity=0.75,
               hovertemplate="%{x:.0%}: %{y:.1f}% of recent decisions<extra></extra>"),
    ])
    fig.add_vline(x=threshold, line_width=2, line_color=INK,
                  annotation_text=f"threshold {percent(threshold)}", annotation_position="top")
    return _layout(fig, barmode="overlay", xaxis=dict(title="Approval probability", range=[0, 1], tickformat=".0%"),
                   yaxis=dict(title="Share of decisions", ticksuffix="%"))


def _by_version(frame: pd.DataFrame):
    for version, rows in frame.groupby("model_version", sort=False):
        yield version, rows.sort_values("month")


def realized_auc_figure(by_month: pd.DataFrame, ref: Reference) -> go.Figure:
    """Realized AUC per month and version with its interval, against the hold-out's (approved rows)."""
    fig = go.Figure()
    for version, rows in _by_version(by_month.dropna(subset=["auc"])):
        fig.add_trace(go.Scatter(
            x=rows["month"], y=rows["auc"], mode="lines+markers", name=f"version {version}",
            error_y=dict(type="data", symmetric=False, array=rows["auc_high"] - rows["auc"],
                         arrayminus=rows["auc"] - rows["auc_low"]),
            customdata=np.stack([rows["outcomes"], rows["auc_expected_low"], rows["auc_expected_high"]], axis=-1),
            hovertemplate="%{x}: AUC %{y:.3f} over %{customdata[0]:,} loans; expected %{customdata[1]:.3f} to "
                          "%{customdata[2]:.3f}<extra></extra>"))
    if ref.auc == ref.auc:
        low, high = ref.auc_interval
        fig.add_hrect(y0=low, y1=high, fillcolor=TRAINING, opacity=0.25, line_width=0)
        fig.add_hline(y=ref.auc, line_dash="dash", line_color=INK, annotation_text=f"hold-out {ref.auc:.3f}",
                      annotation_position="bottom right")
    return _layout(fig, title=_title("Realized AUC per month"),
                   xaxis=dict(title="Month decided (UTC)", type="category"),
                   yaxis=dict(title="AUC among approved loans", range=[0.4, 1]))


def bad_rate_figure(by_month: pd.DataFrame, ref: Reference) -> go.Figure:
    """Observed bad rate per month and version with its interval, the predicted one, and the hold-out's."""
    fig = go.Figure()
    for version, rows in _by_version(by_month):
        fig.add_trace(go.Scatter(
            x=rows["month"], y=rows["bad_rate"], mode="lines+markers", name=f"observed, {version}",
            error_y=dict(type="data", symmetric=False, array=rows["bad_rate_high"] - rows["bad_rate"],
                         arrayminus=rows["bad_rate"] - rows["bad_rate_low"]),
            customdata=rows["outcomes"],
            hovertemplate="%{x}: %{y:.1%} bad of %{customdata:,} loans<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=rows["month"], y=rows["predicted_bad_rate"], mode="markers", name=f"predicted, {version}",
            marker=dict(symbol="diamond-open", size=10, color=INK),
            hovertemplate="%{x}: %{y:.1%} predicted by the probabilities<extra></extra>"))
    if ref.bad_rate == ref.bad_rate:
        fig.add_hline(y=ref.bad_rate, line_dash="dash", line_color=INK,
                      annotation_text=f"hold-out {percent(ref.bad_rate)}", annotation_position="top right")
    return _layout(fig, title=_title("Bad rate among approved loans"),
                   xaxis=dict(title="Month decided (UTC)", type="category"),
                   yaxis=dict(title="Bad loans", tickformat=".0%", rangemode="tozero"))


def expected_bad_rate_figure(expected: pd.DataFrame, ref: Reference) -> go.Figure:
    """Per month: the bad rate the approvals' calibrated probabilities predict, before outcomes arrive."""
    fig = go.Figure()
    for version, rows in _by_version(expected.dropna(subset=["expected_bad_rate"])):
        fig.add_trace(go.Bar(x=rows["month"], y=rows["expected_bad_rate"], name=f"version {version}",
                             customdata=rows["approved"], marker_color=LINE if len(fig.data) == 0 else WATCH,
                             hovertemplate="%{x}: %{y:.1%} expected bad among %{customdata:,} approvals"
                                           "<extra></extra>"))
    if ref.predicted_bad_rate == ref.predicted_bad_rate:
        fig.add_hline(y=ref.predicted_bad_rate, line_dash="dash", line_color=INK,
                      annotation_text=f"hold-out approvals {percent(ref.predicted_bad_rate)}",
                      annotation_position="top right")
    return _layout(fig, barmode="group", xaxis=dict(title="Month decided (UTC)", type="category"),
                   yaxis=dict(title="Expected bad rate", tickformat=".0%", rangemode="tozero"))


def performance_table(by_month: pd.DataFrame) -> pd.DataFrame:
    """Realized performance per month and version, written for people."""
    def interval(low, high, fmt):
        return f"{fmt(low)} to {fmt(high)}" if low == low and high == high else "–"

    def three(x):
        return f"{x:.3f}"

    return pd.DataFrame({
        "Month": by_month["month"],
        "Version": by_month["model_version"],
        "Loans with an outcome": [f"{n:,}" for n in by_month["outcomes"]],
        "Bad": [f"{n:,}" for n in by_month["bad"]],
        "Realized AUC": [three(a) if a == a else "–" for a in by_month["auc"]],
        "AUC 95% interval": [interval(lo, hi, three) for lo, hi in zip(by_month["auc_low"], by_month["auc_high"],
                                                                      strict=True)],
        "Expected AUC": [interval(lo, hi, three) for lo, hi in zip(by_month["auc_expected_low"],
                                                                   by_month["auc_expected_high"], strict=True)],
        "Bad rate": [percent(r) for r in by_month["bad_rate"]],
        "Bad rate 95% interval": [interval(lo, hi, percent) for lo, hi in zip(by_month["bad_rate_low"],
                                                                              by_month["bad_rate_high"], strict=True)],
        "Predicted bad rate": [percent(r) for r in by_month["predicted_bad_rate"]],
        "Alert": ["; ".join(a) for a in by_month["alerts"]],
    })


def psi_figure(table: pd.DataFrame) -> go.Figure:
    """PSI per input, coloured by band, with the 0.1 and 0.25 lines."""
    shown = table.dropna(subset=["psi"]).iloc[::-1]
    fig = go.Figure(go.Bar(
        x=shown["psi"], y=[plot(label) for label in shown["label"]], orientation="h",
        marker_color=[BANDS[b] for b in shown["band"]], customdata=shown["band"],
        text=[f"{v:.3f}" for v in shown["psi"]], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: PSI %{x:.3f} (%{customdata})<extra></extra>",
    ))
    for x, name in ((PSI_WATCH, "watch"), (PSI_ACT, "act")):
        fig.add_vline(x=x, line_dash="dash", line_color=INK, annotation_text=name, annotation_position="top")
    top = max(PSI_ACT * 1.3, float(shown["psi"].max()) * 1.2 if len(shown) else 0)
    return _layout(fig, height=60 + 45 * max(len(shown), 1), showlegend=False,
                   xaxis=dict(title="Population Stability Index", range=[0, top]))


def distribution_figure(d: FieldDrift, title: str, axis: str) -> go.Figure:
    """One input's training and recent shares, bin by bin."""
    fig = go.Figure([
        go.Bar(x=[plot(b) for b in d.bins], y=d.expected, name="Training", marker_color=TRAINING,
               hovertemplate="%{x}: %{y:.1%} of training<extra></extra>"),
        go.Bar(x=[plot(b) for b in d.bins], y=d.actual, name="Recent", marker_color=BANDS.get(d.band, LINE),
               hovertemplate="%{x}: %{y:.1%} of recent decisions<extra></extra>"),
    ])
    return _layout(fig, height=320, barmode="group", title=_title(plot(title)),
                   xaxis=dict(title=plot(axis), tickangle=-30), yaxis=dict(title="Share", tickformat=".0%"))


def age_band_figure(bands: pd.DataFrame) -> go.Figure:
    """Approval rate per age band, bands under four fifths of the highest in red."""
    rates = bands["approval_rate"]
    colors = [REJECT if flagged else APPROVE for flagged in bands["flagged"]]
    text = [f"{percent(r)} · ratio {q:.2f}" if pd.notna(r) else "no decisions"
            for r, q in zip(rates, bands["ratio_to_highest"], strict=True)]
    fig = go.Figure(go.Bar(
        x=bands["band"], y=rates.fillna(0), marker_color=colors, text=text, textposition="outside",
        customdata=bands["decisions"], cliponaxis=False,
        hovertemplate="Age %{x}: %{y:.1%} approved of %{customdata:,}<extra></extra>",
    ))
    best = rates.max()
    if pd.notna(best) and best > 0:
        fig.add_hline(y=FOUR_FIFTHS * best, line_dash="dash", line_color=INK,
                      annotation_text=f"four fifths of the highest ({percent(FOUR_FIFTHS * best)})",
                      annotation_position="top left")
    return _layout(fig, showlegend=False, xaxis=dict(title="Age band (years)"),
                   yaxis=dict(title="Approval rate", range=[0, 1.1], tickformat=".0%"))


def override_figure(rates: pd.DataFrame) -> go.Figure:
    """Overrides per reason (the fixed list's texts, never an officer's words), all officers together."""
    per_reason = rates.groupby("reason_text", sort=False)["overrides"].sum().sort_values()
    fig = go.Figure(go.Bar(x=per_reason.to_numpy(), y=per_reason.index, orientation="h", marker_color=LINE,
                           text=[f"{n:,}" for n in per_reason], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:,} override(s)<extra></extra>"))
    return _layout(fig, height=max(200, 60 + 36 * len(per_reason)), showlegend=False,
                   title=_title("Overrides by reason"), xaxis=dict(title="Overrides"),
                   yaxis=dict(automargin=True))


def override_table(rates: pd.DataFrame) -> pd.DataFrame:
    """Override rate per officer and reason, written for people (officer names stay plain table text)."""
    return pd.DataFrame({
        "Officer": rates["officer"].fillna("(not named)"),
        "Reason": rates["reason_text"],
        "Overrides": [f"{n:,}" for n in rates["overrides"]],
        "Officer's decisions": [f"{n:,}" for n in rates["decisions"]],
        "Override rate": [percent(r) if r == r else "–" for r in rates["rate"]],
    })
