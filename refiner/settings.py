"""Settings, read from the environment. Every knob has a safe default."""

from pathlib import Path

import environ

from refiner.databases import postgresql
from refiner.staticfiles import add_stable_file_headers

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Off unless asked for: `make run` turns it on for development.
DEBUG = env.bool("DEBUG", default=False)
# Development only: with DEBUG off, the refiner.E001 check refuses to start with it.
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "refiner",
    "segments",
    "surveys",
    "targeting",
    "webhooks",
    # Above every app: whole-product tools (docs/architecture.md).
    "demo",
    "workspace_backups",
    # The webhooks' task queue in the database and its `db_worker`.
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # Health probes and /metrics before the host and HTTPS checks; times and logs the rest.
    "refiner.ops.ops_middleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight after the HTTPS redirect: no session or database work for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outermost of ours: turns API errors into the SPEC §5 body, adds the CSP header.
    "refiner.middleware.HardeningMiddleware",
    # Every query of the request runs within its time budget (SPEC §5).
    "refiner.middleware.TimeBudgetMiddleware",
    # Before sessions and auth, so a rate-limited call costs no database query.
    "refiner.middleware.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's own two, stepping aside for the widget's calls, which use neither.
    "refiner.pages_only.AuthenticationMiddleware",
    "refiner.pages_only.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "refiner.urls"
WSGI_APPLICATION = "refiner.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "refiner.workspaces.current_workspace",
            ],
        },
    },
]

# Time budgets (SPEC §5): past them a request's queries stop and it answers 503 `timeout`.
WIDGET_TIME_BUDGET_MS = env.int("WIDGET_TIME_BUDGET_MS", default=1000)
REQUEST_TIME_BUDGET_MS = env.int("REQUEST_TIME_BUDGET_MS", default=10000)
# The segment editor's preview of an unsaved rule (its count, then its sample) gets this
# much of its request's budget; past it the preview says so instead of the page failing.
PREVIEW_TIME_BUDGET_MS = env.int("PREVIEW_TIME_BUDGET_MS", default=3000)
# From this many identified contacts (on PostgreSQL) the preview answers first with an
# estimate from a sample of this many of them, then loads the exact count
# (docs/segments.md): 4,000 keep the margin within ±1.6 points for any rule.
PREVIEW_ESTIMATE_ABOVE = env.int("PREVIEW_ESTIMATE_ABOVE", default=50_000)
PREVIEW_SAMPLE_SIZE = env.int("PREVIEW_SAMPLE_SIZE", default=4_000)

# The widget's tracked events and new users' contacts commit without waiting for the
# WAL flush (PostgreSQL's synchronous_commit off, for those transactions only): a
# server crash may lose the last ~0.6 s of them, never half a row (docs/decisions.md).
WIDGET_ASYNC_COMMIT = env.bool("WIDGET_ASYNC_COMMIT", default=True)

# Behind PgBouncer in transaction mode (docs/scaling.md): no startup options, no
# server-side cursors or prepared statements, the budget sent with each statement.
DB_TRANSACTION_POOLING = env.bool("DB_TRANSACTION_POOLING", default=False)
POSTGRESQL = {
    "conn_max_age": env.int("CONN_MAX_AGE", default=60),
    "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=1),
    "widget_budget_ms": WIDGET_TIME_BUDGET_MS,
    "prepared_statements": env.bool("DB_PREPARED_STATEMENTS", default=not DB_TRANSACTION_POOLING),
    "transaction_pooling": DB_TRANSACTION_POOLING,
}

# SQLite is the zero-setup default; PostgreSQL through DATABASE_URL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the write lock instead of failing at once under concurrent writes.
    # Take the write lock when a transaction starts, so that writers queue up
    # instead of failing with "database is locked" when they upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"] = postgresql(DATABASES["default"], **POSTGRESQL)

# A streaming replica for the dashboard's reads (refiner/replicas.py): pages and
# fragments read it, the widget, the REST API and every write use the primary, and a
# browser that wrote reads the primary for REPLICA_READ_YOUR_WRITES_SECONDS after.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
REPLICA_READ_YOUR_WRITES_SECONDS = env.int("REPLICA_READ_YOUR_WRITES_SECONDS", default=10)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = postgresql(env.db_url_config(DATABASE_REPLICA_URL), **POSTGRESQL)
    DATABASE_ROUTERS = ["refiner.replicas.ReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("refiner.middleware.TimeBudgetMiddleware") + 1,
        "refiner.replicas.ReplicaReadsMiddleware",
    )

