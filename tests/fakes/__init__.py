"""Local fake servers standing in for the platforms our channels talk to."""
