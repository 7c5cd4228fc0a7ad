"""Former home of ``dbn.models.rbm``: a deprecated alias kept for one release (import from
``dbn.models.rbm``; patch names there, not here)."""

import warnings

from dbn.models.rbm import *  # noqa: F401,F403
from dbn.ops import *  # noqa: F401,F403
from dbn.estimation.exact import *  # noqa: F401,F403
from dbn.training.callbacks import MomentumSchedule  # noqa: F401

warnings.warn("dbn.rbm moved to dbn.models.rbm; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
