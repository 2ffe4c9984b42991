package testarchive

import (
	"encoding/json"
	"strings"
	"testing"
)

// demoBackend is an in-tree PEP 517 backend written in plain Python, so
// that building the sdist needs no package at all. It logs each hook call
// with what it saw to MARKER (when set), asks for the requirements in
// REQUIRES, and builds a pure-Python wheel named WHEEL_NAME holding
// demo_pkg.py. A file "sleep" in the tree makes it sleep a minute, a file
// "fail" makes it fail.
const demoBackend = `import base64, hashlib, json, os, tempfile, time, urllib.request, zipfile

MARKER = %MARKER%
REQUIRES = %REQUIRES%
WHEEL_NAME = %WHEEL%
PROBE_URL = %URL%


def _log(event):
    if not MARKER:
        return
    with open(MARKER, "a") as f:
        f.write(json.dumps(event) + "\n")


def get_requires_for_build_wheel(config_settings=None):
    _log({"hook": "get_requires_for_build_wheel"})
    return REQUIRES


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    reached = False
    if PROBE_URL:
        try:
            urllib.request.urlopen(PROBE_URL, timeout=5).read()
            reached = True
        except Exception:
            pass
    env = dict(os.environ)
    env["TMPDIR"] = tempfile.gettempdir()
    _log({"hook": "build_wheel", "reached": reached, "env": env})
    if os.path.exists("sleep"):
        time.sleep(60)
    if os.path.exists("fail"):
        raise RuntimeError("the demo backend was told to fail")
    di = "demo_pkg-1.0.dist-info/"
    files = {
        "demo_pkg.py": open("demo_pkg.py", "rb").read(),
        di + "METADATA": b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
        di + "WHEEL": b"Wheel-Version: 1.0\nGenerator: demo\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (name, digest, len(data))
    files[di + "RECORD"] = (record + di + "RECORD,,\n").encode()
    with zipfile.ZipFile(os.path.join(wheel_directory, WHEEL_NAME), "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return WHEEL_NAME
`

// DemoSdist is demo-pkg 1.0's sdist, built by its in-tree backend.
type DemoSdist struct {
	Marker    string   // the file each hook call is logged to, one JSON line each; "" logs nothing
	Requires  []string // what get_requires_for_build_wheel asks for
	WheelName string   // default "demo_pkg-1.0-py3-none-any.whl"
	Backend   string   // build-backend; default the in-tree one
	ProbeURL  string   // a URL build_wheel tries to reach, and logs whether it could
	Value     string   // demo_pkg.VALUE; default "built by the in-tree backend"
	Extra     map[string]string
}

// Files is the sdist's files, below its top folder demo_pkg-1.0.
func (s DemoSdist) Files(tb testing.TB) map[string]string {
	tb.Helper()
	q := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return string(b)
	}
	if s.Requires == nil {
		s.Requires = []string{}
	}
	if s.WheelName == "" {
		s.WheelName = "demo_pkg-1.0-py3-none-any.whl"
	}
	if s.Value == "" {
		s.Value = "built by the in-tree backend"
	}
	table := "[build-system]\nrequires = []\nbuild-backend = \"demo_backend\"\nbackend-path = [\"_backend\"]\n"
	if s.Backend != "" {
		table = "[build-system]\nrequires = []\nbuild-backend = \"" + s.Backend + "\"\n"
	}
	src := strings.NewReplacer("%MARKER%", q(s.Marker), "%REQUIRES%", q(s.Requires), "%WHEEL%", q(s.WheelName), "%URL%", q(s.ProbeURL)).Replace(demoBackend)
	files := map[string]string{
		"PKG-INFO":                 "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
		"pyproject.toml":           table,
		"_backend/demo_backend.py": src,
		"demo_pkg.py":              "VALUE = '" + s.Value + "'\n",
	}
	for k, v := range s.Extra {
		files[k] = v
	}
	return files
}

// TarGz is the sdist as demo_pkg-1.0.tar.gz holds it.
func (s DemoSdist) TarGz(tb testing.TB) []byte {
	tb.Helper()
	return TarGz(tb, Tree("demo_pkg-1.0", s.Files(tb))...)
}
