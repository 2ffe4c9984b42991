package service

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// TestStampOwner: a stamp that the installer (root) writes, for a switch
// with nothing to migrate, belongs with its folder to the owner of the
// state directory, the service's dynamic user, whose migration unit
// writes the next stamp there. Found with two app hosts on one
// PostgreSQL: the second host's install had nothing to migrate, and its
// next migration unit could not write its stamp.
func TestStampOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skip(t, "giving files to another owner needs root")
	}
	l := store.Layout{Root: t.TempDir()}
	state := filepath.Join(l.Root, "/var/lib/private", unitgen.StateDirectory)
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 61234, 61234 // a dynamic user's range
	if err := os.Chown(state, uid, gid); err != nil {
		t.Fatal(err)
	}
	s := &switcher{p: &Plan{o: Options{Layout: l}, spec: unitgen.Spec{DatabaseStamp: "0123456789ab"}}, r: &Result{}}
	if err := s.stamp("/opt/bitpoll/store/abc-bitpoll-1.0"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(state, "migrated"), filepath.Join(state, "migrated", "abc-bitpoll-1.0-0123456789ab")} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s belongs to %d:%d, want the state directory's %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
}
