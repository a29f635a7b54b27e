"""The templates: each turns validated data into a story of flowables (see `base.py`)."""
