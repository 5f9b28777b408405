"""The test suite's settings: refiner.settings as in development.

Production is what refiner.settings gives by default (DEBUG off: HTTPS redirect, secure
cookies, HSTS, no demo page). The suite talks plain HTTP through Django's test client,
so it starts from the development side, whatever the shell exports; pytest-django then
turns DEBUG off for every test. A test that needs production starts its own process
with its own environment (tests/test_safe_defaults.py, tests/browser/test_production.py).
"""

import os

os.environ["DEBUG"] = "true"

from refiner.settings import *  # noqa: E402, F403
