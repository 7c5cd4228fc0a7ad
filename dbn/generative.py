"""Former home of ``dbn.models.generative``: a deprecated alias kept for one release (import from
``dbn.models.generative``; patch names there, not here)."""

import warnings

from dbn.models.generative import *  # noqa: F401,F403
from dbn.training.configs import UpDownConfig  # noqa: F401

warnings.warn("dbn.generative moved to dbn.models.generative; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
