package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/status"
)

// doctorRun runs doctor --json on e's root and returns its exit code and
// its checks by name.
func (e *genEnv) doctorRun() (int, map[string]doctorCheckRecord) {
	e.t.Helper()
	r := e.cli("--json", "doctor")
	checks := map[string]doctorCheckRecord{}
	summary := false
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec doctorCheckRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			e.t.Fatalf("doctor --json printed %q, not JSON: %v", line, err)
		}
		switch rec.MessageType {
		case "doctor_check":
			checks[rec.Check] = rec
		case "doctor_summary":
			summary = true
		}
	}
	if !summary {
		e.t.Fatalf("doctor --json printed no doctor_summary:\n%s", r.stdout)
	}
	return r.code, checks
}

// wantHealthy: doctor exits 0 and no check fails.
func (e *genEnv) wantHealthy(when string) {
	e.t.Helper()
	code, checks := e.doctorRun()
	for _, c := range checks {
		if c.Status == "fail" {
			e.t.Errorf("%s: doctor's %s check failed: %s; fix: %v", when, c.Check, c.Detail, *c.Fix)
		}
	}
	if code != exitOK {
		e.t.Errorf("%s: doctor exited %d, want 0", when, code)
	}
}

// wantFault: doctor exits 1, and check failed with a detail and a fix
// that hold the given words; every other check named in others passed
// or was skipped.
func (e *genEnv) wantFault(fault, check string, detail, fix []string) {
	e.t.Helper()
	code, checks := e.doctorRun()
	if code != exitFailure {
		e.t.Errorf("%s: doctor exited %d, want 1", fault, code)
	}
	c, ok := checks[check]
	if !ok || c.Status != "fail" || c.Fix == nil {
		e.t.Errorf("%s: doctor's %s check = %+v, want it failed with a fix", fault, check, c)
		return
	}
	for _, w := range detail {
		if !strings.Contains(c.Detail, w) {
			e.t.Errorf("%s: the %s check says %q, want it to name %q", fault, check, c.Detail, w)
		}
	}
	for _, w := range fix {
		if !strings.Contains(*c.Fix, w) {
			e.t.Errorf("%s: the %s check's fix is %q, want %q in it", fault, check, *c.Fix, w)
		}
	}
	if strings.Contains(*c.Fix, "\n") {
		e.t.Errorf("%s: the fix %q spans lines, want one", fault, *c.Fix)
	}
}

