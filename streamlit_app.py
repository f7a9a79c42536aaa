"""LoanDesk: the sign-in gate, then st.navigation over the pages the person's roles allow, and the sidebar.

The pages live in app_pages/, not pages/: a folder named pages/ switches Streamlit to its legacy
multipage mode, and a deep link (say /monitoring) opened on a fresh server then runs the page alone,
without this file's navigation and sidebar. A page a role may not use is not registered at all,
so neither the menu nor a deep link reaches it.
"""

from pathlib import Path

import streamlit as st

from model.records.access import Action
from ui.identity import gate
from ui.sidebar import model_sidebar

ICON = Path(__file__).resolve().parent / "assets" / "loandesk.png"  # served by this server, never a CDN
PAGES = [  # (file, title, icon, who may open it)
    ("app_pages/decide.py", "Decide", ":material/gavel:", Action.DECIDE),
    ("app_pages/batch.py", "Batch", ":material/table_view:", Action.SCORE_BATCH),
    ("app_pages/model.py", "Model", ":material/insights:", Action.VIEW_MODEL),
    ("app_pages/monitoring.py", "Monitoring", ":material/monitor_heart:", Action.VIEW_MONITORING),
    ("app_pages/learn.py", "Learn", ":material/school:", Action.LEARN),
    ("app_pages/people.py", "People", ":material/group:", Action.MANAGE_PEOPLE),
]

st.set_page_config(page_title="LoanDesk", page_icon=str(ICON), layout="wide")
actor = gate()
allowed = [(path, title, icon) for path, title, icon, action in PAGES if actor.may(action)]
page = st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                      for i, (path, title, icon) in enumerate(allowed)])
if actor.may(Action.DECIDE) or actor.may(Action.VIEW_MODEL):
    model_sidebar()
page.run()
