"""The dashboard's entry point: navigation over pages/ and nothing else."""

import streamlit as st

st.set_page_config(page_title="Workflow Studio", page_icon=":material/account_tree:", layout="wide")
page = st.navigation([st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)])
page.run()
