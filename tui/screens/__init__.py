"""Screens of the academy-tui app."""
