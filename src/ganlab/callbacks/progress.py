"""The console: a short model summary, and a progress bar with iterations/s, the losses at the
logging cadence and the last FID."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)


class ProgressBar(RichProgressBar):
    """Lightning's Rich bar without ``v_num`` (the logger's version: noise in the console); the
    modules put ``loss_d``/``loss_g`` (CycleGAN: ``loss_g``, ``loss_d_a``, ``loss_d_b``) and the FID
    callback the last ``fid`` in it."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def _get_train_description(self, current_epoch: int) -> str:
        # "Epoch 3/24"; with no epoch limit (max_iters) "Epoch 3", not Lightning's "Epoch 3/-2"
        max_epochs = self.trainer.max_epochs
        limit = f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else ""
        return f"{f'Epoch {current_epoch}{limit}':{len(self.validation_description)}}"


class NetworkSummary(ModelSummary):
    """The networks and their parameter counts, in one small table. Lightning's summary adds a
    FLOPs column and "Total FLOPs: 0" (no ``example_input_array``: GANs have two inputs) and
    train/eval module counts: noise at the start of every run."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = dict(summary_data)
        table = Table(header_style="bold", box=None, pad_edge=False)
        for name in ("Name", "Type", "Params"):
            table.add_column(name, justify="right" if name == "Params" else "left")
        for row in zip(columns["Name"], columns["Type"], columns["Params"], strict=True):
            table.add_row(*row)
        frozen = total_parameters - trainable_parameters
        total = f"{get_human_readable_count(int(total_parameters))} parameters"
        table.caption = (
            f"{total}{f' ({get_human_readable_count(frozen)} frozen)' if frozen else ''}, "
            f"{get_formatted_model_size(model_size)} MB"
        )
        get_console().print(table)
