package systest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// Paths inside the container.
const (
	work   = "/srv/bitpoll-test" // the test's writable directory
	appDir = "/srv/app"          // the app source, read-only
)

// TestDebianPython installs real Bitpoll 0.11.0 and master with the
// Debian trixie's own Python 3.13 (/usr/bin/python3) inside its root file
// system, then runs Django's deploy checks, serves it with `run` and
// creates a poll from the host through the real form.
func TestDebianPython(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	mirror := testkit.BitpollMirror(t)
	idx := testkit.RealIndex(t)
	cli := testkit.BuildCLI(t)
	cases := []struct{ ref, version string }{
		{"0.11.0", "0.11.0"},
		{"master", "0.11.0+master"},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			src := testkit.ExportRelease(ctx, t, mirror, c.ref)
			lock := testkit.LockTree(ctx, t, idx, src, c.version, "cp313-x86_64")
			host := t.TempDir()
			if err := os.Link(cli, filepath.Join(host, "bitpoll-install")); err != nil {
				copyFile(t, cli, filepath.Join(host, "bitpoll-install"))
			}
			if err := lockfile.WriteFile(filepath.Join(host, "bitpoll.lock"), lock); err != nil {
				t.Fatal(err)
			}
			o := nspawn.Options{Rootfs: rootfs, Binds: []nspawn.Bind{
				{Host: host, Path: work, Writable: true},
				{Host: src, Path: appDir},
			}}
			bpi := func(args ...string) []string {
				return append([]string{work + "/bitpoll-install", "--root", work + "/tree"}, args...)
			}
			build := []string{"--lock", work + "/bitpoll.lock", "--app-source", appDir, "--python", "/usr/bin/python3"}

			start := time.Now()
			out, err := nspawn.Output(ctx, o, bpi(append([]string{"install"}, build...)...)...)
			if err != nil {
				t.Fatalf("install: %v\n%s", err, out)
			}
			t.Logf("install of %s with Debian's Python: %v", c.ref, time.Since(start).Round(time.Millisecond))
			if !strings.Contains(string(out), "generation 1 is now current") {
				t.Errorf("install printed %q, want generation 1 made current", out)
			}
			var manifest struct{ Python string }
			data, err := os.ReadFile(filepath.Join(host, "tree/opt/bitpoll/current", install.Manifest))
			if err == nil {
				err = json.Unmarshal(data, &manifest)
			}
			if err != nil {
				t.Fatalf("read the store manifest: %v", err)
			}
			if !strings.HasPrefix(manifest.Python, "cpython 3.13.") || !strings.HasSuffix(manifest.Python, " /usr/bin/python3.13") {
				t.Errorf("the store path was built with %q, want Debian's cpython 3.13 at /usr/bin/python3.13", manifest.Python)
			}

			checkDeploy(ctx, t, o, host)

			port := testkit.FreePort(t)
			var logs testkit.SyncBuffer
			srv := nspawn.Command(ctx, o, bpi(append([]string{"run", "--port", fmt.Sprint(port)}, build...)...)...)
			srv.Stdout, srv.Stderr = &logs, &logs
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				srv.Process.Signal(syscall.SIGTERM)
				srv.Wait()
			}()
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			if err := testkit.WaitHTTP(ctx, base+"/", 3*time.Minute); err != nil {
				t.Fatalf("run: %v; output:\n%s", err, logs.String())
			}
			if status, _ := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+"/"); status != http.StatusOK {
				t.Errorf("GET / = %d, want 200; output:\n%s", status, logs.String())
			}
			testkit.CreatePoll(t, base, "trixie-"+strings.ReplaceAll(c.ref, ".", "-"), "Poll on the Debian Python "+c.ref)
		})
	}
}

// checkDeploy runs `manage.py check --deploy` inside, on the current
// generation, with a production-like https configuration, and fails on
// any finding.
func checkDeploy(ctx context.Context, t *testing.T, o nspawn.Options, host string) {
	t.Helper()
	secrets := filepath.Join(host, "deploy-secrets")
	if err := service.WriteSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	current := work + "/tree/opt/bitpoll/current"
	settings := shim.Settings{
		BaseURL:      "https://bitpoll.example",
		AllowedHosts: []string{"bitpoll.example"},
		Database:     shim.Database{Engine: "sqlite", Path: work + "/deploy.sqlite3"},
		StaticRoot:   current + "/" + install.StaticDir,
		MediaRoot:    work + "/media",
	}
	data, err := settings.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "deploy.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Dir = current + "/" + install.AppDir
	o.Env = []string{shim.SettingsFileEnv + "=" + work + "/deploy.json", shim.SecretsDirEnv + "=" + work + "/deploy-secrets",
		// As root, Python would otherwise write bytecode into the store.
		"PYTHONDONTWRITEBYTECODE=1"}
	out, err := nspawn.Output(ctx, o, current+"/"+install.VenvDir+"/bin/python", "manage.py", "check", "--deploy")
	if err != nil {
		t.Fatalf("manage.py check --deploy: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "System check identified no issues") {
		t.Errorf("manage.py check --deploy found issues, want none:\n%s", out)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
