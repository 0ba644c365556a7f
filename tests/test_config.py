"""Settings are declared once (archiver.config.SETTINGS): bad values are usage errors
that name their source, the file and the environment agree, and the reference in
docs/config.md is generated from the same table."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archiver.config import SETTINGS, load, reference
from store.db import check_db_url, mask_url
from store.errors import ConfigError, UsageError
from tests.support import pool_workers

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "claimwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[digest]\ntimezone = "/etc/passwd"\n', "unknown time zone '/etc/passwd'"),
        ("[service]\nhost_delay = -1\n", "must be from 0 to 3600, not -1"),
        ("[service]\nconcurrency = 100000\n", "must be from 1 to 512"),
        ("[service]\nlease = 1\n", "must be from 10 to 86400"),
        ("[smtp]\nport = 99999\n", "must be from 1 to 65535"),
        ('[service]\nlog_format = "xml"\n', "must be one of text, json"),
        ('[service]\nconcurrency = "many"\n', "must be a whole number"),
        ('[schedule]\ndefault_every = "9999999d"\n', "too long"),
        ('[smtp]\npassword = "hunter2"\n', "put the password in a file"),
        ("[nonsense]\nx = 1\n", "unknown section"),
        ('[smtp]\nfrom = "the desk"\n', "'the desk' is not an e-mail address such as"),
        ('[smtp]\nto = ["ana@example.org", "bob"]\n', "'bob' is not an e-mail address"),
        ('[smtp]\nreply_to = "Ana <ana@example.org>"\n', "is not an e-mail address"),
        ('[web]\nurl = "claimwatch.example.org"\n', "must be an http or https address"),
        ('[web]\nurl = "javascript:alert(1)"\n', "must be an http or https address"),
        ('[web]\nurl = "https://cw.example.org/?token=x"\n', "must not have a query"),
    ],
)
def test_bad_file_values_name_the_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError, match=message) as info:
        load(path, env={})
    assert str(info.value).startswith(str(path))
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLAIMWATCH_CONCURRENCY": "abc"}, "CLAIMWATCH_CONCURRENCY='abc': must be a whole number"),
        ({"CLAIMWATCH_CONCURRENCY": "0"}, "CLAIMWATCH_CONCURRENCY='0': must be from 1"),
        ({"CLAIMWATCH_TIMEZONE": "/etc/passwd"}, "CLAIMWATCH_TIMEZONE='/etc/passwd': unknown"),
        ({"CLAIMWATCH_SMTP_PORT": "99999"}, "CLAIMWATCH_SMTP_PORT='99999': must be from 1"),
        ({"CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "maybe"}, "must be true or false"),
        (  # a line break would add a header to every digest
            {"CLAIMWATCH_SMTP_FROM": "desk@example.org\nBcc: spy@example.net"},
            "CLAIMWATCH_SMTP_FROM=.*is not an e-mail address",
        ),
        ({"CLAIMWATCH_SMTP_TO": "ana@example.org,not-an-address"}, "'not-an-address' is not"),
        ({"CLAIMWATCH_WEB_URL": "https://cw.example.org/a b"}, "CLAIMWATCH_WEB_URL=.*spaces"),
    ],
)
def test_bad_environment_values_name_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(None, env={"CLAIMWATCH_CONFIG": "", **env, "HOME": str(tmp_path)})
    assert "claimwatch.toml" not in str(info.value)


def test_documented_keys_are_accepted_and_the_environment_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[service]\nallow_private_addresses = true\nconcurrency = 8\n"
        '[smtp]\nfrom = "desk@example.org"\nto = ["ana@example.org"]\nsubject_prefix = "[story]"\n'
        "[digest]\nsend_empty = true\n"
        '[web]\nurl = "https://claimwatch.example.org/desk"\n',
    )
    cfg = load(path, env={"CLAIMWATCH_CONCURRENCY": "4"})
    assert cfg.allow_private and cfg.concurrency == 4 and cfg.send_empty
    assert cfg.web_url == "https://claimwatch.example.org/desk"
    assert cfg.smtp.sender == "desk@example.org" and cfg.smtp.recipients == ("ana@example.org",)
    assert cfg.smtp.subject_prefix == "[story]"
    assert load(path, env={"CLAIMWATCH_SMTP_TO": "a@x.org, b@x.org"}).smtp.recipients == (
        "a@x.org",
        "b@x.org",
    )


@pytest.mark.slow
def test_extraction_workers_are_one_per_core_but_one_unless_configured(tmp_path: Path) -> None:
    """The run's own process keeps a core busy fetching; the workers get the others."""
    from archiver.app import pool as pool_module
    from archiver.cli.base import check_options

    assert [pool_module.default_workers(n) for n in (1, 2, 3, 8)] == [1, 1, 2, 7]
    configured = load(write(tmp_path, "[service]\nworkers = 3\n"), env={})
    for cfg, expected in ((load(None, env={}), pool_module.default_workers()), (configured, 3)):
        before = pool_workers()
        pool = pool_module.ExtractionPool(check_options(cfg).processes)
        try:
            executor = pool.executor()
            assert executor is not None  # never extraction in the fetch loop's process
            list(executor.map(time.sleep, [0.5] * 8))  # busy enough to start every worker
            assert len(pool_workers() - before) == expected
        finally:
            pool.close()


