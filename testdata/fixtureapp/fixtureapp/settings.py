"""Settings of the fixture project, laid out like Bitpoll's.

Site-specific values (secrets, hosts, database, paths) come from
settings_local.py, which the installer drops in beside this file.
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEBUG = False
ALLOWED_HOSTS = []

STATIC_URL = "/static/"
STATIC_ROOT = os.path.join(BASE_DIR, "_static")
MEDIA_URL = "/media/"
MEDIA_ROOT = os.path.join(BASE_DIR, "_media")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "fixtureapp.polls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.locale.LocaleMiddleware",
]

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

ROOT_URLCONF = "fixtureapp.urls"
WSGI_APPLICATION = "fixtureapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(BASE_DIR, "db.sqlite3"),
    }
}

LANGUAGE_CODE = "en-us"
LANGUAGES = [("de", "Deutsch"), ("en", "English")]
LOCALE_PATHS = [os.path.join(BASE_DIR, "locale")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

from .settings_local import *  # noqa: E402,F401,F403

INSTALLED_APPS += INSTALLED_APPS_LOCAL  # noqa: F405
if "MIDDLEWARE_LOCAL" in locals():
    MIDDLEWARE += MIDDLEWARE_LOCAL  # noqa: F405
