"""A source URL's login is no longer recorded by its checks: before, a source added as
``https://user:password@host/page`` kept the password in each version's and
capture's final URL, in a version's site name (the extractor's fallback is the URL's
authority), in a failed capture's error message and in the robots.txt cache's
origin. This takes it out of the rows already written, as the fetcher now does
before anything is recorded: a final URL loses its user information, a site name
that was that authority keeps only the host, an error message shows the password
as ``***``, and a robots.txt entry under such an origin is dropped (a cache: it is
fetched again without the login). Only rows holding an '@' are read.

Revision ID: 0016
Revises: 0015
"""

import re
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_LOGIN_IN_TEXT = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s:@]*:)[^/?#\s]*@")


def _bare(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _upgrade_table(name: str, *columns: str) -> None:
    conn = op.get_bind()
    table = sa.table(name, sa.column("id"), *(sa.column(c) for c in columns))
    holding = sa.or_(*(table.c[c].like("%@%") for c in columns))
    for row in conn.execute(sa.select(table).where(holding)).mappings().all():
        values = _cleaned(row)
        if values:
            conn.execute(sa.update(table).where(table.c.id == row["id"]).values(**values))


def _cleaned(row: sa.RowMapping) -> dict[str, str]:
    values = {}
    url = row.get("final_url")
    if url and "@" in url:
        values["final_url"] = _bare(url)
        site = row.get("site_name")
        if site and site == urlsplit(url).netloc:  # the authority, login and all
            values["site_name"] = site.rpartition("@")[2]
    message = row.get("error_message")
    if message and "@" in message:
        values["error_message"] = _LOGIN_IN_TEXT.sub(r"\1***@", message)
    return {k: v for k, v in values.items() if v != row.get(k)}


def upgrade() -> None:
    _upgrade_table("versions", "final_url", "site_name")
    _upgrade_table("captures", "final_url", "error_message")
    robots = sa.table("robots", sa.column("origin"))
    op.get_bind().execute(sa.delete(robots).where(robots.c.origin.like("%@%")))


def downgrade() -> None:
    pass  # what was taken out is not put back
