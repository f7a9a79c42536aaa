"""Plotly figures for the Model page: hold-out performance, feature effects and the threshold explorer."""

from __future__ import annotations

from itertools import cycle

import pandas as pd
import plotly.graph_objects as go

from model.core.formatting import percent
from model.evaluation.report import ACTUALS, OUTCOMES, Confusion, FeatureEffects, PrecisionRecall, Reliability, Roc
from ui.charts import APPROVE, INK, LINE, REJECT
from ui.text import plot

# One colour per compared version, the first being the page's usual line colour.
VERSION_COLOURS = (LINE, "#e08a00", "#6a3d9a", "#00838f")
RATE_COLOURS = {"approval_rate": LINE, "bad_rate_among_approved": REJECT, "good_rejected_share": "#e08a00"}
RATE_LABELS = {
    "approval_rate": "Approval rate",
    "bad_rate_among_approved": "Bad-loan rate among the approved",
    "good_rejected_share": "Good applicants rejected",
}


def _layout(fig: go.Figure, title: str, height: int = 360, **axes) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left"), height=height, margin=dict(l=10, r=10, t=50, b=10),
        plot_bgcolor="white", legend=dict(orientation="h", y=-0.25, x=0), **axes,
    )
    fig.update_xaxes(gridcolor="#e6e9ee", zeroline=False)
    fig.update_yaxes(gridcolor="#e6e9ee", zeroline=False)
    return fig


def roc_figure(curves: dict[str, Roc], marks: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """ROC curves (one per version), the diagonal of a coin toss, each version's threshold marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Coin toss (AUC 0.500)",
                             line=dict(color="#9aa5b1", dash="dot"), hoverinfo="skip"))
    for (name, curve), colour in zip(curves.items(), cycle(VERSION_COLOURS), strict=False):
        fig.add_trace(go.Scatter(
            x=curve.false_positive_rate, y=curve.true_positive_rate, mode="lines", line=dict(color=colour, width=3),
            name=f"{name} (AUC {curve.auc:.3f})" if len(curves) > 1 else f"AUC {curve.auc:.3f}",
            hovertemplate="Bad loans approved %{x:.1%}<br>Good loans approved %{y:.1%}<extra></extra>",
        ))
        if marks and name in marks:
            x, y = marks[name]
            fig.add_trace(go.Scatter(
                x=[x], y=[y], mode="markers", showlegend=False,
                marker=dict(size=12, color=colour, symbol="diamond", line=dict(color="white", width=2)),
                hovertemplate="At the threshold: bad loans approved %{x:.1%}, good loans approved %{y:.1%}"
                              "<extra></extra>",
            ))
    title = f"ROC curve · AUC {next(iter(curves.values())).auc:.3f}" if len(curves) == 1 else "ROC curves"
    return _layout(fig, title,
                   xaxis=dict(title="Bad loans approved (false positive rate)", range=[-0.01, 1.01], tickformat=".0%"),
                   yaxis=dict(title="Good loans approved (true positive rate)", range=[-0.01, 1.02], tickformat=".0%"))


def precision_recall_figure(pr: PrecisionRecall, mark: tuple[float, float] | None = None) -> go.Figure:
    """Precision against recall, with the precision of approving everyone as the baseline."""
    fig = go.Figure()
    fig.add_hline(y=pr.base_rate, line_dash="dot", line_color="#9aa5b1",
                  annotation_text=f"approve everyone: {percent(pr.base_rate)}", annotation_position="bottom left")
    fig.add_trace(go.Scatter(
        x=pr.recall, y=pr.precision, mode="lines", line=dict(color=LINE, width=3, shape="hv"),
        name=f"Average precision {pr.average_precision:.3f}",
        hovertemplate="Good loans approved %{x:.1%}<br>Good loans among the approved %{y:.1%}<extra></extra>",
    ))
    if mark is not None:
        fig.add_trace(go.Scatter(
            x=[mark[0]], y=[mark[1]], mode="markers", name="At the threshold",
            marker=dict(size=12, color=INK, symbol="diamond", line=dict(color="white", width=2)),
            hovertemplate="At the threshold: recall %{x:.1%}, precision %{y:.1%}<extra></extra>",
        ))
    return _layout(fig, f"Precision and recall · average precision {pr.average_precision:.3f}",
                   xaxis=dict(title="Recall: good loans approved", range=[-0.01, 1.01], tickformat=".0%"),
                   yaxis=dict(title="Precision: good loans among the approved", range=[-0.01, 1.02], tickformat=".0%"))


def reliability_figure(rel: Reliability) -> go.Figure:
    """Predicted approval probability against the observed share of good loans, per bin."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfectly calibrated",
                             line=dict(color="#9aa5b1", dash="dot"), hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=rel.predicted, y=rel.observed, mode="lines+markers", name="This model",
        line=dict(color=LINE, width=3), marker=dict(size=9), customdata=rel.rows,
        hovertemplate="Predicted %{x:.1%}<br>Good loans %{y:.1%}<br>%{customdata:,} applicants<extra></extra>",
    ))
    return _layout(fig, f"Reliability · Brier score {rel.brier:.3f}",
                   xaxis=dict(title="Predicted approval probability", range=[-0.01, 1.01], tickformat=".0%"),
                   yaxis=dict(title="Observed share of good loans", range=[-0.01, 1.02], tickformat=".0%"))


