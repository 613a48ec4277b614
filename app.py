"""The dashboard's entry point: navigation over views/ (the pages) and nothing else."""

import streamlit as st

from ui import run_form
from ui.runtime import runtime_or_stop

st.set_page_config(page_title="Workflow Studio", page_icon=":material/account_tree:", layout="wide")
page = st.navigation(
    [
        st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("views/builder.py", title="Builder", icon=":material/schema:"),
        st.Page("views/run.py", title="Run", icon=":material/play_circle:"),
        st.Page("views/history.py", title="History", icon=":material/history:"),
        st.Page("views/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("views/memory.py", title="Memory", icon=":material/psychology:"),
        st.Page("views/tools.py", title="Tools", icon=":material/build:"),
        st.Page("views/settings.py", title="Settings", icon=":material/settings:"),
    ]
)
runtime_or_stop()  # a store that cannot be opened: its one line on every page, no traceback
run_form.carry_out_start()  # a run the Builder's Run form asked for: start it, open the Run page
page.run()
