"""ganlab_examples: your own GAN, as a plugin. Importing the package registers its parts."""

from ganlab_examples import losses, nets, rgan

__all__ = ["losses", "nets", "rgan"]
