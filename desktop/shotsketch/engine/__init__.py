"""Generation on Wan2.2 TI2V-5B through diffusers. No Qt.

Nothing here reaches the network unless the user asks for a download: every load passes
local_files_only, and the hub's telemetry is off.
"""

import os as _os

_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
