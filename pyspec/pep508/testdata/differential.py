"""Answer pep508 queries with the packaging library.

Reads a JSON list of queries on stdin and writes {"answers": [...]}.
Prints {"skip": reason} when packaging is missing or older than 26.4, the
first release that evaluates "extra" against a set of selected extras.
"""
import json
import sys

try:
    import packaging
    from packaging.markers import InvalidMarker, Marker
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
except ImportError:
    print(json.dumps({"skip": "python3 has no packaging library"}))
    sys.exit(0)

if tuple(int(x) for x in packaging.__version__.split(".")[:2]) < (26, 4):
    print(json.dumps({"skip": "packaging %s is older than 26.4" % packaging.__version__}))
    sys.exit(0)


def environment(minor, arch, extras):
    full = "3.%d.0" % minor
    return {
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": arch,
        "python_version": "3.%d" % minor,
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
        "extra": frozenset(extras),
        "extras": frozenset(canonicalize_name(e) for e in extras),
        "dependency_groups": frozenset(),
    }


markers = {}


def marker(text):
    if text not in markers:
        try:
            markers[text] = Marker(text)
        except InvalidMarker:
            markers[text] = None
    return markers[text]


def evaluate(text, q):
    m = marker(text)
    env = environment(q["py"], q["arch"], q.get("extras") or [])
    return m.evaluate(env, context="lock_file")


def answer(q):
    if q["op"] == "marker":
        if marker(q["s"]) is None:
            return {"ok": False}
        try:
            return {"ok": True, "val": evaluate(q["s"], q), "canon": evaluate(q["canon"], q)}
        except Exception as e:  # undefined comparisons: nothing to compare
            return {"ok": True, "err": repr(e)}
    if q["op"] == "req":
        try:
            r = Requirement(q["s"])
        except InvalidRequirement:
            return {"ok": False}
        return {
            "ok": True,
            "name": canonicalize_name(r.name),
            "extras": sorted({canonicalize_name(e) for e in r.extras}),
            "spec": str(r.specifier),
            "url": r.url or "",
            "marker": str(r.marker) if r.marker is not None else "",
        }
    raise ValueError(q["op"])


print(json.dumps({"answers": [answer(q) for q in json.load(sys.stdin)]}))
