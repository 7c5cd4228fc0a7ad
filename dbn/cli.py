"""Former home of ``dbn.options``: a deprecated alias kept for one release (import from
``dbn.options``; patch names there, not here)."""

import warnings

from dbn.options import *  # noqa: F401,F403

warnings.warn("dbn.cli moved to dbn.options; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
