"""claimwatch: archive a story's coverage, diff every version, flag what bears on its claims."""

__version__ = "0.1.0"
