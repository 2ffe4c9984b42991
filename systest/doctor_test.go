package systest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
)

// doctorCheck is one doctor_check record.
type doctorCheck struct {
	Type   string  `json:"message_type"`
	Check  string  `json:"check"`
	Status string  `json:"status"`
	Detail string  `json:"detail"`
	Fix    *string `json:"fix"`
}

// TestDoctorFixture installs the fixture app (with a second migration)
// as a service in a booted trixie and injects the faults an admin meets,
// one at a time: wrong secret modes, a replaced interpreter, a tampered
// store file, a stopped socket, a bad config key and a migration
// unapplied. doctor finds each, names it and prints its fix (exit 1); the
// fixes that are commands are run as printed, the others undone by hand;
// and then doctor is quiet again (exit 0). status reports what systemd
// says of the units. Last, behind a TLS proxy: a config change not yet
// installed is found; once installed, the proxy check passes and the
// clock check says what the kernel says of this machine's clock.
func TestDoctorFixture(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	testkit.NeedNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	lock := func(dir, version string) *lockfile.Lock {
		return testkit.LockFixtureTree(t, dir, version, "cp313-x86_64", "gunicorn==27.0.1", "whitenoise==6.12.0")
	}
	app := testkit.FixtureVariant(t, true, testkit.AddNote)
	vm := bootVersions(ctx, t, rootfs, testkit.BuildCLI(t), lock, []appTree{{app, "1.0.2"}}, "bitpoll-doctor", "")
	m := vm.m
	if out, err := vm.bpi(append([]string{"install"}, vm.version(0)...)...); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	get200(t, vm.base)

	// sh runs a shell command inside, with the CLI on the PATH.
	sh := func(cmd string) {
		t.Helper()
		if out, err := m.Exec(ctx, "sh", "-c", "PATH=/srv/test:$PATH; "+cmd); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	doctor := func() (int, map[string]doctorCheck, time.Duration) {
		t.Helper()
		start := time.Now()
		out, err := vm.bpi("--json", "doctor")
		took := time.Since(start)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("doctor: %v", err)
		}
		checks := map[string]doctorCheck{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var c doctorCheck
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				t.Fatalf("doctor --json printed %q: %v", line, err)
			}
			if c.Type == "doctor_check" {
				checks[c.Check] = c
			}
		}
		return code, checks, took
	}
	healthy := func(when string) {
		t.Helper()
		code, checks, took := doctor()
		t.Logf("doctor, %s: exit %d in %v", when, code, took.Round(time.Millisecond))
		for _, c := range checks {
			if c.Status == "fail" {
				t.Errorf("%s: doctor's %s check failed: %s; fix: %s", when, c.Check, c.Detail, *c.Fix)
			}
		}
		if code != 0 || len(checks) != 11 {
			t.Errorf("%s: doctor exited %d with %d checks, want 0 with 11", when, code, len(checks))
		}
	}
	// fault runs doctor and wants check failed with each of detail in
	// what it found and each of fix in its fix, which it returns.
	fault := func(name, check string, detail, fix []string) string {
		t.Helper()
		code, checks, _ := doctor()
		c := checks[check]
		if code != 1 || c.Status != "fail" || c.Fix == nil {
			t.Errorf("%s: doctor exited %d and its %s check = %+v, want exit 1 and the check failed with a fix", name, code, check, c)
			return ""
		}
		t.Logf("%s: %s: %s; fix: %s", name, check, c.Detail, *c.Fix)
		for _, w := range detail {
			if !strings.Contains(c.Detail, w) {
				t.Errorf("%s: the %s check says %q, want %q in it", name, check, c.Detail, w)
			}
		}
		for _, w := range fix {
			if !strings.Contains(*c.Fix, w) {
				t.Errorf("%s: the %s check's fix %q lacks %q", name, check, *c.Fix, w)
			}
		}
		return *c.Fix
	}
	// runFix runs a fix doctor printed, as printed (as root: no sudo).
	runFix := func(fix string) { t.Helper(); sh(strings.TrimPrefix(fix, "sudo ")) }

	healthy("after install")
	out, err := vm.bpi("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	t.Logf("status:\n%s", out)
	// The socket is "running" once it has passed a connection on.
	for _, want := range []string{`socket +bitpoll\.socket active \((listening|running)\), enabled`, `service +bitpoll@1\.service active \(running\), enabled`,
		`listening on 127\.0\.0\.1:\d+`, `the last: polls\.0002_poll_note`} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("status lacks %s", want)
		}
	}

	const key = "/etc/bitpoll/secrets/secret_key"
	sh("chmod 0644 " + key)
	runFix(fault("secret_key 0644", "secrets", []string{key + " has mode 0644, want 0600"}, []string{"chmod 0600 " + key}))
	healthy("secret modes fixed")
	const fek = "/etc/bitpoll/secrets/field_encryption_key"
	sh("chown nobody:nogroup " + fek + " && chmod 0640 " + fek)
	runFix(fault("field_encryption_key nobody's, 0640", "secrets", []string{fek + " is owned by uid 65534, want 0", fek + " has mode 0640, want 0600"},
		[]string{"chown root:root " + fek, "chmod 0600 " + fek}))
	healthy("secret owner fixed")

	// A distro upgrade takes the venv's Python away.
	sh("mv /usr/bin/python3.13 /usr/bin/python3.13.moved")
	fault("python3.13 gone", "interpreter", []string{"/usr/bin/python3.13", "is gone"}, []string{"bitpoll-install install --lock FILE"})
	// Another interpreter at the same path.
	sh(`printf '#!/bin/sh\nexec /usr/bin/python3.13.moved "$@"\n' > /usr/bin/python3.13 && chmod 0755 /usr/bin/python3.13`)
	fault("python3.13 replaced", "interpreter", []string{"/usr/bin/python3.13", "and that is now CPython 3.13", "at /usr/bin/python3.13.moved"}, []string{"bitpoll-install install --lock FILE"})
	sh("mv /usr/bin/python3.13.moved /usr/bin/python3.13")
	healthy("python3.13 back")

	const manage = "/opt/bitpoll/current/app/manage.py"
	sh("cp " + manage + " /var/tmp/manage.py.orig && echo 'import os  # injected' >> " + manage)
	fault("manage.py tampered", "store", []string{"changed: ", "/app/manage.py"}, []string{"bitpoll-install verify"})
	sh("cat /var/tmp/manage.py.orig > " + manage)
	healthy("manage.py put back")

	sh("systemctl stop bitpoll.socket")
	runFix(fault("socket stopped", "socket", []string{"bitpoll.socket is inactive"}, []string{"systemctl start bitpoll.socket bitpoll@1.service"}))
	get200(t, vm.base)
	healthy("socket started")

	good, err := os.ReadFile(m.Upper("/etc/bitpoll/bitpoll.toml"))
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, m, "worker = 4\n"+string(good))
	fault("worker = 4", "config", []string{"bitpoll.toml:1: worker: is not a known key", `did you mean "workers"`}, []string{"edit /etc/bitpoll/bitpoll.toml"})
	writeConfig(t, m, string(good))
	healthy("config put back")

	sh("bitpoll-install manage migrate polls 0001_initial")
	runFix(fault("polls.0002_poll_note reversed", "database", []string{"polls.0002_poll_note", "is not applied"}, []string{"bitpoll-install manage migrate"}))
	if !migrationApplied(ctx, t, m, "polls.0002_poll_note") {
		t.Error("doctor's fix did not apply polls.0002_poll_note")
	}
	healthy("migrated by the fix")
	get200(t, vm.base)

	// Behind a TLS proxy: an https base_url with secure_proxy_ssl_header,
	// changed in the config but not yet installed, then installed.
	install := append([]string{"install"}, vm.version(0)...)
	httpsConfig := strings.Replace(string(good), fmt.Sprintf("base_url = %q", vm.base), `base_url = "https://localhost"`, 1)
	if httpsConfig == string(good) {
		t.Fatalf("the config has no base_url = %q to change:\n%s", vm.base, good)
	}
	writeConfig(t, m, "secure_proxy_ssl_header = true\n"+httpsConfig)
	fault("config changed, not installed", "config", []string{"changed since it was last installed"}, []string{"bitpoll-install install applies it"})
	if out, err := vm.bpi(install...); err != nil {
		t.Fatalf("install with secure_proxy_ssl_header: %v\n%s", err, out)
	}
	code, checks, _ := doctor()
	if c := checks["proxy"]; c.Status != "ok" {
		t.Errorf("with secure_proxy_ssl_header installed, the proxy check = %+v, want ok: base_url is https and gunicorn listens on loopback", c)
	}
	// The clock check says what the kernel says of this machine's clock.
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Fatal(err)
	}
	wantClock, wantCode := "ok", 0
	if state == unix.TIME_ERROR {
		wantClock, wantCode = "fail", 1
	}
	if c := checks["clock"]; c.Status != wantClock {
		t.Errorf("the clock check = %+v, want %s (adjtimex state %d)", c, wantClock, state)
	}
	for _, c := range checks {
		if c.Status == "fail" && c.Check != "clock" {
			t.Errorf("behind the proxy, installed: doctor's %s check failed: %s", c.Check, c.Detail)
		}
	}
	if code != wantCode {
		t.Errorf("behind the proxy, installed: doctor exited %d, want %d", code, wantCode)
	}
	t.Logf("behind the proxy: proxy: %s; clock: %s %s", checks["proxy"].Detail, checks["clock"].Status, checks["clock"].Detail)
}
