"""Settings, all overridable from the environment (12-factor, django-environ).

With nothing set, the embedded default runs the demo: SQLite under ``var/`` and Celery's
filesystem broker (a real worker process, no server needed). Production and CI set
``DATABASE_URL=postgres://...`` and ``CELERY_BROKER_URL=redis://...``.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config import REPO_ROOT

env = environ.Env()
environ.Env.read_env(REPO_ROOT / ".env", overwrite=False)

BASE_DIR = REPO_ROOT
VAR_DIR = Path(env.str("VAR_DIR", default=str(REPO_ROOT / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless asked for: the demo (`make demo`) sets DEBUG=1; anything facing the internet must not.
DEBUG = env.bool("DEBUG", default=False)


def _local_secret_key(path: Path) -> str:
    """A random key kept in ``var/``, made on first use: the demo's sessions survive a restart
    and no key is shared between checkouts (a public default would sign anyone's cookies)."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off: set SECRET_KEY to a long random string (e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), or DEBUG=1 for a local demo.")
    SECRET_KEY = _local_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
if env.bool("BEHIND_TLS_PROXY", default=False):
    # nginx / the ingress terminates TLS: trust its X-Forwarded-Proto (deploy/).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "csp",
    "axes",
    # Domain apps (platform/)
    "core",
    "workflows",
    "galaxies",
    "classifications",
    "retraining",
    "review",
    "demo",
    # Operations: health, metrics, worker heartbeats (reads the apps above; nothing imports it)
    "django_prometheus",
    "monitoring",
    # Volunteer web UI (frontend/)
    "frontend",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.ApiGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.CSPMiddleware",  # django-csp's, its policy built once (core/middleware.py)
    "allauth.account.middleware.AccountMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# HTTPS: on by default whenever DEBUG is off (HTTPS_ONLY=0 for plain-http test servers). Behind
# a TLS-terminating proxy set BEHIND_TLS_PROXY=1, and only if the proxy overwrites
# X-Forwarded-Proto: otherwise a client could claim https itself.
HTTPS_ONLY = env.bool("HTTPS_ONLY", default=not DEBUG)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS_ONLY)
# Probes and the metrics scraper call the pods over plain http, inside the cluster.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^healthz$", r"^readyz$", r"^metrics$"])
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading puts the domain on the browsers' built-in list, a commitment only the domain's
# owner can make: opt in with SECURE_HSTS_PRELOAD=1; until then the deploy check's reminder is off.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Content-Security-Policy (django-csp): scripts, styles, images and requests from this origin
# only, no inline code (the templates keep theirs in static files). The admin (Django's and
# retraining's templates use inline styles and scripts) is staff-only and left out.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

ROOT_URLCONF = "config.urls"

