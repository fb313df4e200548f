"""All HealthHash settings, read from the environment in this one place.

Every variable has a default that runs the embedded stack (SQLite, the project's own anvil, a local
IPFS-compatible block store, a server-less Celery broker). `HEALTHHASH_ENV=production` switches on the
hardening that `manage.py check --deploy` asks for.
"""

from __future__ import annotations

from pathlib import Path

import environ

from healthhash import local_secrets, logs

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Owner-only (0700): it holds the database with live session keys, the chain state and the blobs.
VAR_DIR = local_secrets.private_dir(Path(env.str("HEALTHHASH_VAR_DIR", default=str(BASE_DIR / "var"))))
SECRETS_DIR = VAR_DIR / "secrets"
HEALTHHASH_ENV = env.str("HEALTHHASH_ENV", default="development")
PRODUCTION = HEALTHHASH_ENV == "production"
if PRODUCTION:
    # Checked before any secret is read, so none is generated into var/secrets by a production start.
    local_secrets.require_production_secrets(
        ["DJANGO_SECRET_KEY", "HEALTHHASH_KEK", "RELAYER_PRIVATE_KEY"], environ=env.ENVIRON
    )

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or local_secrets.django_secret_key(SECRETS_DIR)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Periodic training jobs: beat reads its schedule from these tables (DatabaseScheduler).
    "django_celery_beat",
    "contracts",
    "access",
    "ehr",
    "federated",
    # Tools on top of the product: benchmarks and the demo (nothing in the apps imports them).
    "bench",
    "demo",
]

