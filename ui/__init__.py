"""What the Streamlit pages share: the cached model and log, the sidebar, forms and figures."""
