"""Models: the RBM (``rbm``), the DBN stack (``dbn``), its unrolled classifier and random
twins (``classifier``), and the generative DBN with label units (``generative``)."""
