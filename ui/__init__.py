"""Rendering helpers shared by the dashboard's pages (this package imports streamlit).

Pages render and call the engine, tools and memory APIs; what several pages
draw the same way lives here: the runtime handle, the workflow <-> canvas
conversion, status colours and escaping of model text.
"""
