"""Former home of ``dbn.models.dbn``: a deprecated alias kept for one release (import from
``dbn.models.dbn``; patch names there, not here)."""

import warnings

from dbn.models.dbn import *  # noqa: F401,F403
from dbn.models.classifier import *  # noqa: F401,F403
from dbn.training.configs import HINTON_LAYER  # noqa: F401

warnings.warn("dbn.dbn moved to dbn.models.dbn; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
