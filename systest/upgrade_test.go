package systest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
)

// loadStats is what a bounded load run saw.
type loadStats struct {
	Requests, Failed int
	P50, P99, Max    time.Duration
	// Gap is the longest time in which no request finished.
	Gap time.Duration
	// MaxAt and GapAt are when the slowest request started and the gap
	// began, from the start of the load: to find the phase they fall in.
	MaxAt, GapAt time.Duration
	Failures     []string
}

func (s loadStats) String() string {
	return fmt.Sprintf("%d requests, %d failed, latency p50 %v p99 %v max %v (at +%v), longest gap without an answer %v (at +%v)",
		s.Requests, s.Failed, s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Max.Round(time.Millisecond), s.MaxAt.Round(time.Millisecond),
		s.Gap.Round(time.Millisecond), s.GapAt.Round(time.Millisecond))
}

// load sends GETs of url from clients loops on loopback until stop is
// closed or the bound passes; a request fails on a transport error or a
// status other than 200.
func load(url string, clients int, bound time.Duration, stop <-chan struct{}) loadStats {
	type sample struct {
		end time.Time
		lat time.Duration
		err string
	}
	var mu sync.Mutex
	var samples []sample
	begin := time.Now()
	deadline := begin.Add(bound)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := c.Get(url)
				smp := sample{lat: time.Since(start)}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				smp.end = time.Now()
				if err != nil {
					smp.err = err.Error()
				}
				mu.Lock()
				samples = append(samples, smp)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var st loadStats
	var lats []time.Duration
	var ends []time.Time
	for _, s := range samples {
		if s.err == "" && s.lat > st.Max {
			st.Max, st.MaxAt = s.lat, s.end.Add(-s.lat).Sub(begin)
		}
		st.Requests++
		if s.err != "" {
			st.Failed++
			if len(st.Failures) < 5 {
				st.Failures = append(st.Failures, s.err)
			}
			continue
		}
		lats = append(lats, s.lat)
		ends = append(ends, s.end)
	}
	if len(lats) == 0 {
		return st
	}
	slices.Sort(lats)
	st.P50, st.P99 = lats[len(lats)/2], lats[len(lats)*99/100]
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(ends); i++ {
		if gap := ends[i].Sub(ends[i-1]); gap > st.Gap {
			st.Gap, st.GapAt = gap, ends[i-1].Sub(begin)
		}
	}
	return st
}

// underLoad runs f while load runs on url, settle before and after it,
// for at least least in all (the build inside f may take longer), and
// returns what load saw.
func underLoad(t *testing.T, url string, clients int, least, settle time.Duration, f func()) loadStats {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan loadStats, 1)
	start := time.Now()
	go func() { done <- load(url, clients, 20*time.Minute, stop) }()
	time.Sleep(settle)
	fStart := time.Since(start)
	f()
	t.Logf("under load: the command ran from +%v to +%v", fStart.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	time.Sleep(max(settle, least-time.Since(start)))
	close(stop)
	return <-done
}

// upgradeCase is an app in an old and a new version: the new one applies
// a migration that the old one lacks.
type upgradeCase struct {
	name             string
	old, new, broken string // app trees
	oldVer, newVer   string
	target           string
	lock             func(dir, version string) *lockfile.Lock
	migration        string // app.name the new version applies
	createPoll       func(t *testing.T, base, slug string)
	// vote adds a vote to a poll and votes counts them, through manage
	// shell; nil where the app has no votes.
	vote, votes func(slug string) string
	pollPath    func(slug string) string
	clients     int
	bound       time.Duration
	// dropping, when set, is a tree whose migration drops a column the
	// new one added: a rollback across it is refused, --restore-snapshot
	// goes back, gc frees what is left over, and two upgrades at once
	// take turns.
	dropping string
}

