"""Exceptions and casework: the ops inbox of open cases and how each kind of case is
resolved."""
