// Package nspawn runs the system tests' Debian root file system with
// systemd-nspawn: a command in it like a chroot, or the whole system
// booted with its own systemd. The cached tree is never written: every
// container gets a throwaway overlay. Only tests import it.
package nspawn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// EnvRootfs names the Debian trixie root file system that
// scripts/rootfs.sh builds.
const EnvRootfs = "BITPOLL_ROOTFS"

// EnvRootfsBookworm names the Debian 12 (bookworm) root file system that
// `scripts/rootfs.sh --suite bookworm` builds: Python 3.11, older than
// Bitpoll needs.
const EnvRootfsBookworm = "BITPOLL_ROOTFS_BOOKWORM"

// hostCerts is where the host's CA certificates appear inside, so that
// TLS works through whatever proxy the host trusts.
const hostCerts = "/run/host-certs"

// Rootfs is the root file system named by $BITPOLL_ROOTFS, or a skip when
// it, root or systemd-nspawn is missing.
func Rootfs(tb testing.TB) string {
	tb.Helper()
	return rootfs(tb, EnvRootfs, "scripts/rootfs.sh", "Debian trixie")
}

// RootfsBookworm is the root file system named by
// $BITPOLL_ROOTFS_BOOKWORM, or a skip (a failure with CI=true) when it,
// root or systemd-nspawn is missing.
func RootfsBookworm(tb testing.TB) string {
	tb.Helper()
	return rootfs(tb, EnvRootfsBookworm, "scripts/rootfs.sh --suite bookworm", "Debian 12 (bookworm)")
}

func rootfs(tb testing.TB, env, script, what string) string {
	tb.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		testenv.Skipf(tb, "%s is not set: build the %s tree with %s and point %s at it to run the system tests", env, what, script, env)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "python3")); err != nil {
		testenv.Skipf(tb, "%s=%s is not a finished root file system (%v): rerun %s", env, dir, err, script)
	}
	if os.Geteuid() != 0 {
		testenv.Skip(tb, "systemd-nspawn needs root")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		testenv.Skip(tb, "systemd-nspawn is not installed (Debian package systemd-container)")
	}
	return dir
}

// Bind makes Host visible at Path inside, read-only unless Writable.
type Bind struct {
	Host, Path string
	Writable   bool
}

// Options describe one container.
type Options struct {
	Rootfs string
	Binds  []Bind
	Env    []string // KEY=VALUE, for Command only
	Dir    string   // working directory inside, for Command only
	// PrivateNetwork gives the container a network namespace of its own
	// with only a loopback device: no route leaves it.
	PrivateNetwork bool
}

func (o Options) args() []string {
	args := []string{"-D", o.Rootfs, "--register=no", "--keep-unit", "--quiet",
		"--bind-ro=/etc/ssl/certs:" + hostCerts}
	for _, b := range o.Binds {
		flag := "--bind-ro="
		if b.Writable {
			flag = "--bind="
		}
		args = append(args, flag+b.Host+":"+b.Path)
	}
	if o.PrivateNetwork {
		args = append(args, "--private-network")
	}
	return args
}

// Command runs argv inside the tree, with nothing else running there:
// a chroot with /proc, /dev and a private /tmp. It shares the host's
// network unless o.PrivateNetwork. SIGTERM to the returned command reaches argv[0].
func Command(ctx context.Context, o Options, argv ...string) *exec.Cmd {
	// The overlay on a tmpfs keeps the cached tree as it is.
	args := append(o.args(), "--volatile=overlay", "--kill-signal=SIGTERM", "--setenv=SSL_CERT_FILE="+hostCerts+"/ca-certificates.crt")
	for _, e := range o.Env {
		args = append(args, "--setenv="+e)
	}
	if o.Dir != "" {
		args = append(args, "--chdir="+o.Dir)
	}
	args = append(append(args, "--"), argv...)
	cmd := exec.CommandContext(ctx, "systemd-nspawn", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	return cmd
}

// Output runs argv inside and returns its combined output, with the
// command line in the error.
func Output(ctx context.Context, o Options, argv ...string) ([]byte, error) {
	out, err := Command(ctx, o, argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s: %w", o.Rootfs, strings.Join(argv, " "), err)
	}
	return out, nil
}
