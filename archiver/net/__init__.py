"""The network edges: HTTP fetching (fetch) behind the address guard (guard), the
browser fetcher, feed and sitemap parsing (feeds), and SMTP (mailer).

Imports nothing else from archiver/ but its own modules (tests/test_layers.py).
"""
