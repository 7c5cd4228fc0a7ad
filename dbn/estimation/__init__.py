"""Partition functions and likelihoods: exact enumeration for small models (``exact``),
annealed importance sampling (``ais``)."""
