"""Callbacks that observe training: checkpoints, sample grids, iteration budget."""

from ganlab.callbacks.checkpoint import IterationBudget, LastCheckpoint, RunConfig, StopSignal
from ganlab.callbacks.progress import NetworkSummary, ProgressBar
from ganlab.callbacks.samples import SampleGrid

__all__ = [
    "IterationBudget",
    "LastCheckpoint",
    "NetworkSummary",
    "ProgressBar",
    "RunConfig",
    "SampleGrid",
    "StopSignal",
]
