"""Alembic migrations: one set serves SQLite and PostgreSQL."""
