"""Former home of ``dbn.protocols.comparison``: a deprecated alias kept for one release (import from
``dbn.protocols.comparison``; patch names there, not here)."""

import warnings

from dbn.protocols.comparison import *  # noqa: F401,F403

warnings.warn("dbn.comparison moved to dbn.protocols.comparison; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
