"""Deployment settings for a Django project installed by bitpoll-install.

The project's settings.py ends in ``from .settings_local import *``; this file
is dropped in as that settings_local.py. It holds no site data itself:

- the settings come from the JSON file named by $BITPOLL_SETTINGS_FILE;
- SECRET_KEY and FIELD_ENCRYPTION_KEY come from the files secret_key and
  field_encryption_key in $CREDENTIALS_DIRECTORY (systemd LoadCredential=)
  or else in $BITPOLL_SECRETS_DIR. Secrets are never read from the
  environment, so they cannot leak through /proc/<pid>/environ or a child.

Only the names listed in __all__ are exported, so a star import sees the
settings and none of the helpers. The JSON keys and their rules match the Go
type shim.Settings; keep the two in step.
"""

import copy
import json
import os
import re
import sys
from importlib.util import find_spec
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SETTINGS_ENV = "BITPOLL_SETTINGS_FILE"
SECRETS_ENV = "BITPOLL_SECRETS_DIR"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
# Set by each generation's unit: its own static files, over static_root,
# while two generations serve side by side during a switch.
STATIC_ROOT_ENV = "BITPOLL_STATIC_ROOT"

WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"
SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
HSTS_DEFAULT_SECONDS = 31536000

KEYS = {
    "allowed_hosts", "base_url", "csrf_trusted_origins", "database",
    "static_root", "media_root", "debug", "time_zone", "email",
    "secure_proxy_ssl_header", "ssl_redirect", "hsts_seconds",
    "hsts_include_subdomains", "hsts_preload", "whitenoise",
    "static_storage", "log_level", "django",
}
DATABASE_KEYS = {"engine", "path", "name", "user", "host", "port", "url"}
EMAIL_KEYS = {"backend", "host", "port", "user", "use_tls", "use_ssl", "from"}
ENGINES = {
    "sqlite": "django.db.backends.sqlite3",
    "postgresql": "django.db.backends.postgresql",
}
URL_SCHEMES = {"sqlite": "sqlite", "postgres": "postgresql", "postgresql": "postgresql"}
EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
SECRET_NAMES = {"SECRET_KEY", "FIELD_ENCRYPTION_KEY"}
SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")
DOTTED_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")


class SettingsError(ImproperlyConfigured):
    """A bad value in the settings file; the message names the key."""

    def __init__(self, key, msg):
        super().__init__(f"bitpoll settings: {key}: {msg}")


def load_json():
    path = os.environ.get(SETTINGS_ENV)
    if not path:
        raise ImproperlyConfigured(
            f"${SETTINGS_ENV} is not set: point it at the JSON settings file "
            "written by bitpoll-install (for example /etc/bitpoll/settings.json)")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except OSError as e:
        raise ImproperlyConfigured(
            f"read settings file {q(path)} (from ${SETTINGS_ENV}): {e.strerror}; "
            "check the path and that the service user may read it") from None
    except ValueError as e:
        raise ImproperlyConfigured(
            f"parse settings file {q(path)}: {e}; it must be one JSON object") from None
    if not isinstance(cfg, dict):
        raise ImproperlyConfigured(
            f"parse settings file {q(path)}: got a JSON {type(cfg).__name__}, want an object")
    return cfg


def q(v):
    # Quote like Go's %q, so both sides print values the same way.
    return json.dumps(v)


def check_keys(obj, allowed, prefix):
    for k in obj:
        if k not in allowed:
            raise SettingsError(prefix + k, "unknown key; expected one of " + ", ".join(sorted(allowed)))


def get(obj, key, kind, default=None, prefix=""):
    if key not in obj:
        return default
    v = obj[key]
    # bool is an int in Python; JSON true is no port number.
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise SettingsError(prefix + key, f"got {q(v)}, want a JSON {kind_name(kind)}")
    return v


def kind_name(kind):
    return {str: "string", bool: "boolean", int: "integer", list: "array", dict: "object"}[kind]


