// Package pgtest starts a throwaway PostgreSQL server for a test: a fresh
// cluster in a temporary directory, made with the installed server's own
// initdb and run as a child of the test, on a unix socket and a free
// loopback port. It is stopped and removed when the test ends. PostgreSQL
// refuses to run as root, so under root the cluster belongs to the
// unprivileged user "nobody". It is imported only by tests.
package pgtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/pgbin"
)

// Superuser is the cluster's bootstrap superuser, reached over the unix
// socket without a password.
const Superuser = "postgres"

// Server is one running throwaway cluster.
type Server struct {
	// Bin is the directory of the server's programs (initdb, postgres,
	// psql, pg_dump), all of one major version.
	Bin string
	// Version is the server's major version, like "15".
	Version string
	// Socket is the directory of its unix socket.
	Socket string
	// Port is its TCP port on 127.0.0.1.
	Port int

	dir  string
	cred *syscall.Credential
}

// binDir finds the newest installed server's programs (see pgbin.Find).
func binDir() (string, error) {
	if p, ok := pgbin.Find("initdb"); ok {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server is installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): install it with apt-get install postgresql (scripts/prereqs.sh does)")
}

// Start starts a throwaway cluster for tb, or skips tb (fails it with
// CI=true) when no PostgreSQL server is installed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts a PostgreSQL server: skipped under -short")
	}
	bin, err := binDir()
	if err != nil {
		testenv.Skip(tb, err.Error())
	}
	s := &Server{Bin: bin}
	if out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output(); err == nil {
		// "postgres (PostgreSQL) 15.18 (Debian ...)"
		if f := strings.Fields(string(out)); len(f) >= 3 {
			s.Version, _, _ = strings.Cut(f[2], ".")
		}
	}
	// Not tb.TempDir: its parents are private to root, and the server may
	// run as another user.
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(s.dir) })
	if err := os.Chmod(s.dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(s.dir, "data")
	s.Socket = filepath.Join(s.dir, "run")
	for _, d := range []string{data, s.Socket} {
		if err := os.Mkdir(d, 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			testenv.Skipf(tb, "running as root, and PostgreSQL refuses root: a user \"nobody\" to run it as is missing (%v)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{data, s.Socket} {
			if err := os.Chown(d, uid, gid); err != nil {
				tb.Fatal(err)
			}
		}
	}
	// Local connections trust the OS user; TCP ones need a password, so
	// that the tests exercise the password's path.
	if out, err := s.command("initdb", "-D", data, "-U", Superuser, "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Port = testkit.FreePort(tb)
	logf := filepath.Join(s.dir, "server.log")
	log, err := os.Create(logf)
	if err != nil {
		tb.Fatal(err)
	}
	defer log.Close()
	srv := s.command("postgres", "-D", data, "-k", s.Socket, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	srv.Stdout, srv.Stderr = log, log
	srv.SysProcAttr.Setpgid = true
	if err := srv.Start(); err != nil {
		tb.Fatalf("start postgres: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	tb.Cleanup(func() {
		// SIGINT is the fast shutdown: clients are cut off, the data kept.
		_ = srv.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := s.command("pg_isready", "-q", "-h", s.Socket, "-p", strconv.Itoa(s.Port), "-U", Superuser).CombinedOutput()
		if err == nil {
			break
		}
		select {
		case werr := <-done:
			logs, _ := os.ReadFile(logf)
			tb.Fatalf("postgres exited at start: %v\n%s", werr, logs)
		default:
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logf)
			tb.Fatalf("postgres did not accept connections within 30s: %v %s\n%s", err, out, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// command runs one of the server's programs as the cluster's owner.
func (s *Server) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.Bin, prog), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// SQL runs statements as the superuser in database db and returns what
// psql printed: unaligned, tuples only, fields separated by "|".
func (s *Server) SQL(tb testing.TB, db string, stmts ...string) string {
	tb.Helper()
	args := []string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", s.Socket, "-p", strconv.Itoa(s.Port), "-U", Superuser, "-d", db}
	for _, st := range stmts {
		args = append(args, "-c", st)
	}
	var out, errb bytes.Buffer
	cmd := s.command("psql", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("psql %q: %v\n%s", stmts, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// CreateDatabase makes a login role named name with password and a
// database of the same name that it owns, and returns the URL that
// reaches it over TCP on loopback (without the password, as
// bitpoll.toml's database.url must be).
func (s *Server) CreateDatabase(tb testing.TB, name, password string) string {
	tb.Helper()
	s.SQL(tb, "postgres",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", name, strings.ReplaceAll(password, "'", "''")),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, name))
	return fmt.Sprintf("postgresql://%s@127.0.0.1:%d/%s", name, s.Port, name)
}

// Run runs one of the server's programs (psql, pg_restore, ...) as the
// cluster's owner against this server, over its unix socket as the
// superuser, with stdin as its input (the owner may not be able to read
// the caller's files), and returns what it printed.
func (s *Server) Run(stdin io.Reader, prog string, args ...string) ([]byte, error) {
	cmd := s.command(prog, append([]string{"-h", s.Socket, "-p", strconv.Itoa(s.Port), "-U", Superuser}, args...)...)
	cmd.Stdin = stdin
	return cmd.CombinedOutput()
}

// Hold runs stmt in a psql session as the superuser in database db and
// keeps that session open, and with it the session's locks, until the
// returned func ends it.
func (s *Server) Hold(tb testing.TB, db, stmt string) (release func()) {
	tb.Helper()
	cmd := s.command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", s.Socket, "-p", strconv.Itoa(s.Port), "-U", Superuser, "-d", db)
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		tb.Fatalf("psql: %v", err)
	}
	const marker = "pgtest-holding"
	fmt.Fprintf(in, "%s;\n\\echo %s\n", stmt, marker)
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			cmd.Wait()
			tb.Fatalf("psql %q: %v\n%s", stmt, err, errb.String())
		}
		if strings.TrimSpace(line) == marker {
			break
		}
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		in.Close() // psql ends the session at the end of its input
		if err := cmd.Wait(); err != nil {
			tb.Errorf("psql session of %q: %v\n%s", stmt, err, errb.String())
		}
	}
	tb.Cleanup(release)
	return release
}
