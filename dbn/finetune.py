"""Former home of ``dbn.training.finetune``: a deprecated alias kept for one release (import from
``dbn.training.finetune``; patch names there, not here)."""

import warnings

from dbn.training.finetune import *  # noqa: F401,F403
from dbn.training.configs import FineTuneConfig, OPTIMIZERS  # noqa: F401

warnings.warn("dbn.finetune moved to dbn.training.finetune; the old path will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)
