"""podworker's stand-in for the `runpod` package (runpod-python), first on the import path of a
handler that `worker --python handler.py` runs. It carries what a serverless handler file uses:
runpod.serverless.start, progress_update, is_cancelled, and a logger. The real SDK need not be
installed; what this package does not carry fails at import or at call with a message saying so.
See docs/handlers.md, "Bring your runpod-python handler".
"""

from . import serverless
from .serverless import RunPodLogger

# The runpod-python release whose worker protocol podworker speaks (the worker reports the same).
__version__ = "1.12.0"

__all__ = ["serverless", "RunPodLogger", "__version__"]