# Signed-cookie sessions: an anonymous volunteer's id lives in the cookie, so the hot API
# paths (next subjects, submit) cost no session query.
SESSION_ENGINE = env.str("SESSION_ENGINE", default="django.contrib.sessions.backends.signed_cookies")
SESSION_COOKIE_AGE = 60 * 60 * 24 * 365
# An anonymous volunteer's signed identity (classifications.volunteers) is accepted this long.
VOLUNTEER_TOKEN_MAX_AGE = env.int("VOLUNTEER_TOKEN_MAX_AGE", default=SESSION_COOKIE_AGE)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # frontend/templates first, so its allauth layout overrides the packaged one.
        "DIRS": [REPO_ROOT / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web server and the worker process share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"})
    # A file, not memory, so a test can start a real worker process on the test database; one
    # per test process, so two test runs in one checkout never share it.
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3"))
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Web processes only (config/wsgi.py and config/asgi.py call core.db.bound_request_statements;
# Celery workers, beat and management commands — migrations, imports, exports — never do): a
# request's statement is cancelled after DATABASE_STATEMENT_TIMEOUT ms and gives up waiting for a
# lock after DATABASE_LOCK_TIMEOUT ms (0 turns either off), answered as a JSON 503 with
# Retry-After (core.middleware), so a request stuck behind a lock or a runaway query frees its
# thread well before gunicorn's 30 s timeout. PostgreSQL only.
DATABASE_STATEMENT_TIMEOUT = env.int("DATABASE_STATEMENT_TIMEOUT", default=10_000)
DATABASE_LOCK_TIMEOUT = env.int("DATABASE_LOCK_TIMEOUT", default=5_000)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password hash
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email", "username"}
# Volunteers sign up with email + password; admins may still sign in by username.
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="none")
LOGIN_REDIRECT_URL = "/"
# Sign-in and sign-up rates (allauth, on the shared cache): per address, and per account for failures.
ACCOUNT_RATE_LIMITS = {
    "login": env.str("RATE_LIMIT_LOGIN", default="30/m/ip"),
    "login_failed": env.str("RATE_LIMIT_LOGIN_FAILED", default="10/m/ip,5/5m/key"),
    "signup": env.str("RATE_LIMIT_SIGNUP", default="20/m/ip"),
}
# Lockout after failed sign-ins (django-axes), for the admin's and allauth's login alike: after
# AXES_FAILURE_LIMIT failures from one address for one account, that pair waits AXES_COOLOFF_TIME.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Attempts are kept in the database (axes' default handler): shared by every process, and its
# cache handler would refuse the file cache of the embedded default.
AXES_USERNAME_FORM_FIELD = "login"  # allauth's field; the admin's `username` is read by AXES_USERNAME_CALLABLE
AXES_USERNAME_CALLABLE = "core.auth.login_name"
AXES_CLIENT_IP_CALLABLE = "core.auth.client_address"  # the throttles' rule (NUM_PROXIES), not its own
# allauth's sign-in/sign-up rates see the same client address.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("NUM_PROXIES", default=0)
AXES_RESET_ON_SUCCESS = True
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Media (galaxy images, FITS sources), checkpoints and training-set snapshots go
# through the storage API only: local files by default, an S3-compatible bucket (AWS, MinIO,
# Ceph, moto) with STORAGE_BACKEND=s3, so web and worker nodes need not share a disk.
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="filesystem")


def _unset_if_empty(name: str) -> str | None:
    """An empty value (as in deploy/env.example) leaves the choice to boto3: its credential
    chain (instance roles, IRSA), AWS's own endpoint, its default region."""
    return env.str(name, default="") or None


if STORAGE_BACKEND == "s3":
    _DEFAULT_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
        "endpoint_url": _unset_if_empty("AWS_S3_ENDPOINT_URL"),
        "region_name": _unset_if_empty("AWS_S3_REGION_NAME"),
        "access_key": _unset_if_empty("AWS_ACCESS_KEY_ID"),
        "secret_key": _unset_if_empty("AWS_SECRET_ACCESS_KEY"),
        "location": env.str("AWS_LOCATION", default=""),
        "addressing_style": _unset_if_empty("AWS_S3_ADDRESSING_STYLE"),
        "custom_domain": _unset_if_empty("AWS_S3_CUSTOM_DOMAIN"),
        "querystring_auth": env.bool("AWS_QUERYSTRING_AUTH", default=True),
        "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=3600),
        # Never overwrite: a replaced image gets a new name, so per-node caches keyed by
        # name or hash stay valid and rows committed earlier never point at other bytes.
        "file_overwrite": False,
    }}
elif STORAGE_BACKEND == "filesystem":
    _DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be 'filesystem' or 's3', not {STORAGE_BACKEND!r}")
