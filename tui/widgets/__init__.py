"""Widgets of the academy-tui app."""