def test_a_resized_pool_starts_the_next_run_with_the_new_size() -> None:
    """serve reloads service.workers on SIGHUP: the run under way keeps its pool, the
    next one gets a pool of the new size."""
    from archiver.app import pool as pool_module

    pool = pool_module.ExtractionPool(1)
    try:
        first = pool.executor()
        assert first is not None and pool.executor() is first
        assert not pool.resize(1) and pool.executor() is first
        assert pool.resize(2) and pool.executor() is not first
        assert pool.executor()._max_workers == 2  # type: ignore[union-attr]
        with pytest.raises(RuntimeError, match="after shutdown"):
            first.submit(time.sleep, 0)  # the old pool takes no more work
        assert pool.resize(None) == (pool_module.default_workers() != 2)
    finally:
        pool.close()


def test_every_setting_is_shown_and_secrets_are_masked(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    path = write(tmp_path, f'[smtp]\npassword_file = "{secret}"\n')
    cfg = load(path, env={"CLAIMWATCH_DB": "postgresql://u:p%40ss@db/x"})
    assert cfg.smtp.password == "s3cret"
    shown = cfg.masked()
    assert shown["smtp"]["password"] == "***"
    assert shown["database"]["url"] == "postgresql://u:***@db/x"
    for s in SETTINGS:
        assert s.key in shown[s.section], s.name
    assert "s3cret" not in repr(shown)


def test_a_raw_at_sign_in_a_password_is_masked_whole_and_refused() -> None:
    url = "postgresql://claimwatch:p@ss@word@db.internal/claimwatch"
    assert mask_url(url) == "postgresql://claimwatch:***@db.internal/claimwatch"
    with pytest.raises(UsageError, match="percent-encode"):
        check_db_url(url)
    with pytest.raises(ConfigError, match="percent-encode"):
        load(None, env={"CLAIMWATCH_DB": url, "CLAIMWATCH_CONFIG": ""})
    assert check_db_url("postgresql://claimwatch:p%40ss@db/x")


def test_config_reference_is_current(golden) -> None:  # type: ignore[no-untyped-def]
    golden(ROOT / "docs" / "config.md", reference())


@pytest.mark.e2e
@pytest.mark.slow
def test_digest_reads_the_smtp_section_of_the_file(tmp_path: Path) -> None:
    """It read only the environment: an empty To: and the default From:."""
    cfg = write(
        tmp_path,
        '[smtp]\nfrom = "desk@example.org"\nto = ["ana@example.org"]\n'
        'subject_prefix = "[story]"\n[digest]\nsend_empty = true\n',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMWATCH_")}
    db = f"sqlite:///{tmp_path / 'x.db'}"
    base = [sys.executable, "-m", "archiver.cli", "--db", db, "--config", str(cfg)]
    run = lambda *a: subprocess.run([*base, *a], capture_output=True, text=True, env=env)  # noqa: E731
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    assert run("init", "--seeds", str(tmp_path / "seeds")).returncode == 0
    out = tmp_path / "out"
    r = run("digest", "--dry-run", "--out", str(out))
    assert r.returncode == 0, r.stderr
    [eml] = list(out.glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes())
    assert message["To"] == "ana@example.org"
    assert "desk@example.org" in message["From"]
    assert message["Subject"].startswith("[story]")


def test_a_bad_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load(None, env={"CLAIMWATCH_DB": "postgresql://u:hunter2@x@h/db", "CLAIMWATCH_CONFIG": ""})
    assert "hunter2" not in str(info.value) and str(info.value).startswith("CLAIMWATCH_DB:")


def test_every_default_passes_its_own_check() -> None:
    """``load`` takes a refuse-only check's default as written (no APScheduler at each
    start), so every default must pass the check a file or environment value gets."""
    from archiver import config

    checked = 0
    for s in SETTINGS:
        if s.default is not None:
            config._convert(s, s.default, "the default", s.name)  # raises if it is bad
            checked += s.check is not None
    assert checked >= 3  # default_every, the digest's cron and timezone at least
