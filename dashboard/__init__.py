"""KWS Studio's Streamlit dashboard: the entry point (app.py) and shared UI pieces (ui.py)."""