MIDDLEWARE = [
    # First: every log line of a request, and its answer, carry the request id.
    "healthhash.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The web portal's built files (frontend/dist) at /; everything else falls through to Django.
    "healthhash.portal.PortalFilesMiddleware",
    # Before anything reads the body: size limits, trailing slashes, and JSON errors on /api/.
    "healthhash.middleware.ApiGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "healthhash.urls"
WSGI_APPLICATION = "healthhash.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'healthhash.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend with writers queued on a lock file rather than SQLite's sleeping busy handler.
    DATABASES["default"]["ENGINE"] = "healthhash.sqlite_backend"
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        local_secrets.private_file(Path(DATABASES["default"]["NAME"]))
    # The test database is a file too (not :memory:), so a real Celery worker process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # WAL + a busy timeout let the relayer, the indexer and the web process share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Throttle counters live here: per process by default; give every web process one shared cache in
# production (e.g. CACHE_URL=redis://127.0.0.1:6379/1).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
AUTH_USER_MODEL = "access.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The web portal, built by `make setup` (Vite): WhiteNoise serves its files at /, healthhash.portal its
# index.html at every other non-API path. Vite names assets by content hash, so they are cached for good.
PORTAL_DIST_DIR = BASE_DIR / "frontend" / "dist"
WHITENOISE_ROOT = PORTAL_DIST_DIR
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/assets/.+-[0-9A-Za-z_-]{8}\.(?:js|css)$"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.identity.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["healthhash.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "healthhash.schema.ErrorShapeAutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "healthhash.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "healthhash.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "healthhash.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Sign-in endpoints are throttled per client address against password guessing.
    "DEFAULT_THROTTLE_RATES": {"sign_in": env.str("SIGN_IN_RATE", default="10/minute")},
    # The client address is REMOTE_ADDR unless that many reverse proxies in front of us each append
    # to X-Forwarded-For; a header the client wrote itself is never believed.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HealthHash API",
    "DESCRIPTION": "Patient-owned health records with consent on an Ethereum ledger.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- chain -------------------------------------------------------------------------------------
# Empty ETH_RPC_URL means: the project's own anvil on DEV_CHAIN_PORT, state kept under var/chain.
ETH_RPC_URL = env.str("ETH_RPC_URL", default="")
DEV_CHAIN_PORT = env.int("DEV_CHAIN_PORT", default=8545)
# The JSON-RPC URL browsers may read the chain from (the portal's access-log Verify reads the Anchors
# contract itself; the portal's CSP allows its origin). Empty: the node in use if it is on this machine
# (healthhash.portal.public_rpc_url), else none, since a remote ETH_RPC_URL may carry an API key.
ETH_PUBLIC_RPC_URL = env.str("ETH_PUBLIC_RPC_URL", default="")
DEV_CHAIN_STATE = VAR_DIR / "chain" / "anvil-state.json"
CHAIN_CONFIRMATIONS = env.int("CHAIN_CONFIRMATIONS", default=0)
RELAYER_PRIVATE_KEY = env.str("RELAYER_PRIVATE_KEY", default="") or local_secrets.relayer_private_key(
    SECRETS_DIR
)
RELAYER_BATCH_SIZE = env.int("RELAYER_BATCH_SIZE", default=500)
# Seconds a relayer run holds its lease without renewing it (it renews between steps): how long a killed
# relayer blocks the next one.
RELAYER_LEASE_S = env.float("RELAYER_LEASE_S", default=10.0)
INDEXER_MAX_BLOCK_RANGE = env.int("INDEXER_MAX_BLOCK_RANGE", default=2000)
CONSENT_SIGNATURE_TTL_S = env.int("CONSENT_SIGNATURE_TTL_S", default=3600)

# --- keys ----------------------------------------------------------------------------------------
# "kid:base64(32 bytes),..." ; the first key id is the active one. Outside the database by design.
KEY_ENCRYPTION_KEYS = env.str("HEALTHHASH_KEK", default="") or local_secrets.key_encryption_keys(SECRETS_DIR)
# Password re-confirmation (unlocking a managed key, minting a token), per user: a DRF-style rate,
# and a lock after this many wrong passwords in a row, for this long (or until a password sign-in).
PASSWORD_CONFIRM_RATE = env.str("PASSWORD_CONFIRM_RATE", default="20/minute")
PASSWORD_CONFIRM_MAX_FAILURES = env.int("PASSWORD_CONFIRM_MAX_FAILURES", default=5)
PASSWORD_CONFIRM_LOCKOUT_S = env.int("PASSWORD_CONFIRM_LOCKOUT_S", default=900)
# API tokens expire after this many days; minting one needs the password or a sign-in this recent.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
API_TOKEN_FRESH_SIGN_IN_S = env.int("API_TOKEN_FRESH_SIGN_IN_S", default=300)

# --- Sign-In with Ethereum ---------------------------------------------------------------------
SIWE_DOMAIN = env.str("SIWE_DOMAIN", default="127.0.0.1:8000")
SIWE_NONCE_TTL_S = env.int("SIWE_NONCE_TTL_S", default=300)

# --- storage -----------------------------------------------------------------------------------
IPFS_API_URL = env.str("IPFS_API_URL", default="")
IPFS_LOCAL_DIR = VAR_DIR / "ipfs"
IPFS_CID_VERSION = env.int("IPFS_CID_VERSION", default=0)
RECORD_MAX_BYTES = env.int("RECORD_MAX_BYTES", default=50 * 1024 * 1024)
# Any request body over this is refused (413) by its Content-Length, before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = RECORD_MAX_BYTES + 1024 * 1024
# JSON bodies nesting deeper are refused (400 too_deep); FHIR resources nest far less.
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=100)
BREAK_GLASS_HOURS = env.float("BREAK_GLASS_HOURS", default=4.0)
# Records one user may create in any 24 hours (each costs the relayer an anchor's gas); 0 = no limit.
RECORDS_PER_DAY = env.int("RECORDS_PER_DAY", default=1000)
# Records are anchored as one Merkle root per batch (ehr.anchoring): at most MAX records a batch; a partial
# batch waits until MIN records wait or the oldest has waited MAX_WAIT_S (gas per record = ~49k / batch size).
RECORD_ANCHOR_BATCH_MAX = env.int("RECORD_ANCHOR_BATCH_MAX", default=1000)
RECORD_ANCHOR_BATCH_MIN = env.int("RECORD_ANCHOR_BATCH_MIN", default=100)
RECORD_ANCHOR_MAX_WAIT_S = env.float("RECORD_ANCHOR_MAX_WAIT_S", default=600.0)

