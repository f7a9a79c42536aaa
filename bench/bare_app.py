"""The baseline for bench_ui.py: Streamlit's own round trip with the same form and one plotly chart."""

import plotly.graph_objects as go
import streamlit as st

st.set_page_config(layout="wide")
st.title("Decide on an application")
with st.form("bare"):
    income = st.number_input("Annual income ($)", value=62_000, step=1000)
    st.form_submit_button("Decide")
fig = go.Figure(go.Scatter(x=[0, 200_000], y=[0, 1], mode="lines"))
fig.add_trace(go.Scatter(x=[income], y=[0.5], mode="markers"))
st.plotly_chart(fig)
st.plotly_chart(fig, key="second")
