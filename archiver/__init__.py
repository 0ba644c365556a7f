"""claimwatch: archive a story's coverage, diff every version, flag what bears on its claims."""

import os as _os

# Parallelism comes from processes (one extraction worker per core). A multithreaded
# BLAS in each of them spins its threads against the others' (measured on 2 cores:
# 12 s of CPU per page of new coverage matched instead of 2). Set before numpy loads;
# a user's own setting wins.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
