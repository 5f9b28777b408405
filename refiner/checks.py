"""System checks that stop a production start with settings only fit for development.

`manage.py check`, `migrate` and `runserver` run them; refiner/wsgi.py runs them before
gunicorn serves a request, since gunicorn runs no checks of its own.
"""

from django.conf import settings
from django.core import checks

TAG = "refiner"


@checks.register(TAG)
def production_secret_key(app_configs, **kwargs) -> list[checks.Error]:
    """Sessions, CSRF tokens and password resets are signed with SECRET_KEY: the one in
    the repository signs nothing safely."""
    if settings.DEBUG or settings.SECRET_KEY != settings.DEVELOPMENT_SECRET_KEY:
        return []
    return [
        checks.Error(
            "DEBUG is off but SECRET_KEY is the development key from the repository.",
            hint=(
                "Set SECRET_KEY in the environment to a long random value, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, "
                "or set DEBUG=true on a development machine."
            ),
            id="refiner.E001",
        )
    ]


def refuse_to_start() -> None:
    """Raise with every failed check's message, for entry points that run no checks."""
    failed = [e for e in checks.run_checks(tags=[TAG]) if e.is_serious()]
    if failed:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("\n".join(str(e) for e in failed))
