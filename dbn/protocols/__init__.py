"""Experimental protocols built on the models and training: the pretrained-vs-random
comparison and its run cache (``comparison``)."""
