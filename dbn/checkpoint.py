"""Former home of ``dbn.training.checkpoint``: a deprecated alias kept for one release (import from
``dbn.training.checkpoint``; patch names there, not here)."""

import warnings

from dbn.training.checkpoint import *  # noqa: F401,F403

warnings.warn("dbn.checkpoint moved to dbn.training.checkpoint; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