def confusion_figure(conf: Confusion) -> go.Figure:
    """The 2×2 table as a heatmap: correct cells green, mistakes red, counts and shares written in."""
    counts, shares = conf.counts, conf.shares
    correct = [[1, 0], [0, 1]]  # good loan approved, bad loan rejected
    text = [[f"{counts[i, j]:,}<br>{percent(shares[i, j])}" for j in range(2)] for i in range(2)]
    fig = go.Figure(go.Heatmap(
        z=correct, x=list(OUTCOMES), y=list(ACTUALS), text=text, texttemplate="%{text}",
        textfont=dict(size=18), colorscale=[[0, "#f6d5d5"], [1, "#d5ead6"]], showscale=False, xgap=3, ygap=3,
        hovertemplate="%{y}, %{x}: %{text}<extra></extra>",
    ))
    return _layout(fig, f"Confusion matrix at a threshold of {percent(conf.threshold)}", height=320,
                   xaxis=dict(title="Model decision", side="bottom"),
                   yaxis=dict(title="In the data", autorange="reversed"))


def effects_figure(effects: FeatureEffects) -> go.Figure:
    """One bar per input: coefficients coloured by direction, permutation importance with its spread."""
    frame = effects.frame.iloc[::-1]  # strongest at the top
    labels = [plot(label) for label in frame["label"]]  # column names and categories from the user's data
    if effects.method == "coefficients":
        colours = [APPROVE if e > 0 else REJECT for e in frame["effect"]]
        bar = go.Bar(x=frame["effect"], y=labels, orientation="h", marker_color=colours,
                     hovertemplate="%{y}: %{x:+.3f} log-odds per standard deviation<extra></extra>")
        title, axis = "How each input moves the score", "Change in log-odds of approval per standard deviation"
    else:
        bar = go.Bar(x=frame["effect"], y=labels, orientation="h", marker_color=LINE,
                     error_x=dict(type="data", array=frame["spread"], color=INK),
                     hovertemplate="%{y}: AUC drops by %{x:.3f} when shuffled<extra></extra>")
        title, axis = "How much each input matters", "Drop in AUC when the input is shuffled"
    fig = go.Figure(bar)
    return _layout(fig, title, height=max(260, 60 + 40 * len(frame)), showlegend=False,
                   xaxis=dict(title=axis, zeroline=True, zerolinecolor=INK))


def threshold_figure(table: pd.DataFrame, chosen: float, current: float) -> go.Figure:
    """The three rates over every threshold, the chosen one and the version's own marked."""
    fig = go.Figure()
    for key, label in RATE_LABELS.items():
        fig.add_trace(go.Scatter(
            x=table["threshold"], y=table[key], mode="lines", name=label,
            line=dict(color=RATE_COLOURS[key], width=3),
            hovertemplate=f"{label} %{{y:.1%}}<extra></extra>",
        ))
    fig.add_vline(x=current, line_dash="dot", line_color="#9aa5b1",
                  annotation_text=f"in use: {percent(current)}", annotation_position="bottom right")
    fig.add_vline(x=chosen, line_width=2, line_color=INK,
                  annotation_text=f"chosen: {percent(chosen)}", annotation_position="top right")
    return _layout(fig, "Rates on the hold-out as the threshold moves", height=380, hovermode="x unified",
                   xaxis=dict(title="Threshold (approve when the approval probability is at least this)",
                              range=[-0.01, 1.01], tickformat=".0%", hoverformat=".1%"),
                   yaxis=dict(title="Share", range=[-0.01, 1.02], tickformat=".0%"))
