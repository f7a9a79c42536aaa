"""LoanDesk: st.navigation over the pages, and the sidebar they share."""

import streamlit as st

from ui.sidebar import model_sidebar

st.set_page_config(page_title="LoanDesk", page_icon=":material/account_balance:", layout="wide")
page = st.navigation([
    st.Page("pages/decide.py", title="Decide", icon=":material/gavel:", default=True),
    st.Page("pages/batch.py", title="Batch", icon=":material/table_view:"),
    st.Page("pages/model.py", title="Model", icon=":material/insights:"),
    st.Page("pages/monitoring.py", title="Monitoring", icon=":material/monitor_heart:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
])
model_sidebar()
page.run()
