"""Plotly figures for the Learn page: a deployment mistake's wrong way beside its right way."""

from __future__ import annotations

import plotly.graph_objects as go

from model.core.formatting import decision_label, percent
from model.learn.lessons import Mistake
from ui.charts import APPROVE, INK, REJECT


def comparison_figure(mistake: Mistake) -> go.Figure:
    """The two approval probabilities on one axis, coloured by decision, against the threshold."""
    rows = [("Right way", mistake.right), ("Wrong way", mistake.wrong)]  # plotly draws the first at the bottom
    colors = [APPROVE if p >= mistake.threshold else REJECT for _, p in rows]
    text = [f"{percent(p)} · {decision_label(p >= mistake.threshold)}" for _, p in rows]
    fig = go.Figure(go.Bar(
        x=[p for _, p in rows], y=[name for name, _ in rows], orientation="h", marker_color=colors,
        text=text, textposition="auto", insidetextanchor="end", cliponaxis=False,
        hovertemplate="%{y}: approval probability %{x:.1%}<extra></extra>",
    ))
    fig.add_vline(x=mistake.threshold, line_width=3, line_color=INK,
                  annotation_text=f"threshold {percent(mistake.threshold)}", annotation_position="top")
    fig.update_layout(
        height=150, margin=dict(l=10, r=10, t=30, b=10), showlegend=False, plot_bgcolor="#eef1f5",
        xaxis=dict(range=[0, 1], tickformat=".0%", fixedrange=True, title=None),
        yaxis=dict(fixedrange=True), uniformtext=dict(minsize=11, mode="show"),
    )
    return fig
