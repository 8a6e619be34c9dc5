"""Command-line tools for admins and developers (run them as `python scripts/NAME.py`)."""
