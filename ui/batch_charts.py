"""Plotly figures for the Batch page: how a batch's approval probabilities fall around the threshold."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import plotly.graph_objects as go

from model.core.formatting import percent
from model.core.metrics import approves
from ui.charts import APPROVE, INK, REJECT

BINS = 50  # 2-point bins: fine enough to see the threshold's neighbourhood


def probability_histogram(probabilities: np.ndarray, threshold: float) -> go.Figure:
    """Rows per approval-probability bin, coloured by the side of the threshold they fall on.

    Binned here with numpy, so a million rows send fifty bars to the browser, not a million points.
    """
    p = np.asarray(probabilities, dtype=float)
    counts, edges = np.histogram(p[~np.isnan(p)], bins=BINS, range=(0.0, 1.0))
    centers = (edges[:-1] + edges[1:]) / 2
    colors = [APPROVE if approves(float(lo), threshold) else REJECT for lo in edges[:-1]]
    labels = [f"{percent(lo, 0)}–{percent(hi, 0)}" for lo, hi in pairwise(edges)]
    fig = go.Figure(go.Bar(
        x=centers, y=counts, width=edges[1] - edges[0], marker_color=colors, customdata=labels,
        hovertemplate="Approval probability %{customdata}<br>%{y:,} rows<extra></extra>",
    ))
    fig.add_vline(x=threshold, line_width=3, line_dash="dash", line_color=INK,
                  annotation_text=f"threshold {percent(threshold)}", annotation_position="top")
    fig.update_layout(
        height=320, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, bargap=0.05,
        xaxis=dict(title="Approval probability", range=[0, 1], tickformat=".0%"),
        yaxis=dict(title="Rows", tickformat=",d", rangemode="tozero"),
        plot_bgcolor="white",
    )
    return fig
