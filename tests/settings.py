"""The test suite's settings: refiner.settings as in development.

Production is what refiner.settings gives by default (DEBUG off: HTTPS redirect, secure
cookies, HSTS, no demo page). The suite talks plain HTTP through Django's test client,
so it starts from the development side, whatever the shell exports; pytest-django then
turns DEBUG off for every test. A test that needs production starts its own process
with its own environment (tests/test_safe_defaults.py, tests/browser/test_production.py).
"""

import copy
import os

os.environ["DEBUG"] = "true"

from refiner.settings import *  # noqa: E402, F403

# The read replica's alias, a mirror of the test database: no router sends anything
# to it, except in tests/test_replica.py, which points it at a real streaming replica.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["replica"] = copy.deepcopy(DATABASES["default"])  # noqa: F405
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # noqa: F405
