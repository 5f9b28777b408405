import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refiner.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: refuse to serve with a development-only configuration.
from refiner.checks import refuse_to_start  # noqa: E402

refuse_to_start()