# Local memory by default; Redis when REDIS_URL is set.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "static_root")))
# WhiteNoise serves STATIC_ROOT from the app (refiner/staticfiles.py): hashed, compressed
# names for the dashboard, a stable short-lived address for the widget.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "refiner.staticfiles.RefinerStaticStorage"},
}
WHITENOISE_ADD_HEADERS_FUNCTION = add_stable_file_headers

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Largest JSON body the API accepts (SPEC §5: 413 above it).
API_MAX_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

# How long the workspace's survey and segment definitions stay cached (seconds);
# every change to them invalidates the cache at once anyway.
DEFINITIONS_CACHE_SECONDS = env.int("DEFINITIONS_CACHE_SECONDS", default=300)

# Eligibility answers each process keeps while nothing they read has changed
# (targeting.memo); 0 keeps none. Each is kept at most this many seconds.
ELIGIBILITY_MEMO_SIZE = env.int("ELIGIBILITY_MEMO_SIZE", default=20_000)
ELIGIBILITY_MEMO_SECONDS = env.int("ELIGIBILITY_MEMO_SECONDS", default=300)

# Events older than this many whole months are dropped by `manage.py drop_old_events`
# (docs/partitions.md); 0 keeps them forever.
EVENT_RETENTION_MONTHS = env.int("EVENT_RETENTION_MONTHS", default=0)

# The /demo/ host page for trying the widget by hand.
DEMO_PAGE_ENABLED = env.bool("DEMO_PAGE_ENABLED", default=DEBUG)

# Rate limits per minute (0 disables). Widget: per widget key and client address;
# REST: per secret key; dashboard login: per client address and username.
RATE_LIMIT_WIDGET_PER_MINUTE = env.int("RATE_LIMIT_WIDGET_PER_MINUTE", default=600)
RATE_LIMIT_REST_PER_MINUTE = env.int("RATE_LIMIT_REST_PER_MINUTE", default=1200)
RATE_LIMIT_LOGIN_PER_MINUTE = env.int("RATE_LIMIT_LOGIN_PER_MINUTE", default=10)
# Unknown widget or secret keys per client address: past it, every API call from that
# address is refused before any query until the minute is over.
RATE_LIMIT_INVALID_KEY_PER_MINUTE = env.int("RATE_LIMIT_INVALID_KEY_PER_MINUTE", default=60)
# The request.META key holding the client address when behind a proxy (e.g. HTTP_X_FORWARDED_FOR);
# empty means REMOTE_ADDR.
RATE_LIMIT_CLIENT_IP_HEADER = env("RATE_LIMIT_CLIENT_IP_HEADER", default="")

# Dashboard pages only (the API answers JSON). Templates carry no inline script;
# inline styles are allowed for htmx's indicator style and the widget's demo page.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Webhooks (docs/webhooks.md) ----------------------------------------------------
# Deliveries are tasks in the database, run by `manage.py db_worker` (`make worker`).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Off: webhook requests never reach loopback, link-local or private addresses. Only for
# receivers on a trusted private network (and the tests' local receiver).
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
# Seconds to connect and for each read of a webhook request.
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=5.0)
# Attempts per delivery; the wait after attempt n is WEBHOOKS_RETRY_SECONDS * 2**(n-1).
WEBHOOKS_MAX_ATTEMPTS = env.int("WEBHOOKS_MAX_ATTEMPTS", default=8)
WEBHOOKS_RETRY_SECONDS = env.float("WEBHOOKS_RETRY_SECONDS", default=30.0)
# How often the worker looks for deliveries whose task was lost (a worker killed
# mid-delivery, a crash between commit and enqueue) and queues them again.
WEBHOOKS_SWEEP_SECONDS = env.float("WEBHOOKS_SWEEP_SECONDS", default=60.0)

# Operations (refiner/ops.py) ----------------------------------------------------
# GET /metrics answers only with `Authorization: Bearer METRICS_TOKEN`; unset, it is a 404.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# A directory (emptied before gunicorn starts) where every worker writes its metrics, so
# that /metrics sums them; unset, each worker reports only its own requests.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")

# Every log line is one JSON object; refiner.requests writes one per request at INFO
# (LOG_REQUESTS=false silences it).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "refiner.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    "loggers": {
        # Its 4xx warnings print the path, which can hold a user id; refiner.requests
        # logs every request by its route pattern instead.
        "django.request": {"level": "ERROR"},
        "refiner.requests": {
            "level": "INFO" if env.bool("LOG_REQUESTS", default=True) else "WARNING"
        },
    },
}

# Error reports to Sentry when SENTRY_DSN is set (pip install 'refiner[sentry]'): no
# request bodies, cookies or user data are sent.
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        send_default_pii=False,
        max_request_body_size="never",
        traces_sample_rate=0,
    )
