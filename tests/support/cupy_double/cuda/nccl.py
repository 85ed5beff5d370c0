"""``cupy.cuda.nccl`` of the double: not available (NCCL needs devices)."""
available = False
