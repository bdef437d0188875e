"""Plain ``nn.Module`` networks; nothing here imports Lightning or Hydra."""
