"""Callbacks that observe training: checkpoints, sample grids, iteration budget."""

from ganlab.callbacks.checkpoint import IterationBudget, LastCheckpoint, RunConfig, StopSignal
from ganlab.callbacks.samples import SampleGrid

__all__ = ["IterationBudget", "LastCheckpoint", "RunConfig", "SampleGrid", "StopSignal"]
