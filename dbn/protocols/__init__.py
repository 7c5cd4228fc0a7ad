"""Experimental protocols built on the models and training: the pretrained-vs-random
comparison and its run cache (``comparison``), and the statistics of its seeds
(``statistics``: means, failed runs, Welch t-tests; no TensorFlow)."""