def strings(obj, key):
    v = get(obj, key, list, [])
    for i, s in enumerate(v):
        if not isinstance(s, str) or not s:
            raise SettingsError(f"{key}[{i}]", f"got {q(s)}, want a non-empty string")
    return v


def abs_path(obj, key, prefix="", required=True):
    v = get(obj, key, str, prefix=prefix)
    if v is None:
        if required:
            raise SettingsError(prefix + key, "missing; set it to an absolute path")
        return None
    if not os.path.isabs(v):
        raise SettingsError(prefix + key, f"{q(v)} is not an absolute path; give the full path")
    return v


def static_root(cfg):
    v = os.environ.get(STATIC_ROOT_ENV)
    if v:
        if not os.path.isabs(v):
            raise SettingsError("static_root", f"${STATIC_ROOT_ENV} {q(v)} is not an absolute path")
        return v
    return abs_path(cfg, "static_root")


def port(obj, key, prefix):
    v = get(obj, key, int, prefix=prefix)
    if v is not None and not 0 < v < 65536:
        raise SettingsError(prefix + key, f"{v} is out of range; want 1 to 65535")
    return v


def parse_base_url(cfg):
    raw = get(cfg, "base_url", str)
    if not raw:
        raise SettingsError("base_url", "missing; set it to the public URL, e.g. \"https://poll.example.org\"")
    u = urlsplit(raw)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise SettingsError("base_url", f"{q(raw)} is not an absolute http(s) URL; write it like \"https://poll.example.org\"")
    if u.username is not None or u.query or u.fragment:
        raise SettingsError("base_url", f"{q(raw)} has user info, a query or a fragment; give only scheme, host, port and path")
    return u


def check_origin(key, raw):
    u = urlsplit(raw)
    if u.scheme not in ("http", "https") or not u.netloc or u.path not in ("", "/") or u.query or u.fragment:
        raise SettingsError(key, f"{q(raw)} is not an origin; write it like \"https://poll.example.org\"")


def read_secret(name, required=True):
    for var in (CREDENTIALS_ENV, SECRETS_ENV):
        d = os.environ.get(var)
        if d:
            break
    else:
        raise ImproperlyConfigured(
            f"no secrets directory: neither ${CREDENTIALS_ENV} (systemd LoadCredential=) "
            f"nor ${SECRETS_ENV} is set; set {SECRETS_ENV} to the directory holding "
            "secret_key and field_encryption_key")
    path = os.path.join(d, name)
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except FileNotFoundError:
        if not required:
            return None
        raise ImproperlyConfigured(
            f"secret file {q(path)} (in ${var}) is missing; create it with mode 0600, "
            "or run bitpoll-install again, which generates missing secrets") from None
    except OSError as e:
        raise ImproperlyConfigured(
            f"read secret file {q(path)} (in ${var}): {e.strerror}; "
            "it must be readable by the service user only") from None
    if not value:
        raise ImproperlyConfigured(f"secret file {q(path)} (in ${var}) is empty; put the secret in it")
    return value


def database(cfg):
    db = get(cfg, "database", dict)
    if db is None:
        raise SettingsError("database", "missing; set {\"engine\": \"sqlite\", \"path\": ...} or {\"url\": ...}")
    check_keys(db, DATABASE_KEYS, "database.")
    url = get(db, "url", str, prefix="database.")
    if url is not None:
        others = sorted(k for k in db if k != "url")
        if others:
            raise SettingsError("database.url", "cannot be combined with " + ", ".join(others) + "; use one form")
        db = database_url(url)
    engine = get(db, "engine", str, prefix="database.")
    if engine not in ENGINES:
        raise SettingsError("database.engine", f"got {q(engine)}, want \"sqlite\" or \"postgresql\"")
    if engine == "sqlite":
        for k in ("name", "user", "host", "port"):
            if k in db:
                raise SettingsError("database." + k, "is not used with sqlite; remove it and set database.path")
        return {"ENGINE": ENGINES[engine], "NAME": abs_path(db, "path", "database.")}
    if "path" in db:
        raise SettingsError("database.path", "is for sqlite; with postgresql set database.name")
    name = get(db, "name", str, prefix="database.")
    if not name:
        raise SettingsError("database.name", "missing; set the postgresql database name")
    out = {
        "ENGINE": ENGINES[engine],
        "NAME": name,
        "USER": get(db, "user", str, "", "database."),
        "HOST": get(db, "host", str, "", "database."),
        "PORT": str(port(db, "port", "database.") or ""),
    }
    password = read_secret("db_password", required=False)
    if password is not None:
        out["PASSWORD"] = password
    return out


