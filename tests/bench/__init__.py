"""`make bench`: jobsuite side by side with what users would pick instead (not collected by
`make test`: pytest's testpaths leave this folder out)."""
