"""Safe defaults: production unless told otherwise, and no start with the development key.

Each case runs manage.py or imports refiner.wsgi in a fresh process with a clean
environment, as on a server: the suite's own settings (tests/settings.py) are the
development ones.
"""

import re
import secrets
import sqlite3
from pathlib import Path

from django.conf import settings

from tests.test_security_web import run_manage

BASE_DIR = Path(settings.BASE_DIR)
PRINT_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.DEMO_PAGE_ENABLED)"
)


def test_debug_is_off_by_default_with_the_https_settings_on():
    result = run_manage(
        "shell", "-v", "0", "-c", PRINT_SETTINGS, SECRET_KEY=secrets.token_urlsafe(50)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "False"]


def test_debug_true_is_the_development_configuration():
    result = run_manage("shell", "-v", "0", "-c", PRINT_SETTINGS, DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False", "True"]


def test_check_refuses_the_development_secret_key_with_debug_off():
    result = run_manage("check")

    assert result.returncode != 0
    assert "refiner.E001" in result.stderr
    assert "SECRET_KEY is the development key" in result.stderr


def test_migrate_refuses_it_too_before_creating_a_table(tmp_path):
    database = tmp_path / "db.sqlite3"
    result = run_manage("migrate", "--noinput", DATABASE_URL=f"sqlite:///{database}")

    assert result.returncode != 0
    assert "refiner.E001" in result.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []


def test_gunicorns_entry_point_refuses_the_development_secret_key():
    result = run_manage("shell", "-v", "0", "-c", "import refiner.wsgi")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "refiner.E001" in result.stderr


def test_a_real_secret_key_or_debug_on_passes_the_check():
    assert run_manage("check", SECRET_KEY=secrets.token_urlsafe(50)).returncode == 0
    assert run_manage("check", DEBUG="true").returncode == 0


def settings_read_from_the_environment() -> set[str]:
    source = (BASE_DIR / "refiner" / "settings.py").read_text()
    return set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def test_every_setting_read_from_the_environment_is_in_the_readme():
    readme = (BASE_DIR / "README.md").read_text()
    table_rows = [line for line in readme.splitlines() if line.startswith("| `")]
    documented = set(
        re.findall(r"`([A-Z][A-Z0-9_]*)`", "\n".join(row.split("|")[1] for row in table_rows))
    )

    names = settings_read_from_the_environment()

    assert {"DEBUG", "SECRET_KEY", "DB_CONNECT_TIMEOUT", "METRICS_TOKEN"} <= names
    assert sorted(names - documented) == []
