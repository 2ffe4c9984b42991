package pgtest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStart starts a cluster, makes a database with a password and logs
// in to it over TCP with that password, as an app would; a wrong
// password is refused, so the password is what let it in.
func TestStart(t *testing.T) {
	s := Start(t)
	url := s.CreateDatabase(t, "app", "s3cret")
	psql := func(password string) (string, error) {
		cmd := exec.Command(s.Bin+"/psql", "-X", "-A", "-t", "-c", "select current_user, current_database()", url)
		cmd.Env = []string{"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=10"}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := psql("s3cret"); err != nil || out != "app|app" {
		t.Errorf("psql %s with the password = %q, %v; want app|app", url, out, err)
	}
	if out, err := psql("wrong"); err == nil || !strings.Contains(out, "password authentication failed") {
		t.Errorf("psql %s with a wrong password = %q, %v; want it refused", url, out, err)
	}
	if got := s.SQL(t, "app", "select 1 + 1"); got != "2" {
		t.Errorf("SQL(select 1 + 1) = %q, want 2", got)
	}
}
