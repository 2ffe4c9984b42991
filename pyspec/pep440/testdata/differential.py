"""Answer pep440 queries with the packaging library, one JSON object a line.

Reads a JSON list of queries on stdin and writes a JSON list of answers.
Prints {"skip": reason} when packaging is missing or older than 26, whose
exclusive-ordering rules differ.
"""
import json
import sys

try:
    import packaging
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version
except ImportError:
    print(json.dumps({"skip": "python3 has no packaging library"}))
    sys.exit(0)

if int(packaging.__version__.split(".")[0]) < 26:
    print(json.dumps({"skip": "packaging %s is older than 26" % packaging.__version__}))
    sys.exit(0)


specifier_sets = {}


def answer(q):
    op = q["op"]
    if op == "parse":
        try:
            return {"ok": True, "norm": str(Version(q.get("s", "")))}
        except InvalidVersion:
            return {"ok": False}
    if op == "cmp":
        a, b = Version(q["a"]), Version(q["b"])
        return {"cmp": (a > b) - (a < b)}
    if op == "specs":
        try:
            return {"ok": True, "norm": str(SpecifierSet(q.get("s", "")))}
        except InvalidSpecifier:
            return {"ok": False}
    if op == "contains":
        text = q.get("s", "")
        if text not in specifier_sets:
            specifier_sets[text] = SpecifierSet(text)
        ss = specifier_sets[text]
        pre = bool(q.get("pre", False) or ss.prereleases)
        return {"in": ss.contains(Version(q["v"]), prereleases=pre)}
    raise ValueError(op)


print(json.dumps({"answers": [answer(q) for q in json.load(sys.stdin)]}))
