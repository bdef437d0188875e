"""Hydra sweeper that drives Optuna directly (hydra-optuna-sweeper pins optuna<3)."""