// TestUpgradeFixtureUnderLoad upgrades the fixture app across a migration
// and rolls it back in a booted trixie, under load from 4 clients, with
// no request failing; then a generation that fails at import is refused
// by the gate with the database untouched.
func TestUpgradeFixtureUnderLoad(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	testkit.NeedNetwork(t)
	old := testkit.FixtureApp()
	newer := testkit.FixtureVariant(t, true, testkit.AddNote)
	broken := testkit.FixtureVariant(t, true, testkit.AddNote, map[string]string{"fixtureapp/urls.py": "raise RuntimeError(\"this generation is broken on purpose\")\n"})
	dropping := testkit.FixtureVariant(t, false, testkit.AddNote, testkit.DropNote)
	upgradeUnderLoad(t, rootfs, upgradeCase{
		name: "fixture", old: old, new: newer, broken: broken, oldVer: "1.0.0", newVer: "1.0.2", target: "cp313-x86_64",
		lock: func(dir, version string) *lockfile.Lock {
			return testkit.LockFixtureTree(t, dir, version, "cp313-x86_64", "gunicorn==27.0.1", "whitenoise==6.12.0")
		},
		migration:  "polls.0002_poll_note",
		createPoll: createFixturePoll,
		pollPath:   func(slug string) string { return "/poll/" + slug + "/" },
		clients:    4, bound: 20 * time.Second,
		dropping: dropping,
	})
}

// TestUpgradeBitpollUnderLoad is the same with real Bitpoll: 0.11.0, then
// master and back. The mirror's 0.11.0 already has poll.0020 (master adds
// no migration), so master gets one more, poll.0021, a nullable column of
// the kind a real release adds, to cross a migration both ways.
func TestUpgradeBitpollUnderLoad(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	upgradeUnderLoad(t, rootfs, bitpollCase(t))
}

