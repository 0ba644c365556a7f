"""Scheduling: the service, job functions and leases (built on the archive spine)."""
