"""Sending mail over SMTP: the I/O edge of the digest.

Settings come from the config file and from ``CLAIMWATCH_SMTP_*`` environment
variables (these names are part of the contract). The password comes from
``CLAIMWATCH_SMTP_PASSWORD`` or a file named by ``CLAIMWATCH_SMTP_PASSWORD_FILE``,
never from the command line, and never appears in ``repr`` or errors.
Transient failures (connection trouble, 4xx replies) are retried with backoff;
a 5xx reply is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from store.errors import ClaimwatchError, UsageError

if TYPE_CHECKING:  # email and ssl load when a message is built or sent, not with the config
    from email.message import EmailMessage

TLS_MODES = ("none", "starttls", "ssl")


class SendError(ClaimwatchError):
    """The SMTP server would not take the message (after retries)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int | None = None  # default by TLS mode: 25, 587, 465
    tls: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "claimwatch@localhost"
    recipients: tuple[str, ...] = ()
    reply_to: str | None = None
    subject_prefix: str = "[claimwatch]"
    timeout: float = 30.0
    attempts: int = 3
    backoff: float = 2.0
    verify_tls: bool = True

    @property
    def effective_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "ssl": 465}[self.tls]

    def masked(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.effective_port,
            "tls": self.tls,
            "user": self.user,
            "password": "***" if self.password else None,
            "from": self.sender,
            "to": list(self.recipients),
            "reply_to": self.reply_to,
            "subject_prefix": self.subject_prefix,
        }


def build_message(
    subject: str, text: str, html: str, settings: SmtpSettings, message_id: str, date: str
) -> EmailMessage:
    """A multipart/alternative message; the subject must already be header-safe."""
    from email.message import EmailMessage
    from email.utils import formataddr

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr(("claimwatch", settings.sender))
    msg["To"] = ", ".join(settings.recipients)
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Message-ID"] = message_id
    msg["Date"] = date
    # Quoted-printable keeps every line short: SMTP refuses lines over 998 bytes
    # (RFC 5321), and inline-styled HTML easily has them.
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg


def to_bytes(message: EmailMessage) -> bytes:
    """The message as sent: CRLF line ends (smtplib does not fix them for bytes)."""
    from email.policy import SMTP

    return message.as_bytes(policy=SMTP)


def new_message_id(settings: SmtpSettings) -> str:
    domain = settings.sender.rpartition("@")[2] or "claimwatch.local"
    from email.utils import make_msgid

    return make_msgid("digest", domain=domain)


def send(
    message: bytes,
    settings: SmtpSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send raw message bytes to ``settings.recipients``; raises ``SendError``."""
    import smtplib  # only commands that send pay for it

    if not settings.recipients:
        raise UsageError("no recipients: set CLAIMWATCH_SMTP_TO (comma-separated)")
    where = f"{settings.host}:{settings.effective_port}"
    for attempt in range(1, settings.attempts + 1):
        try:
            _deliver(message, settings)
            return
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500 or attempt == settings.attempts:
                reply = (
                    exc.smtp_error.decode("utf-8", "replace")
                    if isinstance(exc.smtp_error, bytes)
                    else exc.smtp_error
                )
                raise SendError(
                    f"SMTP server {where} refused the digest: {exc.smtp_code} {reply}"
                ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(
                f"SMTP server {where} refused every recipient: {sorted(exc.recipients)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            if attempt == settings.attempts:
                raise SendError(
                    f"cannot send the digest through {where}: {type(exc).__name__}: {exc}"
                ) from None
        sleep(settings.backoff * 2 ** (attempt - 1))


def _deliver(message: bytes, s: SmtpSettings) -> None:
    import smtplib
    import ssl

    context = ssl.create_default_context()
    if not s.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    smtp: smtplib.SMTP
    if s.tls == "ssl":
        smtp = smtplib.SMTP_SSL(s.host, s.effective_port, timeout=s.timeout, context=context)
    else:
        smtp = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout)
    with smtp:
        smtp.ehlo()
        if s.tls == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if s.user:
            smtp.login(s.user, s.password or "")
        smtp.sendmail(s.sender, list(s.recipients), message)
