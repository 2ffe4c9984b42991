# Calls one PEP 517 hook of a build backend, for bitpoll-install.
#
#   python -I runner.py REQUEST RESULT
#
# REQUEST is a JSON file {"backend", "backend_path", "hook", "kwargs"}.
# RESULT receives one JSON object:
#   {"return": value}          the hook ran and returned value
#   {"unavailable": message}   the backend cannot be imported
#   {"no_hook": true}          the backend lacks the (optional) hook
# Anything else, including a traceback on stderr, is a failed hook.
# The working directory is the source tree, as PEP 517 requires.

import importlib
import json
import os
import sys


def load_backend(spec, backend_path):
    module_name, _, object_path = spec.partition(":")
    if backend_path:
        sys.path[:0] = backend_path
    module = importlib.import_module(module_name)
    if backend_path:
        # An in-tree backend must come from backend-path, not from an
        # installed package of the same name.
        origin = os.path.realpath(getattr(module, "__file__", None) or "")
        if not any(origin.startswith(os.path.join(p, "")) for p in backend_path):
            raise ImportError(
                "%s was loaded from %s, outside backend-path" % (module_name, origin)
            )
    obj = module
    for attr in filter(None, object_path.split(".")):
        obj = getattr(obj, attr)
    return obj


def main():
    request_path, result_path = sys.argv[1:3]
    with open(request_path) as f:
        request = json.load(f)
    try:
        backend = load_backend(request["backend"], request["backend_path"])
    except (ImportError, AttributeError) as e:
        result = {"unavailable": "%s: %s" % (type(e).__name__, e)}
    else:
        hook = getattr(backend, request["hook"], None)
        if hook is None:
            result = {"no_hook": True}
        else:
            result = {"return": hook(**request["kwargs"])}
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
