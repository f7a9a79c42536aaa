"""LoanDesk: st.navigation over the pages, and the sidebar they share.

The pages live in app_pages/, not pages/: a folder named pages/ switches Streamlit to its legacy
multipage mode, and a deep link (say /monitoring) opened on a fresh server then runs the page alone,
without this file's navigation and sidebar.
"""

import streamlit as st

from ui.sidebar import model_sidebar

st.set_page_config(page_title="LoanDesk", page_icon=":material/account_balance:", layout="wide")
page = st.navigation([
    st.Page("app_pages/decide.py", title="Decide", icon=":material/gavel:", default=True),
    st.Page("app_pages/batch.py", title="Batch", icon=":material/table_view:"),
    st.Page("app_pages/model.py", title="Model", icon=":material/insights:"),
    st.Page("app_pages/monitoring.py", title="Monitoring", icon=":material/monitor_heart:"),
    st.Page("app_pages/learn.py", title="Learn", icon=":material/school:"),
])
model_sidebar()
page.run()
