"""claimwatch: archive a story's coverage, diff every version, flag what bears on its claims."""

import os as _os

# Parallelism comes from processes (extraction workers beside the main one). A multithreaded
# BLAS in each of them spins its threads against the others' (measured on 2 cores:
# 12 s of CPU per page of new coverage matched instead of 2). Set before numpy loads;
# a user's own setting wins. A single process that embeds sentences (``claims match``,
# the bank in ``check``'s main process) gives its embedder more threads instead
# (``archiver.claims.semantic``), unless the user chose OpenMP's thread count: the
# marker says the 1 is ours, and it passes to the processes this one starts.
if "OMP_NUM_THREADS" not in _os.environ:
    _os.environ["CLAIMWATCH_OMP_DEFAULT"] = "1"
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
