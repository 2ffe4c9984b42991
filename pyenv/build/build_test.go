package build

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
)

// writeDemoSdist writes s into dir, its backend logging to dir/hooks.log,
// and returns its path, its sha256 and that log.
func writeDemoSdist(t *testing.T, dir string, s testarchive.DemoSdist) (path, sum, marker string) {
	t.Helper()
	s.Marker = filepath.Join(dir, "hooks.log")
	path, sum = writeSdist(t, dir, "demo_pkg-1.0", s.Files(t))
	return path, sum, s.Marker
}

// hookLog reads the marker file: one entry per hook call.
func hookLog(t *testing.T, marker string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(marker)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestBuildWheelInTreeBackend(t *testing.T) {
	it, target := hostPython(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the build reached the network: %s %s", r.Method, r.URL)
	}))
	defer srv.Close()
	t.Setenv("PYTHONPATH", "/leaked/pythonpath")
	t.Setenv("https_proxy", "http://proxy.invalid:3128")

	dir := t.TempDir()
	sdist, sum, marker := writeDemoSdist(t, dir, testarchive.DemoSdist{ProbeURL: srv.URL})
	cache := filepath.Join(dir, "cache")
	o := Options{Interp: it, CacheDir: cache, Target: target}
	whl, err := BuildWheel(context.Background(), sdist, sum, o)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, CacheLayout, sum+"-"+target, "demo_pkg-1.0-py3-none-any.whl")
	if whl != want {
		t.Errorf("BuildWheel(%q) = %q, want %q", sdist, whl, want)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cache, CacheLayout, ".build-*"))
	if len(leftovers) != 0 {
		t.Errorf("build directories left in the cache: %q", leftovers)
	}

	log := hookLog(t, marker)
	if len(log) != 2 || log[0]["hook"] != "get_requires_for_build_wheel" || log[1]["hook"] != "build_wheel" {
		t.Fatalf("hook calls = %v, want get_requires_for_build_wheel then build_wheel", log)
	}
	if log[1]["reached"] != false {
		t.Errorf("build_wheel reached a local HTTP server; want the network cut off")
	}
	env, _ := log[1]["env"].(map[string]any)
	if tmp, _ := env["TMPDIR"].(string); !strings.HasPrefix(tmp, filepath.Join(cache, CacheLayout)) {
		t.Errorf("hook environment TMPDIR = %q, want a directory inside the build's work space", tmp)
	}
	for k, want := range map[string]any{"PYTHONPATH": nil, "PIP_NO_INDEX": "1", "PYTHONNOUSERSITE": "1", "https_proxy": blackhole, "SOURCE_DATE_EPOCH": sourceDateEpoch} {
		if got := env[k]; got != want {
			t.Errorf("hook environment %s = %v, want %v", k, got, want)
		}
	}

	got := installAndImport(t, it, whl, "import demo_pkg; print(demo_pkg.VALUE)")
	if got != "built by the in-tree backend" {
		t.Errorf("import demo_pkg printed %q, want the module's VALUE", got)
	}
}

func TestBuildWheelCacheHit(t *testing.T) {
	it, target := hostPython(t)
	dir := t.TempDir()
	sdist, sum, marker := writeDemoSdist(t, dir, testarchive.DemoSdist{})
	o := Options{Interp: it, CacheDir: filepath.Join(dir, "cache"), Target: target}
	first, err := BuildWheel(context.Background(), sdist, sum, o)
	if err != nil {
		t.Fatal(err)
	}
	// The cache key is the hash: a second call must not even read the
	// sdist, let alone run a hook.
	if err := os.Remove(sdist); err != nil {
		t.Fatal(err)
	}
	second, err := BuildWheel(context.Background(), sdist, sum, o)
	if err != nil {
		t.Fatalf("second BuildWheel: %v", err)
	}
	if second != first {
		t.Errorf("second BuildWheel = %q, want the cached %q", second, first)
	}
	if n := len(hookLog(t, marker)); n != 2 {
		t.Errorf("hooks ran %d times over two builds, want 2 (one build)", n)
	}
}

