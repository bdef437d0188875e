"""LightningModules: the training algorithms (``scoring``: what scoring a generator needs, without
Lightning)."""