def database_url(raw):
    u = urlsplit(raw)
    engine = URL_SCHEMES.get(u.scheme)
    if engine is None:
        raise SettingsError("database.url", f"{q(raw)} has scheme {q(u.scheme)}; want postgresql:// or sqlite:///")
    if u.password is not None:
        raise SettingsError("database.url", "contains a password; remove it and put it in the credential file db_password")
    if engine == "sqlite":
        if u.netloc:
            raise SettingsError("database.url", f"{q(raw)} has a host; write sqlite:////abs/path (three slashes, then the path)")
        # As in SQLAlchemy, the path follows the third slash:
        # sqlite:////var/lib/db is absolute, sqlite:///db is relative.
        return {"engine": engine, "path": unquote(u.path)[1:]}
    db = {"engine": engine, "name": unquote(u.path.lstrip("/"))}
    if u.username:
        db["user"] = unquote(u.username)
    host = parse_qs(u.query).get("host", [unquote(u.hostname or "")])[-1]
    if host:
        db["host"] = host
    try:
        if u.port is not None:
            db["port"] = u.port
    except ValueError:
        raise SettingsError("database.url", f"{q(raw)} has a bad port; want 1 to 65535") from None
    return db


def email(cfg):
    e = get(cfg, "email", dict)
    if e is None:
        return {}
    check_keys(e, EMAIL_KEYS, "email.")
    backend = get(e, "backend", str, "smtp", "email.")
    if backend not in EMAIL_BACKENDS:
        raise SettingsError("email.backend", f"got {q(backend)}, want \"smtp\" or \"console\"")
    out = {"EMAIL_BACKEND": EMAIL_BACKENDS[backend]}
    use_tls = get(e, "use_tls", bool, False, "email.")
    use_ssl = get(e, "use_ssl", bool, False, "email.")
    if use_tls and use_ssl:
        raise SettingsError("email.use_ssl", "cannot be combined with email.use_tls; STARTTLS (use_tls) or TLS from the start (use_ssl), not both")
    out["EMAIL_USE_TLS"], out["EMAIL_USE_SSL"] = use_tls, use_ssl
    for key, name in (("host", "EMAIL_HOST"), ("user", "EMAIL_HOST_USER")):
        v = get(e, key, str, prefix="email.")
        if v is not None:
            out[name] = v
    p = port(e, "port", "email.")
    if p is not None:
        out["EMAIL_PORT"] = p
    sender = get(e, "from", str, prefix="email.")
    if sender is not None:
        if "@" not in sender:
            raise SettingsError("email.from", f"{q(sender)} is not a mail address; write it like \"bitpoll@example.org\"")
        out["DEFAULT_FROM_EMAIL"] = out["SERVER_EMAIL"] = sender
    password = read_secret("email_password", required=False)
    if password is not None:
        out["EMAIL_HOST_PASSWORD"] = password
    return out


def base_settings():
    # The importing settings module is half-initialised in sys.modules while
    # it runs its star import; read the values it set before it.
    names = [os.environ.get("DJANGO_SETTINGS_MODULE"), (__package__ or "") + ".settings"]
    for name in names:
        mod = sys.modules.get(name or "")
        if mod is not None:
            return vars(mod)
    return {}