func TestBuildWheelErrors(t *testing.T) {
	it, target := hostPython(t)
	tests := []struct {
		name     string
		sdist    testarchive.DemoSdist
		wheels   []string // build wheels by project name, generated
		opts     func(*Options)
		sum      string // overrides the sdist's hash
		wantIs   error
		wantErr  []string // substrings of the error
		wantHook bool     // the error is a *HookError
	}{
		{
			name:    "backend not installed",
			sdist:   testarchive.DemoSdist{Backend: "flit_core.buildapi"},
			wantIs:  ErrBackendUnavailable,
			wantErr: []string{`"flit_core.buildapi"`, "add the package that provides it to the lock"},
		},
		{
			name:    "extra requirement missing",
			sdist:   testarchive.DemoSdist{Requires: []string{"wheel>=0.40", "never; python_version < '3'"}},
			wantErr: []string{`"wheel>=0.40" (not among the build wheels)`, "add them to the lock"},
		},
		{
			name:    "extra requirement too old",
			sdist:   testarchive.DemoSdist{Requires: []string{"plugin>=2"}},
			wheels:  []string{"plugin"},
			wantErr: []string{`"plugin>=2" (the build wheels have plugin 1.0)`},
		},
		{
			name:   "extra requirement met",
			sdist:  testarchive.DemoSdist{Requires: []string{"plugin>=1.0"}},
			wheels: []string{"plugin"},
		},
		{
			name:    "wheel of another project",
			sdist:   testarchive.DemoSdist{WheelName: "other-1.0-py3-none-any.whl"},
			wantErr: []string{`is for project "other", want "demo-pkg"`},
		},
		{
			name:    "wheel of another version",
			sdist:   testarchive.DemoSdist{WheelName: "demo_pkg-2.0-py3-none-any.whl"},
			wantErr: []string{`has version "2.0", want "1.0"`},
		},
		{
			name:    "wheel for another platform",
			sdist:   testarchive.DemoSdist{WheelName: "demo_pkg-1.0-cp39-cp39-win_amd64.whl"},
			wantErr: []string{"does not run on " + target},
		},
		{
			name:     "hook raises",
			sdist:    testarchive.DemoSdist{Extra: map[string]string{"fail": ""}},
			wantHook: true,
			wantErr:  []string{"hook build_wheel failed", "RuntimeError: the demo backend was told to fail"},
		},
		{
			name:  "timeout",
			sdist: testarchive.DemoSdist{Extra: map[string]string{"sleep": ""}},
			// Long enough to reach build_wheel on a loaded machine (the
			// Python start and get_requires_for_build_wheel come first),
			// far short of the backend's 60 s sleep there.
			opts:     func(o *Options) { o.Timeout = 15 * time.Second },
			wantHook: true,
			wantErr:  []string{"hook build_wheel failed: stopped: context deadline exceeded"},
		},
		{
			name:    "hash mismatch",
			sum:     strings.Repeat("0", 64),
			wantErr: []string{"want \"" + strings.Repeat("0", 64) + "\"", "download it again"},
		},
		{
			name:    "target of another interpreter",
			opts:    func(o *Options) { o.Target = "cp399-" + it.Arch },
			wantErr: []string{`target "cp399-` + it.Arch + `" needs CPython 3.99`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sdist, sum, _ := writeDemoSdist(t, dir, tt.sdist)
			if tt.sum != "" {
				sum = tt.sum
			}
			o := Options{Interp: it, CacheDir: filepath.Join(dir, "cache"), Target: target}
			for _, name := range tt.wheels {
				o.BuildWheels = append(o.BuildWheels, writeWheel(t, dir, name, "1.0", map[string]string{name + ".py": ""}))
			}
			if tt.opts != nil {
				tt.opts(&o)
			}
			whl, err := BuildWheel(context.Background(), sdist, sum, o)
			if len(tt.wantErr) == 0 && tt.wantIs == nil {
				if err != nil {
					t.Fatalf("BuildWheel = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("BuildWheel = %q, want an error", whl)
			}
			t.Logf("error: %v", err)
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("BuildWheel error = %v, want %v", err, tt.wantIs)
			}
			var he *HookError
			if tt.wantHook != errors.As(err, &he) {
				t.Errorf("BuildWheel error %v: is a *HookError = %v, want %v", err, !tt.wantHook, tt.wantHook)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("BuildWheel error = %v, want it to contain %q", err, s)
				}
			}
			entries, _ := filepath.Glob(filepath.Join(dir, "cache", CacheLayout, "*"))
			if len(entries) != 0 {
				t.Errorf("cache after a failed build holds %q, want nothing", entries)
			}
		})
	}
}

func TestBuildWheelRefusesHostileSdist(t *testing.T) {
	it, target := hostPython(t)
	dir := t.TempDir()
	data := testarchive.TarGz(t,
		testarchive.Member{Name: "evil-1.0/", Dir: true},
		testarchive.Member{Name: "evil-1.0/PKG-INFO", Body: pkgInfo("evil", "1.0")},
		testarchive.Member{Name: "evil-1.0/../../escaped.txt", Body: "outside"},
	)
	sdist := filepath.Join(dir, "evil-1.0.tar.gz")
	if err := os.WriteFile(sdist, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "a", "b", "cache")
	_, err := BuildWheel(context.Background(), sdist, sha256Hex(data), Options{Interp: it, CacheDir: cache, Target: target})
	if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), `escapes the archive with ".."`) {
		t.Fatalf("BuildWheel(hostile) = %v, want an ErrUnsafe about \"..\"", err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "escaped.txt" {
			t.Errorf("hostile member was written at %q", p)
		}
		return nil
	})
	left, _ := filepath.Glob(filepath.Join(cache, CacheLayout, "*"))
	if len(left) != 0 {
		t.Errorf("cache after a refused sdist holds %q, want nothing", left)
	}
}
