"""Former home of ``dbn.estimation.ais``: a deprecated alias kept for one release (import from
``dbn.estimation.ais``; patch names there, not here)."""

import warnings

from dbn.estimation.ais import *  # noqa: F401,F403

warnings.warn("dbn.ais moved to dbn.estimation.ais; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