# This node's own disk: verified copies of stored checkpoints (keyed by sha256) and training
# scratch space. Never shared, safe to delete.
STORAGE_CACHE_DIR = Path(env.str("STORAGE_CACHE_DIR", default=str(VAR_DIR / "cache")))
STORAGES = {
    "default": _DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    # No Basic auth: every request carrying it cost a password hash (PBKDF2, ~0.2 s of CPU),
    # a lever for anyone. Browsers use the session; scripts a token (`manage.py drf_create_token`).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only: a browser cannot send it cross-site without a CORS preflight, which this site
    # never grants (a form post from another origin was stored as a vote).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Views opt in with `throttle_scope`; rates per volunteer, and per address (`<scope>_ip`).
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.ScopedThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "submit": env.str("THROTTLE_SUBMIT", default="60/min"),
        "submit_ip": env.str("THROTTLE_SUBMIT_IP", default="600/min"),
        "next": env.str("THROTTLE_NEXT", default="120/min"),
        "next_ip": env.str("THROTTLE_NEXT_IP", default="1200/min"),
        # New anonymous identities per address (classifications.volunteers): each can vote once
        # per galaxy, so this caps how many votes one address can cast on a galaxy per hour.
        "volunteer_ip": env.str("THROTTLE_VOLUNTEER_IP", default="30/hour"),
    },
    # The client address is REMOTE_ADDR unless NUM_PROXIES trusted proxies append X-Forwarded-For
    # (DRF's default, None, would take the whole header, which a client can forge per request).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Galaxy Zoo active-learning platform API",
    "DESCRIPTION": "Volunteers classify galaxies through a decision tree; a Bayesian CNN picks "
                   "the most informative galaxies next.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.add_error_responses"],
    # Three choice sets are called "kind": a run's type, a head's posterior and a flag's reason.
    "ENUM_NAME_OVERRIDES": {"RunKindEnum": "retraining.models.TrainingRun.Kind",
                            "FlagKindEnum": "review.models.Flag.Kind",
                            "HeadPosteriorEnum": ["ensemble", "mc_dropout"]},
}

# Celery: the filesystem transport needs no server (demo); Redis in production and CI.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")

# The cache holds the request rates and login lockouts, so it must be shared by every process
# (not LocMem): CACHE_URL (redis://... or filecache:<folder>, relative to VAR_DIR), else the
# broker's Redis, else files under var/.
CACHE_URL = env.str("CACHE_URL", default="") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "filecache:cache")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}}}
elif CACHE_URL.startswith("filecache:"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / CACHE_URL.removeprefix("filecache:"))}}
else:
    raise ImproperlyConfigured(f"CACHE_URL must be redis://..., rediss://... or filecache:<folder>, got {CACHE_URL!r}")
BROKER_DIR = VAR_DIR / "broker"
BROKER_SOCKET_TIMEOUT = env.float("BROKER_SOCKET_TIMEOUT", default=1.0)
# Requests' publishes (core.broker): a pool of their own, and a pause after a failed one.
BROKER_REQUEST_POOL_LIMIT = env.int("BROKER_REQUEST_POOL_LIMIT", default=16)
BROKER_PUBLISH_BACKOFF = env.float("BROKER_PUBLISH_BACKOFF", default=30.0)
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest training run, so a slow run is not redelivered while alive. A broker
    # that accepts connections but never answers must not hold a caller forever (issue 15: four
    # such requests took every thread for 6.5 minutes): every socket operation times out. Workers
    # keep kombu's reconnect retries; requests publish once through core.broker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600),
        "socket_timeout": BROKER_SOCKET_TIMEOUT, "socket_connect_timeout": BROKER_SOCKET_TIMEOUT,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "retraining.tasks.train_model": {"queue": "gpu"},
    "retraining.tasks.predict_chunk": {"queue": "gpu"},
    "retraining.tasks.*": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE = {
    "reap-stale-training-runs": {"task": "retraining.tasks.reap_stale_runs",
                                 "schedule": env.float("RETRAIN_REAP_INTERVAL", default=30.0)},
    # The automatic triggers again, for checks a request could not send (broker down or silent).
    "recheck-retraining-triggers": {"task": "retraining.tasks.recheck_triggers",
                                    "schedule": env.float("RETRAIN_RECHECK_INTERVAL", default=120.0)},
}

# Domain settings.
# Import limits per file (galaxies.imaging.ReadLimits): catalogs and their images come from outside.
IMPORT_MAX_FILE_BYTES = env.int("IMPORT_MAX_FILE_BYTES", default=64 * 2**20)
IMPORT_MAX_DECOMPRESSED_BYTES = env.int("IMPORT_MAX_DECOMPRESSED_BYTES", default=256 * 2**20)
IMPORT_MAX_PIXELS = env.int("IMPORT_MAX_PIXELS", default=25_000_000)  # a file's planes together; 5000²
DISPLAY_IMAGE_MAX_PX = env.int("DISPLAY_IMAGE_MAX_PX", default=512)  # volunteers' images; FITS kept whole
QUEUE_RANDOM_FRACTION = env.float("QUEUE_RANDOM_FRACTION", default=0.2)
QUEUE_BATCH_SIZE = env.int("QUEUE_BATCH_SIZE", default=10)

