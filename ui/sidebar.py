"""The sidebar every page shares: which model is live (who is here is ui.identity's)."""

from __future__ import annotations

import streamlit as st

from model.core.errors import ModelFolderError, ModelIntegrityError
from model.core.formatting import percent, utc_time
from ui.resources import load_current
from ui.text import md


def model_sidebar() -> None:
    """Which model is live; a model that cannot be loaded is named, not fatal, so that the Model
    page can still roll back to a good version."""
    with st.sidebar:
        st.subheader("Model in use")
        try:
            model = load_current()
        except ModelFolderError:
            st.error("No model folder: see the message on the page.")
            return
        except ModelIntegrityError:
            st.error("The active model cannot be used. Choose another version on the Model page.")
            return
        auc = model.card.auc
        lines = [
            f"**{md(model.name)}**",
            f"Version `{model.sha256[:8]}`, trained {utc_time(model.card.created_at)}",
            f"{'AUC on the labelled data' if model.card.imported else 'Hold-out AUC'} {auc:.3f} · "
            f"threshold {percent(model.threshold)}" if auc is not None
            else f"Threshold {percent(model.threshold)}",
        ]
        st.markdown("  \n".join(lines), help=f"Version id: {model.version}")
