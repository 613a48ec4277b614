"""Browser tests: the dashboard under `streamlit run`, driven by Playwright with Debian's Chromium."""
