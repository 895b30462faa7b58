"""Holding Reply: honest automatic first replies for public bodies, and one queue for the team."""

__version__ = "0.1.0"