// bitpollCase is real Bitpoll from the mirror: 0.11.0, then master with
// one more migration, and a master that fails at import.
func bitpollCase(t *testing.T) upgradeCase {
	mirror := testkit.BitpollMirror(t)
	idx := testkit.RealIndex(t)
	ctx := context.Background()
	old := testkit.ExportRelease(ctx, t, mirror, "0.11.0")
	newer := testkit.ExportRelease(ctx, t, mirror, "master")
	broken := testkit.ExportRelease(ctx, t, mirror, "master")
	for _, dir := range []string{newer, broken} {
		if err := os.WriteFile(filepath.Join(dir, "bitpoll/poll/migrations/0021_poll_upgrade_note.py"), []byte(bitpollMigration), 0o644); err != nil {
			t.Fatal(err)
		}
		// The new code reads the new column (Django selects every field),
		// so its poll page fails on the old schema: the page's answer
		// proves that the code that serves and the schema agree.
		models := filepath.Join(dir, "bitpoll/poll/models.py")
		src, err := os.ReadFile(models)
		if err != nil {
			t.Fatal(err)
		}
		const anchor = "class Poll(models.Model):\n"
		if !strings.Contains(string(src), anchor) {
			t.Fatalf("%s has no %q to add the new field to", models, anchor)
		}
		src = []byte(strings.Replace(string(src), anchor, anchor+"    upgrade_note = models.TextField(null=True, blank=True)\n", 1))
		if err := os.WriteFile(models, src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(broken, "bitpoll", "urls.py"), []byte("raise RuntimeError(\"this generation is broken on purpose\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return upgradeCase{
		name: "bitpoll", old: old, new: newer, broken: broken, oldVer: "0.11.0", newVer: "0.11.0+master", target: "cp313-x86_64",
		lock: func(dir, version string) *lockfile.Lock {
			return testkit.LockTree(ctx, t, idx, dir, version, "cp313-x86_64")
		},
		migration:  "poll.0021_poll_upgrade_note",
		createPoll: func(t *testing.T, base, slug string) { testkit.CreatePoll(t, base, slug, "Poll "+slug) },
		vote: func(slug string) string {
			return fmt.Sprintf("from django.utils import timezone; from bitpoll.poll.models import Poll, Vote; "+
				"Vote.objects.create(name='voter', date_created=timezone.now(), comment='', poll=Poll.objects.get(url=%q))", slug)
		},
		votes: func(slug string) string {
			return fmt.Sprintf("from bitpoll.poll.models import Vote; print('votes:', Vote.objects.filter(poll__url=%q).count())", slug)
		},
		pollPath: func(slug string) string { return "/poll/" + slug + "/" },
		clients:  4, bound: 40 * time.Second,
	}
}

func upgradeUnderLoad(t *testing.T, rootfs string, c upgradeCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	trees := []appTree{{c.old, c.oldVer}, {c.new, c.newVer}, {c.broken, c.newVer + "9"}}
	if c.dropping != "" {
		trees = append(trees, appTree{c.dropping, c.newVer + "3"})
	}
	vm := bootVersions(ctx, t, rootfs, testkit.BuildCLI(t), c.lock, trees, "bitpoll-upgrade", "")
	m, base, bpi, version := vm.m, vm.base, vm.bpi, vm.version
	if out, err := bpi(append([]string{"install"}, version(0)...)...); err != nil {
		t.Fatalf("install %s: %v\n%s", c.oldVer, err, out)
	}
	get200(t, base)
	c.createPoll(t, base, "before-upgrade")
	shell := func(code string) string {
		t.Helper()
		out, err := bpi("manage", "shell", "-c", code)
		if err != nil {
			t.Fatalf("manage shell -c %q: %v\n%s", code, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if c.vote != nil {
		shell(c.vote("before-upgrade"))
	}
	page := base + c.pollPath("before-upgrade")
	// The same load with no command: what the machine gives without a
	// switch, to read the numbers below against.
	idle := underLoad(t, page, c.clients, 20*time.Second, 0, func() {})
	t.Logf("the same load, no command, for 20 s: %s", idle)
	var out []byte
	var err error
	stats := underLoad(t, page, c.clients, c.bound, 3*time.Second, func() {
		out, err = bpi(append([]string{"--json", "upgrade"}, version(1)...)...)
	})
	t.Logf("upgrade %s → %s under load: %s", c.oldVer, c.newVer, stats)
	t.Logf("upgrade phases: %s", phases(out))
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if stats.Failed > 0 || stats.Requests == 0 {
		t.Errorf("upgrade under load: %d of %d requests failed (%q), want none", stats.Failed, stats.Requests, stats.Failures)
	}
	if !migrationApplied(ctx, t, m, c.migration) {
		t.Errorf("after the upgrade, %s is not applied", c.migration)
	}
	checkServing(ctx, t, m, 2)
	page200(t, page)
	c.createPoll(t, base, "after-upgrade")
	if c.vote != nil {
		shell(c.vote("after-upgrade"))
	}

	stats = underLoad(t, page, c.clients, c.bound, 3*time.Second, func() {
		out, err = bpi("--json", "rollback")
	})
	t.Logf("rollback under load: %s", stats)
	t.Logf("rollback phases: %s", phases(out))
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	if stats.Failed > 0 || stats.Requests == 0 {
		t.Errorf("rollback under load: %d of %d requests failed (%q), want none", stats.Failed, stats.Requests, stats.Failures)
	}
	if migrationApplied(ctx, t, m, c.migration) {
		t.Errorf("after the rollback, %s is still applied", c.migration)
	}
	checkServing(ctx, t, m, 1)
	for _, slug := range []string{"before-upgrade", "after-upgrade"} {
		page200(t, base+c.pollPath(slug))
		if c.votes != nil {
			if got := shell(c.votes(slug)); !strings.HasSuffix(got, "votes: 1") {
				t.Errorf("after the rollback, poll %s has %q, want its one vote", slug, got)
			}
		}
	}

	// A generation that fails at import: refused, nothing changed.
	db := m.Upper("/var/lib/private/bitpoll/db.sqlite3")
	before := fileHash(t, db)
	stats = underLoad(t, page, c.clients, c.bound, time.Second, func() {
		out, err = bpi(append([]string{"upgrade"}, version(2)...)...)
	})
	t.Logf("refused upgrade under load: %s", stats)
	if err == nil || !strings.Contains(string(out), "this generation is broken on purpose") {
		t.Errorf("upgrade to a broken generation = %v, want a refusal naming the error:\n%s", err, out)
	}
	if stats.Failed > 0 {
		t.Errorf("a refused upgrade: %d of %d requests failed (%q), want none", stats.Failed, stats.Requests, stats.Failures)
	}
	if after := fileHash(t, db); after != before {
		t.Error("the refused upgrade changed the database")
	}
	checkServing(ctx, t, m, 1)
	if c.dropping != "" {
		dropAndRestore(ctx, t, m, base, page, bpi, version)
	}
}

// appTree is one version of an app: its tree and the version to lock it
// as.
type appTree struct{ dir, ver string }

// versionsMachine is a booted machine that holds the CLI in /srv/test
// and, for each version i, its lock (/srv/test/vI.lock) and its tree
// (/srv/appI), with a config that listens on a free port of loopback.
type versionsMachine struct {
	ctx  context.Context
	m    *nspawn.Machine
	base string // the site's URL, from the host
}

// bootVersions boots that machine with the CLI bin; config is added to
// the top of bitpoll.toml.
func bootVersions(ctx context.Context, t *testing.T, rootfs, bin string, lock func(dir, version string) *lockfile.Lock, trees []appTree, name, config string) *versionsMachine {
	t.Helper()
	host := t.TempDir()
	if err := os.Rename(bin, filepath.Join(host, "bitpoll-install")); err != nil {
		t.Fatal(err)
	}
	binds := []nspawn.Bind{{Host: host, Path: "/srv/test"}}
	for i, v := range trees {
		if err := lockfile.WriteFile(filepath.Join(host, fmt.Sprintf("v%d.lock", i)), lock(v.dir, v.ver)); err != nil {
			t.Fatal(err)
		}
		binds = append(binds, nspawn.Bind{Host: v.dir, Path: fmt.Sprintf("/srv/app%d", i)})
	}
	m := nspawn.Boot(ctx, t, nspawn.Options{Rootfs: rootfs, Binds: binds}, name)
	port := testkit.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	writeConfig(t, m, fmt.Sprintf("%sbase_url = %q\nallowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\n[listen]\naddress = \"127.0.0.1\"\nport = %d\n", config, base, port))
	return &versionsMachine{ctx: ctx, m: m, base: base}
}

// bpi runs the CLI inside, as root.
func (v *versionsMachine) bpi(args ...string) ([]byte, error) {
	return v.m.Exec(v.ctx, append([]string{"/srv/test/bitpoll-install"}, args...)...)
}

// version is the flags that install version i.
func (v *versionsMachine) version(i int) []string {
	return []string{"--lock", fmt.Sprintf("/srv/test/v%d.lock", i), "--app-source", fmt.Sprintf("/srv/app%d", i), "--python", "/usr/bin/python3"}
}

// dropAndRestore runs, in the booted machine, what a data-dropping
// migration asks of the operator, and the store lock and gc around it.
func dropAndRestore(ctx context.Context, t *testing.T, m *nspawn.Machine, base, page string, bpi func(...string) ([]byte, error), version func(int) []string) {
	t.Helper()
	// Two upgrades at once: one takes the lock, the other waits and says
	// whom for, then finds the work done.
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = bpi(append([]string{"upgrade"}, version(3)...)...)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("two upgrades at once: %v, %v\n%s\n%s", errs[0], errs[1], outs[0], outs[1])
	}
	if waited := strings.Contains(string(outs[0]), "waiting for process") || strings.Contains(string(outs[1]), "waiting for process"); !waited {
		t.Errorf("of two upgrades at once, neither said it waited for the other:\n%s\n%s", outs[0], outs[1])
	}
	checkServing(ctx, t, m, 3)
	createFixturePoll(t, base, "after-the-drop")

	db := m.Upper("/var/lib/private/bitpoll/db.sqlite3")
	before := fileHash(t, db)
	out, err := bpi("rollback", "--to", "2")
	if err == nil || !strings.Contains(string(out), "polls.0003_remove_poll_note") || !strings.Contains(string(out), "--restore-snapshot") {
		t.Errorf("a rollback across a RemoveField = %v, want a refusal naming polls.0003_remove_poll_note and offering --restore-snapshot:\n%s", err, out)
	}
	if fileHash(t, db) != before {
		t.Error("the refused rollback changed the database")
	}
	checkServing(ctx, t, m, 3)
	out, err = bpi("rollback", "--to", "1", "--restore-snapshot")
	if err != nil {
		t.Fatalf("rollback --restore-snapshot: %v\n%s", err, out)
	}
	checkServing(ctx, t, m, 1)
	page200(t, page)
	if status, _ := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+"/poll/after-the-drop/"); status != http.StatusNotFound {
		t.Errorf("after restoring the snapshot, the poll made after it answers %d, want 404", status)
	}
	kept, _ := filepath.Glob(db + ".replaced-*")
	if len(kept) != 1 {
		t.Errorf("the replaced database: %q, want one file kept beside the restored one", kept)
	}

	list := func() []string {
		var out []string
		for _, dir := range []string{"/opt/bitpoll/store", "/opt/bitpoll/generations"} {
			entries, _ := os.ReadDir(m.Upper(dir))
			for _, e := range entries {
				out = append(out, dir+"/"+e.Name())
			}
		}
		return out
	}
	storeBefore := list()
	out, err = bpi("gc", "--keep", "0")
	storeAfter := list()
	t.Logf("gc: %v\n%s\nbefore: %q\nafter: %q", err, out, storeBefore, storeAfter)
	if err != nil || !slices.Contains(storeAfter, "/opt/bitpoll/generations/1") || !slices.Contains(storeAfter, "/opt/bitpoll/generations/3") ||
		slices.Contains(storeAfter, "/opt/bitpoll/generations/2") || len(storeAfter) >= len(storeBefore) {
		t.Errorf("gc --keep 0 = %v, want generations 1 (current) and 3 (previous) kept and 2 freed:\n%s", err, out)
	}
	page200(t, page)
}

func page200(t *testing.T, u string) {
	t.Helper()
	if status, body := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, u); status != http.StatusOK {
		t.Errorf("GET %s = %d, want 200:\n%s", u, status, body)
	}
}

// checkServing checks that generation n serves alone.
func checkServing(ctx context.Context, t *testing.T, m *nspawn.Machine, n int) {
	t.Helper()
	out, _ := m.Exec(ctx, "systemctl", "list-units", "--plain", "--no-legend", "--state=active", "bitpoll@*.service")
	want := fmt.Sprintf("bitpoll@%d.service", n)
	active := regexp.MustCompile(`bitpoll@\d+\.service`).FindAllString(string(out), -1)
	if !slices.Equal(active, []string{want}) {
		t.Errorf("active generations = %q, want %s alone", active, want)
	}
	if link, err := os.Readlink(m.Upper("/opt/bitpoll/current")); err != nil || link != fmt.Sprintf("generations/%d", n) {
		t.Errorf("current -> %q (%v), want generations/%d", link, err, n)
	}
}

func migrationApplied(ctx context.Context, t *testing.T, m *nspawn.Machine, name string) bool {
	t.Helper()
	app, mig, _ := strings.Cut(name, ".")
	out, err := m.Exec(ctx, "/srv/test/bitpoll-install", "manage", "showmigrations", app)
	if err != nil {
		t.Fatalf("manage showmigrations %s: %v\n%s", app, err, out)
	}
	return regexp.MustCompile(`(?m)^\s*\[X\] ` + regexp.QuoteMeta(mig)).Match(out)
}

func phases(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		var m struct {
			Type   string           `json:"message_type"`
			Phases map[string]int64 `json:"phases_ms"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Type == "switch" && m.Phases != nil {
			b, _ := json.Marshal(m.Phases)
			return string(b)
		}
	}
	return "(no switch record)"
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

const bitpollMigration = `from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("poll", "0020_alter_poll_allow_unauthenticated_vote_changes")]
    operations = [migrations.AddField("poll", "upgrade_note", models.TextField(null=True, blank=True))]
`

// createFixturePoll posts the fixture app's form as a browser would.
func createFixturePoll(t *testing.T, base, slug string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	status, page := testkit.FetchPage(t, c, base+"/")
	tok := regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusOK || tok == nil {
		t.Fatalf("GET / = %d, want 200 with a CSRF token:\n%s", status, page)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(url.Values{"csrfmiddlewaretoken": {tok[1]}, "title": {"Poll " + slug}, "slug": {slug}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, slug) {
		t.Fatalf("POST / (poll %s) ended at %s with %d, want the poll's page", slug, resp.Request.URL, resp.StatusCode)
	}
}
