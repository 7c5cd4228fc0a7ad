"""Former home of what is now ``dbn.data``: a deprecated alias kept for one release (import from
``dbn.data``; patch names there, not here)."""

import warnings

from dbn.data.splits import *  # noqa: F401,F403
from dbn.data.mnist import *  # noqa: F401,F403
from dbn.data.pipeline import *  # noqa: F401,F403
from dbn.data.tfds import *  # noqa: F401,F403

warnings.warn("dbn.datasets moved to dbn.data; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
