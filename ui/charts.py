"""Plotly figures for a decision: the probability bar, the sensitivity curve and the 2-D map."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from model.core.formatting import format_value, percent
from model.core.metrics import approves
from model.core.schema import Field
from model.scoring.explain import Curve, Grid
from ui.text import plot

APPROVE = "#2e7d32"
REJECT = "#c62828"
REFER = "#b26a00"  # a case inside the refer band, for an underwriter
INK = "#1b2733"
LINE = "#1f4e79"


def _axis_format(f: Field) -> dict:
    if f.unit == "$":
        return {"tickprefix": "$", "tickformat": ",.0f"}
    return {"ticksuffix": f" {f.unit}" if f.unit and f.unit != "points" else ""}


def _hline(y: float, **line) -> dict:
    return dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y, line=line)


def _vline(x: float, **line) -> dict:
    return dict(type="line", yref="paper", y0=0, y1=1, xref="x", x0=x, x1=x, line=line)


def _band(y0: float, y1: float, color: str) -> dict:
    return dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=y0, y1=y1, fillcolor=color,
                opacity=0.08, line_width=0, layer="below")


def probability_bar(probability: float, threshold: float) -> go.Figure:
    """The calibrated probability against the threshold, on one bar."""
    # Figures are built in one go (shapes as layout dicts): plotly's add_* helpers validate on
    # every call and cost more than the model itself.
    approved = approves(probability, threshold)
    return go.Figure(
        data=[go.Bar(x=[probability], y=[""], orientation="h", marker_color=APPROVE if approved else REJECT,
                     hovertemplate="Approval probability %{x:.1%}<extra></extra>")],
        layout=dict(
            height=110, margin=dict(l=10, r=10, t=30, b=10), showlegend=False, plot_bgcolor="#eef1f5",
            xaxis=dict(range=[0, 1.001], tickformat=".0%", dtick=0.2, fixedrange=True),
            yaxis=dict(fixedrange=True),
            shapes=[_vline(threshold, color=INK, width=3)],
            annotations=[dict(x=threshold, y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                              text=f"threshold {percent(threshold)}")],
        ),
    )


def sensitivity_figure(curve: Curve, f: Field) -> go.Figure:
    """Approval probability as one field varies, regions shaded, applicant and flip point marked."""
    data = [go.Scatter(
        x=curve.values, y=curve.probabilities, mode="lines", name="Approval probability",
        line=dict(color=LINE, width=3),
        hovertemplate=f"{plot(f.label)} %{{x:,.0f}}<br>Approval probability %{{y:.1%}}<extra></extra>",
    )]
    if curve.current is not None:
        data.append(go.Scatter(
            x=[curve.current], y=[curve.current_probability], mode="markers", name="This applicant",
            marker=dict(size=14, color=INK, symbol="diamond", line=dict(color="white", width=2)),
            hovertemplate=f"This applicant: {plot(format_value(f, curve.current))}<br>%{{y:.1%}}<extra></extra>",
        ))
    shapes = [_band(curve.threshold, 1, APPROVE), _band(0, curve.threshold, REJECT),
              _hline(curve.threshold, color=INK, dash="dash")]
    annotations = [
        dict(text="Approve", x=0, y=1, xref="paper", yref="y", xanchor="left", yanchor="top", showarrow=False),
        dict(text="Reject", x=0, y=0, xref="paper", yref="y", xanchor="left", yanchor="bottom", showarrow=False),
        dict(text=f"threshold {percent(curve.threshold)}", x=1, y=curve.threshold, xref="paper", yref="y",
             xanchor="right", yanchor="bottom", showarrow=False),
    ]
    for flip in curve.flips:
        shapes.append(_vline(flip, color=APPROVE, dash="dot"))
        annotations.append(dict(x=flip, y=curve.threshold, text=f"flips at {plot(format_value(f, flip))}",
                                showarrow=True, arrowhead=2, ax=40, ay=-40, bgcolor="white"))
    return go.Figure(data=data, layout=dict(
        height=380, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.2),
        xaxis=dict(title=plot(f.title), range=_view(curve, f), **_axis_format(f)),
        yaxis=dict(title="Approval probability", range=[0, 1], tickformat=".0%"),
        plot_bgcolor="white", hovermode="x unified", shapes=shapes, annotations=annotations,
    ))


def _view(curve: Curve, f: Field) -> list[float]:
    """Zoom on the middle 98% of training values, widened to show the applicant and the flip point."""
    lo = f.train_p01 if f.train_p01 is not None else curve.values[0]
    hi = f.train_p99 if f.train_p99 is not None else curve.values[-1]
    shown = [v for v in (curve.current, *curve.flips) if v is not None]
    lo, hi = min([lo, *shown]), max([hi, *shown])
    pad = 0.03 * (hi - lo)
    return [max(curve.values[0], lo - pad), min(curve.values[-1], hi + pad)]


def heatmap_figure(grid: Grid, fx: Field, fy: Field) -> go.Figure:
    """Approval probability over two fields, the threshold contour drawn, the applicant marked."""
    data = [
        go.Heatmap(
            x=grid.xs, y=grid.ys, z=grid.probabilities, zmin=0, zmax=1, zmid=grid.threshold,
            colorscale=[[0, REJECT], [0.5, "#f7f7f7"], [1, APPROVE]],
            colorbar=dict(title="Approval<br>probability", tickformat=".0%"),
            hovertemplate=f"{plot(fx.label)} %{{x:,.0f}}<br>{plot(fy.label)} %{{y:,.0f}}<br>%{{z:.1%}}<extra></extra>",
        ),
        go.Contour(
            x=grid.xs, y=grid.ys, z=grid.probabilities, showscale=False, hoverinfo="skip",
            contours=dict(start=grid.threshold, end=grid.threshold, size=1, coloring="none"),
            line=dict(color=INK, width=2, dash="dash"), name="threshold", showlegend=False,
        ),
    ]
    x, y = grid.current
    if x is not None and y is not None and np.isfinite([x, y]).all():
        data.append(go.Scatter(
            x=[x], y=[y], mode="markers+text", text=["This applicant"], textposition="top center",
            textfont=dict(color=INK, size=13), showlegend=False, hoverinfo="skip",
            marker=dict(size=14, color=INK, symbol="diamond", line=dict(color="white", width=2)),
        ))
    return go.Figure(data=data, layout=dict(
        height=420, margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title=plot(fx.title), **_axis_format(fx)), yaxis=dict(title=plot(fy.title), **_axis_format(fy)),
    ))
