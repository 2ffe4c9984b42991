"""Asks Django itself for a database's migration state and plans.

Run with the python of a generation's venv, in its app directory, with the
environment of the service (settings file, credentials). Prints one line,
the marker and a JSON object; everything else the app prints is noise.

    helper.py state          the code's graph against the database
    helper.py plan TARGETS   the plan that `migrate` would run to reach
                             TARGETS, a JSON object {app: name or null}
"""

import json
import os
import sys

MARKER = "BITPOLL-MIGRATION-JSON:"

# Forward operations whose reversal cannot bring the data back.
DROPS = ("RemoveField", "DeleteModel")


def setup():
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        names = [
            n for n in sorted(os.listdir("."))
            if os.path.isfile(os.path.join(n, "settings.py"))
            and os.path.isfile(os.path.join(n, "wsgi.py"))
        ]
        if len(names) != 1:
            sys.exit(f"want one Django project in {os.getcwd()}, found {names}")
        os.environ["DJANGO_SETTINGS_MODULE"] = names[0] + ".settings"
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()


def has_db(connection):
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        return bool(name) and os.path.exists(str(name))
    return True


def state():
    from django.core import checks
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    # The system checks import the URL conf and every app's modules: an
    # app that fails at import fails here, before the database changes.
    try:
        errors = [
            str(m) for m in checks.run_checks(include_deployment_checks=False)
            if m.level >= checks.ERROR
        ]
    except Exception as e:
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1]
        errors = [f"{type(e).__name__}: {e} (at {where.filename}:{where.lineno})"]
    exists = has_db(connection)
    loader = MigrationLoader(connection if exists else None, ignore_no_migrations=True)
    graph = loader.graph
    leaves = {}
    for app, name in graph.leaf_nodes():
        leaves.setdefault(app, []).append(name)
    out = {"leaves": leaves, "errors": errors, "database": exists}
    applied = set(loader.applied_migrations) if exists else set()
    out["applied"] = sorted([a, n] for a, n in applied)
    # A squashed migration stands in the graph for the ones it replaces,
    # which stay recorded as applied: those are known too.
    known = set(graph.nodes)
    for m in loader.replacements.values():
        known.update(m.replaces)
    out["unknown"] = sorted([a, n] for a, n in applied if (a, n) not in known)
    plan = []
    for leaf in graph.leaf_nodes():
        for node in graph.forwards_plan(leaf):
            if node not in applied and list(node) not in plan:
                plan.append(list(node))
    out["unapplied"] = plan
    if exists:
        if connection.vendor == "sqlite":
            with connection.cursor() as c:
                c.execute("PRAGMA integrity_check")
                out["integrity"] = "; ".join(str(r[0]) for r in c.fetchall())
    return out


def describe(op):
    try:
        return f"{type(op).__name__}: {op.describe()}"
    except Exception:
        return type(op).__name__


def plan(targets):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    pairs = []
    for app, name in sorted(targets.items()):
        if name is not None and (app, name) not in graph.nodes:
            sys.exit(f"this code has no migration {app}.{name}")
        pairs.append((app, name))
    steps = []
    for migration, backwards in executor.migration_plan(pairs):
        step = {"app": migration.app_label, "name": migration.name, "backwards": backwards,
                "irreversible": [], "drops": []}
        if backwards:
            for op in migration.operations:
                if not op.reversible:
                    step["irreversible"].append(describe(op))
                if type(op).__name__ in DROPS:
                    step["drops"].append(describe(op))
        steps.append(step)
    return {"steps": steps}


def main():
    setup()
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "state":
        out = state()
    elif cmd == "plan" and len(sys.argv) == 3:
        out = plan(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: helper.py state | plan TARGETS")
    sys.stdout.flush()
    print(MARKER + json.dumps(out, sort_keys=True), flush=True)


main()
