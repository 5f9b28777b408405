"""Static files once collected (refiner/staticfiles.py), through WhiteNoise, on any database.

tests/browser/test_production.py checks the same on a real gunicorn, straight and behind nginx.
"""

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic into a temporary STATIC_ROOT; storages and clients made after it see it."""
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    return tmp_path


def test_the_widget_keeps_its_address_and_the_dashboard_gets_hashed_names(collected):
    assert static("refiner/widget.js") == "/static/refiner/widget.js"
    dashboard = static("refiner/dashboard.css")
    assert dashboard.startswith("/static/refiner/dashboard.") and dashboard != (
        "/static/refiner/dashboard.css"
    )
    assert (collected / dashboard.removeprefix("/static/")).is_file()
    assert (collected / "refiner" / "widget.js.gz").is_file()


def test_the_install_page_prints_the_stable_widget_address(collected, owner):
    page = owner.get("/install/").content.decode()
    assert "/static/refiner/widget.js" in page


def test_the_widget_is_cached_for_minutes_with_an_etag_from_any_origin(collected):
    response = Client().get("/static/refiner/widget.js")

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Access-Control-Allow-Origin"] == "*"
    revalidated = Client().get("/static/refiner/widget.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert revalidated.status_code == 304


def test_hashed_dashboard_assets_are_cached_for_good(collected):
    response = Client().get(static("refiner/dashboard.css"))

    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
