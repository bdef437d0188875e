"""ganlab: GAN experiments on Lightning + Hydra."""
