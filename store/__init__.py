"""Versioned storage: schema and migrations, the blob store, and the repository API."""
