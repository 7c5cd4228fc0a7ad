"""Named random streams: every seed the package derives from a user's seed is made here,
one function per stream, so the arithmetic lives in one place.  (The formulas are those
the committed results were computed with; changing one changes every result.)  Pure
Python: importing it is free."""

OUTPUT_LAYER = 999  # layer index of the classifiers' softmax layer in ``layer_seed``


def layer_seed(seed, layer):
    """Stream of layer ``layer`` (RBM initialisation and pretraining, classifier kernels,
    dropout masks; the generative DBN's top RBM is layer ``len(layer_sizes)``)."""
    return seed * 1000 + layer


def epoch_seed(seed, epoch):
    """Stream of epoch ``epoch``: shuffling and binarization of its batches, up-down steps."""
    return seed * 100_003 + epoch


def chain_seed(seed, steps_done):
    """Stream of a generative chain continued after ``steps_done`` Gibbs steps."""
    return seed * 7919 + steps_done
