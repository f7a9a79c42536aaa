"""The sidebar every page shares: which model is live, and who is deciding."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from model.formatting import percent
from model.predictor import LoanModel


def trained_when(card: dict) -> str:
    created = card.get("created_at", "")
    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00")).strftime("%d %b %Y, %H:%M UTC")
    except ValueError:
        return created or "unknown"


def model_sidebar(model: LoanModel) -> None:
    with st.sidebar:
        st.subheader("Model in use")
        auc = model.card.get("metrics", {}).get("auc")
        lines = [
            f"**{model.name}**",
            f"Version `{model.sha256[:8]}`, trained {trained_when(model.card)}",
            f"Hold-out AUC {auc:.3f} · threshold {percent(model.threshold)}" if auc is not None
            else f"Threshold {percent(model.threshold)}",
        ]
        st.markdown("  \n".join(lines), help=f"Version id: {model.version}")
        st.text_input("Officer name", key="officer", placeholder="Your name, for the decision log",
                      help="Recorded with every decision you make in this session.")
