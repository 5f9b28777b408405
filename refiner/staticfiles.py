"""Static files in production: hashed names for the dashboard, one stable name for the widget.

WhiteNoise serves what `collectstatic` wrote to STATIC_ROOT. The dashboard's CSS and
scripts get content-hashed names and are cached for a year. The widget is the one file
customers paste into their own pages (SPEC §7): its address never changes, so it is
cached for minutes only and every customer gets a fix within that time.
"""

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Names that keep their address: customers' pages load them.
STABLE_NAMES = frozenset({"refiner/widget.js"})
# How long a browser or CDN may keep a stable file before it asks again (with its ETag).
STABLE_MAX_AGE_SECONDS = 300


class RefinerStaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed names, except for the stable files.

    Without a manifest (`collectstatic` never ran: development and the test suite), names
    are left as they are, and Django's own static handling serves them from the apps.
    """

    def stored_name(self, name):
        if name in STABLE_NAMES or not self.hashed_files:
            return name
        return super().stored_name(name)


def add_stable_file_headers(headers, path, url):
    """WhiteNoise's per-file hook: a short lifetime and any origin for the widget."""
    if url.removeprefix(settings.STATIC_URL) in STABLE_NAMES:
        headers["Cache-Control"] = f"public, max-age={STABLE_MAX_AGE_SECONDS}"
        headers["Access-Control-Allow-Origin"] = "*"
