"""Hydra launcher: sweep jobs in parallel on one machine, each in its own process."""
