"""The log-audit service: a hash-chained JSON-lines log of every event, a SQLite read model
of every job, and a read API over it."""
