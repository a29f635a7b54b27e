"""`jobsuite`: the command line for people running the suite (Typer + rich).

Each group of commands lives in its own module with a `register(app)` function; `app.py`
puts them together.
"""
