"""`jobsuite`: the command line for people running the suite (Typer + rich).

A client of the services, not a library: it may read the audit service's log format and dead
letters through `services.audit`, which `shared/` never may.

Each group of commands lives in its own module with a `register(app)` function; `app.py`
puts them together.
"""
