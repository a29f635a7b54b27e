"""`make bench` (`python -m benchmarks`): jobsuite side by side with what users would pick
instead, and optionally against a baseline tree in the same run. Not shipped (pyproject's
package find leaves it out) and not collected by `make test` (pytest's testpaths)."""
