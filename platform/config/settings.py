"""Settings, all overridable from the environment (12-factor, django-environ).

With nothing set, the embedded default runs the demo: SQLite under ``var/`` and Celery's
filesystem broker (a real worker process, no server needed). Production and CI set
``DATABASE_URL=postgres://...`` and ``CELERY_BROKER_URL=redis://...``.
"""

from pathlib import Path

import environ

from config import REPO_ROOT

env = environ.Env()
environ.Env.read_env(REPO_ROOT / ".env", overwrite=False)

BASE_DIR = REPO_ROOT
VAR_DIR = Path(env.str("VAR_DIR", default=str(REPO_ROOT / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-demo-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    # Domain apps (platform/)
    "core",
    "workflows",
    "galaxies",
    "classifications",
    "retraining",
    "demo",
    # Volunteer web UI (frontend/)
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"

# Signed-cookie sessions: an anonymous volunteer's id lives in the cookie, so the hot API
# paths (next subjects, submit) cost no session query.
SESSION_ENGINE = env.str("SESSION_ENGINE", default="django.contrib.sessions.backends.signed_cookies")
SESSION_COOKIE_AGE = 60 * 60 * 24 * 365

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
    # The test database is a file too (not Django's in-memory default), so the worker tests'
    # Celery worker process opens the same database as the test.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email", "username"}
# Volunteers sign up with email + password; admins may still sign in by username.
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="none")
LOGIN_REDIRECT_URL = "/"
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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
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
}

# Celery: the filesystem transport needs no server (demo); Redis in production and CI.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_DIR = VAR_DIR / "broker"
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
    # Longer than the longest training run, so a slow run is not redelivered while alive.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600)}
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
    "reap-stale-training-runs": {"task": "retraining.tasks.reap_stale_runs", "schedule": 300.0},
}

# Domain settings.
QUEUE_RANDOM_FRACTION = env.float("QUEUE_RANDOM_FRACTION", default=0.2)
QUEUE_BATCH_SIZE = env.int("QUEUE_BATCH_SIZE", default=10)

# Retraining (docs/retraining.md). A run's configuration is a named preset of
# classifier.training.TRAIN_PRESETS ("default", "fast_cpu") plus overrides of its fields.
RETRAIN_TRAIN_PRESET = env.str("RETRAIN_TRAIN_PRESET", default="fast_cpu")
RETRAIN_TRAIN_OVERRIDES = env.json("RETRAIN_TRAIN_OVERRIDES", default={})
RETRAIN_DEMO_PRESET = env.str("RETRAIN_DEMO_PRESET", default="fast_cpu")
RETRAIN_DEMO_OVERRIDES = env.json("RETRAIN_DEMO_OVERRIDES", default={})
RETRAIN_AFTER_CLASSIFICATIONS = env.int("RETRAIN_AFTER_CLASSIFICATIONS", default=500)  # 0 disables
RETRAIN_HOLDOUT_FRACTION = env.float("RETRAIN_HOLDOUT_FRACTION", default=0.1)
RETRAIN_MIN_GALAXIES = env.int("RETRAIN_MIN_GALAXIES", default=10)
RETRAIN_PREDICT_CHUNK_SIZE = env.int("RETRAIN_PREDICT_CHUNK_SIZE", default=2000)
RETRAIN_PREDICT_MC_SAMPLES = env.int("RETRAIN_PREDICT_MC_SAMPLES", default=5)
RETRAIN_INTERVAL_GRID_POINTS = env.int("RETRAIN_INTERVAL_GRID_POINTS", default=101)
RETRAIN_PROGRESS_INTERVAL = env.float("RETRAIN_PROGRESS_INTERVAL", default=2.0)
RETRAIN_HEARTBEAT_TIMEOUT = env.int("RETRAIN_HEARTBEAT_TIMEOUT", default=600)
RETRAIN_SOFT_TIME_LIMIT = env.int("RETRAIN_SOFT_TIME_LIMIT", default=4 * 3600)
RETRAIN_CHUNK_TIME_LIMIT = env.int("RETRAIN_CHUNK_TIME_LIMIT", default=1800)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