# Retraining (docs/retraining.md). A run's configuration is a named preset of
# classifier.training.TRAIN_PRESETS ("default", "fast_cpu") plus overrides of its fields.
RETRAIN_TRAIN_PRESET = env.str("RETRAIN_TRAIN_PRESET", default="fast_cpu")
RETRAIN_TRAIN_OVERRIDES = env.json("RETRAIN_TRAIN_OVERRIDES", default={})
RETRAIN_DEMO_PRESET = env.str("RETRAIN_DEMO_PRESET", default="fast_cpu")
RETRAIN_DEMO_OVERRIDES = env.json("RETRAIN_DEMO_OVERRIDES", default={})
RETRAIN_AFTER_CLASSIFICATIONS = env.int("RETRAIN_AFTER_CLASSIFICATIONS", default=500)  # 0 disables
# ...and only when those votes come from at least this many distinct volunteers: a burst from a
# few identities (ballot stuffing) cannot train and activate a model on its own votes.
RETRAIN_MIN_DISTINCT_VOLUNTEERS = env.int("RETRAIN_MIN_DISTINCT_VOLUNTEERS", default=25)
RETRAIN_HOLDOUT_FRACTION = env.float("RETRAIN_HOLDOUT_FRACTION", default=0.1)
RETRAIN_MIN_GALAXIES = env.int("RETRAIN_MIN_GALAXIES", default=10)
RETRAIN_PREDICT_CHUNK_SIZE = env.int("RETRAIN_PREDICT_CHUNK_SIZE", default=2000)
RETRAIN_PREDICT_MC_SAMPLES = env.int("RETRAIN_PREDICT_MC_SAMPLES", default=5)
RETRAIN_INTERVAL_GRID_POINTS = env.int("RETRAIN_INTERVAL_GRID_POINTS", default=101)
RETRAIN_PROGRESS_INTERVAL = env.float("RETRAIN_PROGRESS_INTERVAL", default=2.0)
# Lost workers (docs/retraining.md): a thread beats every RETRAIN_HEARTBEAT_INTERVAL s while a
# step computes; a run silent for RETRAIN_HEARTBEAT_TIMEOUT is recovered by beat's reaper (every
# RETRAIN_REAP_INTERVAL s, above) — queued again, or its missing chunks sent again — at most
# RETRAIN_MAX_ATTEMPTS times; a queued run is sent again every RETRAIN_QUEUED_RESEND s.
RETRAIN_HEARTBEAT_INTERVAL = env.float("RETRAIN_HEARTBEAT_INTERVAL", default=10.0)
RETRAIN_HEARTBEAT_TIMEOUT = env.float("RETRAIN_HEARTBEAT_TIMEOUT", default=60.0)
RETRAIN_MAX_ATTEMPTS = env.int("RETRAIN_MAX_ATTEMPTS", default=3)
RETRAIN_QUEUED_RESEND = env.float("RETRAIN_QUEUED_RESEND", default=600.0)
RETRAIN_SOFT_TIME_LIMIT = env.int("RETRAIN_SOFT_TIME_LIMIT", default=4 * 3600)
RETRAIN_CHUNK_TIME_LIMIT = env.int("RETRAIN_CHUNK_TIME_LIMIT", default=1800)
# Champion/challenger gate (retraining.gate): a finished run's version is activated only when its
# mean hold-out loss is at most (1 + this) × the champion's on the same galaxies and votes.
ACTIVATION_MAX_LOSS_INCREASE = env.float("ACTIVATION_MAX_LOSS_INCREASE", default=0.0)
# The live queue (docs/retraining.md, "Live queue"): a Bayesian head on the active encoder's
# stored embeddings, refreshed on the CPU queue after this many counted votes (0 disables).
HEAD_REFRESH_AFTER_CLASSIFICATIONS = env.int("HEAD_REFRESH_AFTER_CLASSIFICATIONS", default=30)
# A refresh re-ranks the whole queue and costs CPU minutes: the same gate, scaled to its 30 votes.
HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS = env.int("HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS", default=5)
HEAD_REFRESH_CONFIG = env.json("HEAD_REFRESH_CONFIG", default={})  # classifier.heads.HeadConfig fields
HEAD_REFRESH_KEEP_VERSIONS = env.int("HEAD_REFRESH_KEEP_VERSIONS", default=3)
HEAD_REFRESH_TIME_LIMIT = env.int("HEAD_REFRESH_TIME_LIMIT", default=900)
# Tree BALD of a refresh (classifier.live_head.BaldPlan): the one-vote screen for every galaxy,
# tree BALD at the classifier's defaults for the PRECISE_TOP best (0: for all). 5,000 is over
# an hour of votes at the expected rate.
HEAD_REFRESH_PRECISE_TOP = env.int("HEAD_REFRESH_PRECISE_TOP", default=5000)
# Threads scoring a refresh's chunks (classifier.live_head.map_chunks); the reference machine has 2 cores.
HEAD_REFRESH_THREADS = env.int("HEAD_REFRESH_THREADS", default=2)
# The queue's rule (docs/retraining.md, "The queue's rule"; the simulation's best in
# docs/active_learning.md): while fewer than QUEUE_COVERAGE_LABELS galaxies have votes, TypiClust
# picks on the active encoder's embeddings queue first (0: never); the order of the scored
# galaxies is QUEUE_ACQUISITION, "bald" (tree BALD, highest first) or "power-bald" (drawn ∝ BALD^β,
# β = QUEUE_POWER_BETA, classifier.acquisition_batch.queue_priorities).
QUEUE_COVERAGE_LABELS = env.int("QUEUE_COVERAGE_LABELS", default=200)
QUEUE_ACQUISITION = env.str("QUEUE_ACQUISITION", default="bald")
QUEUE_POWER_BETA = env.float("QUEUE_POWER_BETA", default=1.0)