// TestDoctor installs the fixture app with --root on a copy of the
// host's interpreter, then injects one fault at a time: doctor finds
// each with its one-line fix (exit 1), and is quiet (exit 0) once it is
// undone. A healthy install prints only ok and skip lines.
func TestDoctor(t *testing.T) {
	e := newGenEnv(t)
	// The venv is built on a copy of the interpreter, which the test can
	// remove and replace as a distro upgrade would.
	real, err := filepath.EvalSymlinks(e.python)
	if err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(t.TempDir(), "bin", filepath.Base(real))
	copyExecutable(t, real, py)
	flags := e.version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	for i, f := range flags {
		if f == "--python" {
			flags[i+1] = py
		}
	}
	e.must(append([]string{"install"}, flags...)...)

	r := e.must("doctor")
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(line, "ok ") && !strings.HasPrefix(line, "skip ") && !strings.HasPrefix(line, "healthy: ") {
			t.Errorf("doctor on a healthy install printed %q, want only ok and skip lines", line)
		}
	}
	if !strings.Contains(r.stdout, "healthy: 8 checks passed, 3 skipped") {
		t.Errorf("doctor on a healthy install printed:\n%s\nwant 8 checks passed and 3 skipped (socket: no systemd; clock and proxy: no TLS proxy)", r.stdout)
	}
	e.wantHealthy("a healthy install")

	t.Run("status", func(t *testing.T) {
		r := e.must("status")
		for _, want := range []string{"generation  1, made ", "bitpoll 1.0.2 on CPython ", "store path  " + e.meta(1).StorePath,
			"with --root, systemd is not asked", "url         http://localhost:8000, listening on 127.0.0.1:8000",
			"the last: polls.0002_poll_note", "backup      none recorded"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("status printed:\n%s\nwant %q in it", r.stdout, want)
			}
		}
		// The record backup leaves when it has written an archive.
		archive := filepath.Join(t.TempDir(), "bitpoll.tar")
		if err := os.WriteFile(archive, []byte("archive"), 0o600); err != nil {
			t.Fatal(err)
		}
		created := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
		record := status.BackupRecord(e.layout)
		if err := os.WriteFile(record, []byte(`{"created": "`+created+`", "path": "`+archive+`", "secrets": true, "bytes": 7}`), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(record)
		r = e.must("status")
		if !strings.Contains(r.stdout, "backup      3 h 0 min ago") || !strings.Contains(r.stdout, archive) {
			t.Errorf("status with a backup 3 h old printed:\n%s\nwant its age and path", r.stdout)
		}
		r = e.must("--json", "status")
		var rec statusRecord
		if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &rec); err != nil {
			t.Fatalf("status --json printed %q: %v", r.stdout, err)
		}
		if rec.Generation == nil || *rec.Generation != 1 || rec.MigrationsApplied == nil || *rec.MigrationsApplied == 0 ||
			rec.LastBackup == nil || !rec.LastBackup.Exists || rec.LastBackup.AgeSeconds < 3*3600-60 {
			t.Errorf("status --json = %s, want generation 1, its migrations and the backup 3 h old", r.stdout)
		}
		if rec.Disk.Store == 0 || rec.Disk.Cache == 0 || rec.Disk.Data == 0 {
			t.Errorf("status --json disk = %+v, want the store, the cache and the data (the database) measured", rec.Disk)
		}
	})

	t.Run("secret modes", func(t *testing.T) {
		key := filepath.Join(e.layout.SecretsDir(), "secret_key")
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(e.layout.SecretsDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		e.wantFault("secret_key 0644, secrets 0755", "secrets", []string{key + " has mode 0644, want 0600", "mode 0755, want 0700"},
			[]string{"chmod 0600 " + key, "chmod 0700 " + e.layout.SecretsDir()})
		os.Chmod(key, 0o600)
		os.Chmod(e.layout.SecretsDir(), 0o700)
		e.wantHealthy("secret modes put back")
		if os.Geteuid() == 0 {
			fek := filepath.Join(e.layout.SecretsDir(), "field_encryption_key")
			if err := os.Chown(fek, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			e.wantFault("field_encryption_key owned by nobody", "secrets", []string{fek + " is owned by uid 65534, want 0"}, []string{"chown root:root " + fek})
			if err := os.Chown(fek, 0, 0); err != nil {
				t.Fatal(err)
			}
			e.wantHealthy("owner put back")
		}
	})

	t.Run("unit file missing", func(t *testing.T) {
		unit := filepath.Join(e.root, "etc/systemd/system/bitpoll.socket")
		data, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(unit)
		e.wantFault("bitpoll.socket removed", "units", []string{"bitpoll.socket missing from " + filepath.Dir(unit)}, []string{"install"})
		if err := os.WriteFile(unit, data, 0o644); err != nil {
			t.Fatal(err)
		}
		e.wantHealthy("unit put back")
	})

	t.Run("replaced interpreter", func(t *testing.T) {
		aside := py + ".aside"
		if err := os.Rename(py, aside); err != nil {
			t.Fatal(err)
		}
		e.wantFault("interpreter gone", "interpreter", []string{py, "is gone", "distro upgrade"},
			[]string{"bitpoll-install --root " + e.root + " install --lock FILE"})
		_, checks := e.doctorRun()
		if checks["database"].Status != "skip" {
			t.Errorf("with the interpreter gone, the database check = %+v, want it skipped", checks["database"])
		}
		// Another Python in its place: same path, another interpreter.
		if err := os.WriteFile(py, []byte("#!/bin/sh\nexec "+real+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		e.wantFault("interpreter replaced", "interpreter", []string{py, "and that is now CPython", real}, []string{"install --lock FILE"})
		if err := os.Rename(aside, py); err != nil {
			t.Fatal(err)
		}
		e.wantHealthy("interpreter put back")
	})

	t.Run("tampered store file", func(t *testing.T) {
		manage := filepath.Join(e.meta(1).StorePath, "app", "manage.py")
		orig, err := os.ReadFile(manage)
		if err != nil {
			t.Fatal(err)
		}
		chmodW(t, manage, func() {
			if err := os.WriteFile(manage, append(orig, []byte("import os  # injected\n")...), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		e.wantFault("manage.py changed", "store", []string{"changed: " + manage}, []string{"verify"})
		chmodW(t, manage, func() {
			if err := os.WriteFile(manage, orig, 0o644); err != nil {
				t.Fatal(err)
			}
		})
		e.wantHealthy("manage.py put back")
	})

	t.Run("bad config key", func(t *testing.T) {
		cfg := e.layout.ConfigFile()
		good, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, append([]byte("worker = 4\n"), good...), 0o644); err != nil {
			t.Fatal(err)
		}
		e.wantFault("worker = 4", "config", []string{"worker", `did you mean "workers"`}, []string{"edit " + cfg, "install"})
		if err := os.WriteFile(cfg, good, 0o644); err != nil {
			t.Fatal(err)
		}
		e.wantHealthy("config put back")
	})

	t.Run("migration unapplied", func(t *testing.T) {
		e.sql("delete from django_migrations where app = 'polls' and name = '0002_poll_note'")
		e.wantFault("polls.0002_poll_note unapplied", "database", []string{"polls.0002_poll_note", "not applied"}, []string{"migrate"})
		e.sql("insert into django_migrations (app, name, applied) values ('polls', '0002_poll_note', datetime('now'))")
		e.wantHealthy("migration recorded again")
	})

	t.Run("base_url host not allowed", func(t *testing.T) {
		cfg := e.layout.ConfigFile()
		good, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(good), "base_url = \"http://localhost:8000\"", "base_url = \"http://poll.example.org\"", 1)
		if bad == string(good) {
			t.Fatalf("the installed config has no base_url line to change:\n%s", good)
		}
		if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		e.wantFault("base_url's host not allowed", "allowed-hosts", []string{`"poll.example.org" is not in allowed_hosts`}, []string{`add "poll.example.org" to allowed_hosts`})
		if err := os.WriteFile(cfg, good, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
