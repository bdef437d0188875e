"""LightningDataModules: MNIST, CIFAR-10; safe download and extraction helpers."""