# Monitoring (docs/operations.md): Celery heartbeats, probe timeouts.
MONITORING_HEARTBEAT_INTERVAL = env.float("MONITORING_HEARTBEAT_INTERVAL", default=30.0)
MONITORING_HEARTBEAT_TIMEOUT = env.float("MONITORING_HEARTBEAT_TIMEOUT", default=120.0)
MONITORING_BROKER_TIMEOUT = env.float("MONITORING_BROKER_TIMEOUT", default=2.0)
MONITORING_CLASSIFICATION_LOOKBACK = env.int("MONITORING_CLASSIFICATION_LOOKBACK", default=86400)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # faiss (review.vectors, imported with the URLs) announces at INFO which CPU build it loaded,
    # on every process start.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "faiss.loader": {"level": "WARNING"}},
}

# Scientists' workbench (docs/workbench.md).
REVIEW_MIN_VOTES = env.int("REVIEW_MIN_VOTES", default=5)  # votes before model–crowd disagreement is scored
REVIEW_REFRESH_CHUNK_SIZE = env.int("REVIEW_REFRESH_CHUNK_SIZE", default=5000)
REVIEW_INLINE_REFRESH_LIMIT = env.int("REVIEW_INLINE_REFRESH_LIMIT", default=20000)
REVIEW_PAGE_SIZE = env.int("REVIEW_PAGE_SIZE", default=48)
REVIEW_MAX_PAGE_SIZE = env.int("REVIEW_MAX_PAGE_SIZE", default=200)
REVIEW_MAX_CONE_DEG = env.float("REVIEW_MAX_CONE_DEG", default=10.0)
# Galaxies kept at each end of every answer's interval widths (review.models.IntervalExtreme):
# the queue's width sort is indexed for its first REVIEW_WIDTH_EXTREMES rows either way.
REVIEW_WIDTH_EXTREMES = env.int("REVIEW_WIDTH_EXTREMES", default=5000)
# "More like this" (review.vectors): neighbours shown, the most a request may ask for, the
# catalogue size up to which the index is exact, and the inverted-file cells searched above it.
REVIEW_NEIGHBOURS = env.int("REVIEW_NEIGHBOURS", default=12)
REVIEW_MAX_NEIGHBOURS = env.int("REVIEW_MAX_NEIGHBOURS", default=100)
REVIEW_EXACT_INDEX_LIMIT = env.int("REVIEW_EXACT_INDEX_LIMIT", default=100000)
REVIEW_INDEX_NPROBE = env.int("REVIEW_INDEX_NPROBE", default=32)
EXPORT_CHUNK_SIZE = env.int("EXPORT_CHUNK_SIZE", default=5000)
