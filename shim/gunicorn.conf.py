# gunicorn's configuration for every generation (the Go units and the
# NixOS module pass it with --config).
#
# It warms the app in the master: after --preload has imported it and
# before the workers fork, one GET / runs through the whole stack. Django
# imports the URL conf, the views and the templates on the first request,
# which takes seconds on a small machine; without this, every new worker
# pays that on its first real request, and a switch hands traffic to
# workers that stall it.

import io
import sys
import time


def on_starting(server):
    # Without --preload the master holds no app, and loading it here
    # would change what the workers import.
    if not server.cfg.preload_app:
        return
    app = server.app.wsgi()
    start = time.monotonic()
    status = "no answer"
    try:
        status = _get_root(app)
    except Exception as exc:  # the health gate judges the app, not this
        status = "%s: %s" % (type(exc).__name__, exc)
    finally:
        # The workers must not share the master's database connections.
        from django.db import connections

        connections.close_all()
    server.log.info("warmed the app before forking: GET / -> %s in %.2fs", status, time.monotonic() - start)


def _get_root(app):
    from django.conf import settings

    # A Host that ALLOWED_HOSTS accepts, or Django answers 400 early.
    host = "localhost"
    for h in settings.ALLOWED_HOSTS:
        h = h.lstrip(".")
        if h and h != "*":
            host = h
            break
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": host,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if getattr(settings, "SECURE_SSL_REDIRECT", False) else "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    # Behind a TLS proxy, a request without its header is redirected
    # before it reaches the views.
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if header:
        environ[header[0]] = header[1]
    statuses = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        for _ in body:
            pass
    finally:
        if hasattr(body, "close"):
            body.close()
    return statuses[0] if statuses else "no status"
