"""Streamlit helpers of the dashboard (`app.py`, `pages/`): URL state, sidebar, cached calls, rendering.

Everything here may import streamlit; the computation itself lives in `embspace/`.
"""
