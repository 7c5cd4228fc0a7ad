"""Partition functions and likelihoods: exact enumeration for small models (``exact``),
annealed importance sampling (``ais``: log Z, biased to flatter a model) and reverse
annealing (``reverse``: RAISE, per-example stochastic lower bounds, the conservative
side), the variational bound of a two-layer DBN (``dbn_bound``)."""
