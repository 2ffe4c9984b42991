"""Runs the settings shim against each case file named on the command line.

Usage: run_cases.py SHIM CASE...; prints one JSON line per case with the
settings the shim made or the error it raised. A stand-in project package
is built in a temporary directory, with the shim as its settings_local.py,
and imported afresh for each case.
"""
import importlib
import json
import os
import shutil
import sys
import tempfile

from django.core.exceptions import ImproperlyConfigured

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]


def main():
    shim, cases = sys.argv[1], sys.argv[2:]
    root = tempfile.mkdtemp()
    try:
        pkg = os.path.join(root, "proj")
        os.mkdir(pkg)
        open(os.path.join(pkg, "__init__.py"), "w").close()
        with open(os.path.join(pkg, "settings.py"), "w") as f:
            f.write(f"MIDDLEWARE = {MIDDLEWARE!r}\nfrom .settings_local import *\n")
        shutil.copy(shim, os.path.join(pkg, "settings_local.py"))
        sys.path.insert(0, root)
        os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
        for case in cases:
            print(json.dumps(run(case, root)), flush=True)
    finally:
        shutil.rmtree(root)


def run(case, root):
    with open(case, encoding="utf-8") as f:
        body = "".join(line for line in f if not line.startswith("#"))
    settings = os.path.join(root, "settings.json")
    with open(settings, "w", encoding="utf-8") as f:
        f.write(body)
    os.environ["BITPOLL_SETTINGS_FILE"] = settings
    for name in ("proj.settings", "proj.settings_local"):
        sys.modules.pop(name, None)
    try:
        mod = importlib.import_module("proj.settings")
    except ImproperlyConfigured as e:
        return {"case": case, "error": f"ImproperlyConfigured: {e}"}
    except Exception as e:  # report any failure, the test decides
        return {"case": case, "error": f"{type(e).__name__}: {e}"}
    names = importlib.import_module("proj.settings_local").__all__
    return {"case": case, "settings": {n: getattr(mod, n) for n in names}}


if __name__ == "__main__":
    main()
