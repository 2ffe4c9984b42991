package systest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
)

// TestBackupRestoreBitpoll is a backup/restore round trip of real
// Bitpoll with real polls and votes in a booted trixie, with a load
// generator reading a poll's page on loopback throughout: the backup is
// taken while the service runs, a tampered and a truncated copy are each
// refused before anything changes (the database is the same file, and no
// request fails), and the restore brings back every poll and vote that
// the backup held and drops what came after it.
func TestBackupRestoreBitpoll(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	c := bitpollCase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	vm := bootVersions(ctx, t, rootfs, testkit.BuildCLI(t), c.lock, []appTree{{c.old, c.oldVer}}, "bitpoll-backup", "")
	m, base, bpi, version := vm.m, vm.base, vm.bpi, vm.version
	if out, err := bpi(append([]string{"install"}, version(0)...)...); err != nil {
		t.Fatalf("install %s: %v\n%s", c.oldVer, err, out)
	}
	get200(t, base)
	shell := func(code string) string {
		t.Helper()
		out, err := bpi("manage", "shell", "-c", code)
		if err != nil {
			t.Fatalf("manage shell -c %q: %v\n%s", code, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// Three polls with 2, 1 and 0 votes.
	polls := map[string]int{"kept-a": 2, "kept-b": 1, "kept-c": 0}
	for slug, votes := range polls {
		c.createPoll(t, base, slug)
		for range votes {
			shell(c.vote(slug))
		}
	}
	page := base + c.pollPath("kept-a")
	const archive = "/var/tmp/bitpoll.tar.gz"
	// A media file, owned as the service's files are.
	const state, upload = "/var/lib/private/bitpoll", "/var/lib/private/bitpoll/media/upload/a.txt"
	sh := func(script string) string {
		t.Helper()
		out, err := m.Exec(ctx, "sh", "-euc", script)
		if err != nil {
			t.Fatalf("sh -c %q: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	sh("mkdir -p " + state + "/media/upload && echo one > " + upload + " && chown -R --reference=" + state + " " + state + "/media")

	var out []byte
	var err error
	start := time.Now()
	var took time.Duration
	stats := underLoad(t, page, c.clients, 10*time.Second, 2*time.Second, func() {
		out, err = bpi("backup", "-o", archive)
		took = time.Since(start) - 2*time.Second
	})
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	fi, serr := os.Stat(m.Upper(archive))
	if serr != nil {
		t.Fatal(serr)
	}
	t.Logf("backup under load: %s, %d bytes, in %v: %s", strings.TrimSpace(string(out)), fi.Size(), took.Round(time.Millisecond), stats)
	if stats.Failed > 0 || stats.Requests == 0 {
		t.Errorf("backup under load: %d of %d requests failed (%q), want none", stats.Failed, stats.Requests, stats.Failures)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the backup's mode is %v, want 0600", fi.Mode().Perm())
	}
	out, err = bpi("backup", "--verify", archive)
	t.Logf("backup --verify:\n%s", out)
	if err != nil || !strings.Contains(string(out), "integrity_check: ok") || !strings.Contains(string(out), "polls: 3, votes: 3") {
		t.Errorf("backup --verify = %v, want it to pass with 3 polls and 3 votes:\n%s", err, out)
	}

	// After the backup: a new poll with a vote, one poll gone, a vote more.
	c.createPoll(t, base, "after-backup")
	shell(c.vote("after-backup"))
	shell(c.vote("kept-c"))
	shell("from bitpoll.poll.models import Poll; Poll.objects.get(url='kept-b').delete()")
	sh("echo two > " + upload)

	// A tampered byte and a truncated archive: each refused, nothing changed.
	db := m.Upper("/var/lib/private/bitpoll/db.sqlite3")
	const damage = `import sys
data = bytearray(open(sys.argv[1], "rb").read())
if sys.argv[3] == "flip":
    data[len(data) // 2] ^= 0x20
else:
    data = data[: len(data) * 2 // 3]
open(sys.argv[2], "wb").write(data)
`
	for _, how := range []string{"flip", "cut"} {
		bad := "/var/tmp/" + how + ".tar.gz"
		if out, err := m.Exec(ctx, "python3", "-c", damage, archive, bad, how); err != nil {
			t.Fatalf("damage the archive: %v\n%s", err, out)
		}
		before := fileHash(t, db)
		stats := underLoad(t, page, c.clients, 5*time.Second, time.Second, func() {
			out, err = bpi("restore", bad)
		})
		t.Logf("restore of the %s archive under load: %s\n%s", how, stats, out)
		if err == nil || !strings.Contains(string(out), `member "`) || !strings.Contains(string(out), "nothing was changed") {
			t.Errorf("restore of the %s archive = %v, want a refusal naming the member:\n%s", how, err, out)
		}
		if stats.Failed > 0 || stats.Requests == 0 {
			t.Errorf("a refused restore: %d of %d requests failed (%q), want none", stats.Failed, stats.Requests, stats.Failures)
		}
		if fileHash(t, db) != before {
			t.Errorf("the refused restore of the %s archive changed the database", how)
		}
		checkServing(ctx, t, m, 1)
	}

	start = time.Now()
	stats = underLoad(t, page, c.clients, 10*time.Second, 2*time.Second, func() {
		out, err = bpi("restore", archive)
		took = time.Since(start) - 2*time.Second
	})
	// The service stops while the database is replaced: requests in
	// that gap are refused, and counted here, not hidden.
	t.Logf("restore under load in %v: %s\n%s", took.Round(time.Millisecond), stats, out)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if stats.Requests == 0 {
		t.Error("the load generator sent no request during the restore")
	}
	checkServing(ctx, t, m, 1)
	for slug, votes := range polls {
		page200(t, base+c.pollPath(slug))
		if got := shell(c.votes(slug)); !strings.HasSuffix(got, fmt.Sprintf("votes: %d", votes)) {
			t.Errorf("after the restore, poll %s has %q, want votes: %d", slug, got, votes)
		}
	}
	// The content, then the owners of the file and of the state directory.
	if f := strings.Fields(sh("cat " + upload + "; stat -c %u " + upload + " " + state)); len(f) != 3 || f[0] != "one" || f[1] != f[2] {
		t.Errorf("after the restore, the media file's content and owner, then the state directory's owner: %q; want the backed-up \"one\", owned as the state directory is", f)
	}
	if status, _ := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+c.pollPath("after-backup")); status != http.StatusNotFound {
		t.Errorf("after the restore, the poll made after the backup answers %d, want 404", status)
	}
	if got := shell("from bitpoll.poll.models import Poll, Vote; print('polls:', Poll.objects.count(), 'votes:', Vote.objects.count())"); !strings.HasSuffix(got, "polls: 3 votes: 3") {
		t.Errorf("after the restore: %q, want polls: 3 votes: 3", got)
	}
}
