"""The audit console: a web page over the read model and the broker (routes.py, pages.py)."""
