"""LightningDataModules (MNIST, CIFAR-10, CelebA, image folders, unpaired and paired folders), their
plain code in ``ganlab.data.sets``, and the safe download and extraction helpers."""