# --- Celery --------------------------------------------------------------------------------------
# The embedded broker is a SQLite file (kombu's SQLAlchemy transport): several consumers (the server worker,
# one hospital worker per queue) share it safely, which the filesystem:// transport did not (a consumer
# died reading a half-written message). Consumers poll it every CELERY_BROKER_POLL_S.
_embedded_broker = VAR_DIR / "celery" / "broker.sqlite3"
_embedded_broker.parent.mkdir(parents=True, exist_ok=True)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"sqla+sqlite:///{_embedded_broker}")
if CELERY_BROKER_URL.startswith("sqla+"):
    # healthhash/broker.py makes kombu's transport take this option (and use WAL and a 30 s busy timeout).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": env.float("CELERY_BROKER_POLL_S", default=0.05)}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
# A task whose worker died (SIGKILL, OOM) goes back to the queue instead of being acknowledged as failed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "sync-chain": {
        "task": "contracts.tasks.sync_chain",
        "schedule": env.float("SYNC_CHAIN_EVERY_S", default=2.0),
    },
    "relay-outbox": {
        "task": "contracts.tasks.relay_outbox",
        "schedule": env.float("RELAY_EVERY_S", default=2.0),
    },
    "anchor-audit-heads": {
        "task": "access.tasks.anchor_audit_heads",
        "schedule": env.float("AUDIT_ANCHOR_EVERY_S", default=60.0),
    },
    "anchor-records": {
        "task": "ehr.tasks.anchor_records",
        "schedule": env.float("RECORD_ANCHOR_EVERY_S", default=60.0),
    },
    # Training rounds whose broker messages were lost: resend their tasks, close them at their deadline.
    "sweep-training-rounds": {
        "task": "federated.tasks.sweep_rounds",
        "schedule": env.float("TRAINING_SWEEP_EVERY_S", default=5.0),
    },
}
# A hospital silent this long after its task was sent gets the task again (its worker may have died with the
# message); keep it above a round's local training time, or slow hospitals do their round twice.
TRAINING_REDISPATCH_AFTER_S = env.float("TRAINING_REDISPATCH_AFTER_S", default=30.0)
# The relayer and the indexer run as beat tasks (the demo: one worker does it all) or as their own processes
# (`manage.py serve` and production: `relay --follow`, `sync_chain --follow`), never both: a process of its
# own relays within a second of a write and leaves the worker's slots to the tasks.
CHAIN_LOOP_BEAT_ENTRIES = ("sync-chain", "relay-outbox")
CHAIN_LOOPS_IN_BEAT = env.bool("CHAIN_LOOPS_IN_BEAT", default=True)
if not CHAIN_LOOPS_IN_BEAT:
    CELERY_BEAT_SCHEDULE = {
        name: entry for name, entry in CELERY_BEAT_SCHEDULE.items() if name not in CHAIN_LOOP_BEAT_ENTRIES
    }

# Error reports (the debug page, error e-mails) mask the KEK, keys and credential-bearing URLs.
DEFAULT_EXCEPTION_REPORTER_FILTER = "healthhash.errors.SecretSettingsFilter"

# "plain" for a person (the demo, the tests), "json" for a log pipeline: one object per line, the request
# id on each, secrets redacted (healthhash/logs.py). `manage.py serve` runs its processes with json.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logs.logging_config(LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
LOGGING_CONFIG = "healthhash.logs.configure_logging"
# One line per request (method, path, status, ms); off in plain mode, where runserver writes its own.
LOG_REQUESTS = env.bool("LOG_REQUESTS", default=LOG_FORMAT == "json")
# In json mode the Celery worker keeps the LOGGING above instead of installing its own plain handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# --- serving -------------------------------------------------------------------------------------
# gunicorn (healthhash/gunicorn_conf.py, `manage.py serve`): processes, and threads in each (gthread).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=2)
WEB_THREADS = env.int("WEB_THREADS", default=4)
# GET /api/health asks each component, each within HEALTH_TIMEOUT_S; an app owns its component's check.
HEALTH_CHECKS = {
    "database": "healthhash.health.check_database",
    "broker": "healthhash.health.check_broker",
    "chain": "contracts.health.check_chain",
    "store": "ehr.health.check_store",
}
HEALTH_TIMEOUT_S = env.float("HEALTH_TIMEOUT_S", default=1.0)

if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