def whitenoise_available():
    try:
        return find_spec("whitenoise.middleware") is not None
    except ImportError:
        return False


def middleware(cfg, base):
    want = get(cfg, "whitenoise", bool)
    if want is False:
        return {}
    if not whitenoise_available():
        if want:
            raise SettingsError("whitenoise", "is true but the whitenoise module is not installed; add it to the lock or set it to false")
        return {}
    mw = list(base.get("MIDDLEWARE", []))
    if WHITENOISE in mw:
        return {}
    # WhiteNoise must come right after SecurityMiddleware so static files
    # still get the security headers but skip sessions and CSRF.
    at = mw.index(SECURITY_MIDDLEWARE) + 1 if SECURITY_MIDDLEWARE in mw else 0
    mw.insert(at, WHITENOISE)
    return {"MIDDLEWARE": mw}


def storage(cfg, base):
    backend = get(cfg, "static_storage", str)
    if backend is None:
        return {}
    if not DOTTED_PATH.match(backend):
        raise SettingsError("static_storage", f"{q(backend)} is not a dotted class path; write it like \"whitenoise.storage.CompressedManifestStaticFilesStorage\"")
    # Django refuses STORAGES beside the older STATICFILES_STORAGE (Bitpoll
    # 0.10.0 sets the latter), so override whichever the project uses.
    if "STATICFILES_STORAGE" in base and "STORAGES" not in base:
        return {"STATICFILES_STORAGE": backend}
    storages = copy.deepcopy(base.get("STORAGES") or {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    })
    storages["staticfiles"] = {"BACKEND": backend}
    return {"STORAGES": storages}


def security(cfg, url, base):
    https = url.scheme == "https"
    proxy = get(cfg, "secure_proxy_ssl_header", bool, False)
    redirect = get(cfg, "ssl_redirect", bool, False)
    if redirect and not proxy:
        raise SettingsError("ssl_redirect", "needs secure_proxy_ssl_header true; behind a TLS proxy Django sees plain http and would redirect forever")
    hsts = get(cfg, "hsts_seconds", int, HSTS_DEFAULT_SECONDS if https else 0)
    if hsts < 0:
        raise SettingsError("hsts_seconds", f"{hsts} is negative; use 0 to send no HSTS header")
    subdomains = get(cfg, "hsts_include_subdomains", bool, True)
    preload = get(cfg, "hsts_preload", bool, False)
    out = {
        "SESSION_COOKIE_SECURE": https,
        "CSRF_COOKIE_SECURE": https,
        "SECURE_SSL_REDIRECT": redirect,
        "SECURE_HSTS_SECONDS": hsts,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": subdomains,
        "SECURE_HSTS_PRELOAD": preload,
    }
    if proxy:
        out["SECURE_PROXY_SSL_HEADER"] = ("HTTP_X_FORWARDED_PROTO", "https")
    silenced = list(base.get("SILENCED_SYSTEM_CHECKS", []))
    if https and not redirect:
        # The TLS proxy redirects http to https; Django behind it cannot.
        silenced.append("security.W008")
    if https and hsts and not preload:
        # Preloading commits the whole domain in browsers for good; that is
        # the admin's call (hsts_preload), not a default.
        silenced.append("security.W021")
    out["SILENCED_SYSTEM_CHECKS"] = silenced
    return out


def logging_config(cfg):
    level = get(cfg, "log_level", str, "INFO")
    if level not in LOG_LEVELS:
        raise SettingsError("log_level", f"got {q(level)}, want one of " + ", ".join(sorted(LOG_LEVELS)))
    # journald stamps time and unit itself; stderr is enough.
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}
    return {"LOGGING": {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {"django": {"handlers": ["stderr"], "level": level, "propagate": False}},
    }}


