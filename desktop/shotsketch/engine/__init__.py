"""Generation on Wan2.2 TI2V-5B through diffusers. No Qt.

Nothing here reaches the network unless the user asks for a download: every load passes
local_files_only, and the hub's telemetry is off.
"""

import os as _os

_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# The CUDA allocator grows its segments in place instead of caching fixed blocks: a model moved
# on and off the GPU, or a decode after the steps, no longer leaves the memory in fragments that a
# later job cannot use (a 24 GiB card's second 720p job ran out of memory that way: bench/RESULTS.md
# session 4, run 25). Read when CUDA first allocates; a setting of the user's own is kept. Linux
# only (elsewhere PyTorch ignores it with a warning).
if _os.name == "posix" and "PYTORCH_CUDA_ALLOC_CONF" not in _os.environ and "PYTORCH_ALLOC_CONF" not in _os.environ:
    _os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
