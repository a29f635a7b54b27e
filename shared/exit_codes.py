"""The exit codes jobsuite's processes end with, beside 0 (done) and 1 (failed)."""

from __future__ import annotations

# A setting is missing or malformed (one line on stderr says which).
EXIT_CONFIG = 2
# A job thread ignored its time limit (EX_SOFTWARE): the supervisor starts the worker again.
EXIT_JOB_STUCK = 70
# A second SIGTERM/SIGINT: exit at once, the broker redelivers the job in hand.
EXIT_ABORTED = 130