def extra(cfg):
    names = get(cfg, "django", dict, {})
    for name in names:
        if not SETTING_NAME.match(name):
            raise SettingsError("django." + name, "is not a Django setting name; names are UPPERCASE like \"SITE_NAME\"")
        if name in SECRET_NAMES:
            raise SettingsError("django." + name, f"must not be in the settings file; it is read from the credential file {name.lower()}")
    return names


def build():
    cfg = load_json()
    check_keys(cfg, KEYS, "")
    base = base_settings()
    url = parse_base_url(cfg)
    origin = f"{url.scheme}://{url.netloc}"
    hosts = strings(cfg, "allowed_hosts")
    for i, h in enumerate(hosts):
        if "/" in h or h != h.strip() or (":" in h and not h.startswith("[")):
            raise SettingsError(f"allowed_hosts[{i}]", f"{q(h)} is not a host name; drop the scheme, port and path")
    origins = strings(cfg, "csrf_trusted_origins")
    for i, o in enumerate(origins):
        check_origin(f"csrf_trusted_origins[{i}]", o)

    s = {
        # Bitpoll's settings.py adds these after the star import.
        "INSTALLED_APPS_LOCAL": [],
        "MIDDLEWARE_LOCAL": [],
        "PIPELINE_LOCAL": {},
        "BASE_URL": url.geturl().rstrip("/"),
        "ALLOWED_HOSTS": hosts or [url.hostname],
        "CSRF_TRUSTED_ORIGINS": list(dict.fromkeys([origin] + origins)),
        "DATABASES": {"default": database(cfg)},
        "STATIC_ROOT": static_root(cfg),
        "MEDIA_ROOT": abs_path(cfg, "media_root"),
        "DEBUG": get(cfg, "debug", bool, False),
    }
    tz = get(cfg, "time_zone", str)
    if tz is not None:
        if not tz:
            raise SettingsError("time_zone", "is empty; give an IANA name like \"Europe/Berlin\" or remove it")
        s["TIME_ZONE"] = tz
    if "STATIC_PRECOMPILER_ROOT" in base:
        s["STATIC_PRECOMPILER_ROOT"] = s["STATIC_ROOT"]
    if "DEFAULT_AUTO_FIELD" not in base:
        # Keeps the integer keys existing migrations were made with, and
        # silences models.W042.
        s["DEFAULT_AUTO_FIELD"] = "django.db.models.AutoField"
    s.update(email(cfg))
    s.update(security(cfg, url, base))
    s.update(middleware(cfg, base))
    s.update(storage(cfg, base))
    s.update(logging_config(cfg))
    s.update(extra(cfg))
    s["SECRET_KEY"] = read_secret("secret_key")
    s["FIELD_ENCRYPTION_KEY"] = read_secret("field_encryption_key")
    return s


# The key of the session advisory lock that migrate takes on PostgreSQL;
# advisory keys are per database, so one key serves every site.
MIGRATE_LOCK_KEY = int.from_bytes(b"bitpoll", "big")


def lock_migrations():
    """Serialize migrate runs on one PostgreSQL database.

    App hosts that share the database and upgrade at once each run migrate.
    Django reads django_migrations and plans on its first connection, so a
    migrate process takes the lock on every connection as it opens, before
    anything is read: one host migrates, the others wait for it and then
    find nothing left to apply. The session holds the lock until it ends.
    """
    if sys.argv[1:2] != ["migrate"]:
        return
    from django.db.backends.signals import connection_created

    def take(sender, connection, **kwargs):
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as c:
            c.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
            if c.fetchone()[0]:
                return
            name = connection.settings_dict["NAME"]
            print(f"waiting for the migration lock of database {name}: another host is migrating it "
                  f"(PostgreSQL advisory lock {MIGRATE_LOCK_KEY})", file=sys.stderr, flush=True)
            c.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
            print(f"got the migration lock of database {name}", file=sys.stderr, flush=True)

    connection_created.connect(take, weak=False, dispatch_uid="bitpoll-install-migrate-lock")


_settings = build()
lock_migrations()
globals().update(_settings)
__all__ = sorted(_settings)
