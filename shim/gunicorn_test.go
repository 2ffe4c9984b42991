package shim

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
)

// TestGunicornConfWarms runs the fixture project under gunicorn with
// --preload and GunicornConf, as the units do, and checks that the master
// answered one GET / before it forked: the URL conf, which Django imports
// on a first request, is imported once, by the master, and never by a
// worker, however many requests the workers then serve.
func TestGunicornConfWarms(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: installs Django and gunicorn from PyPI into a venv")
	}
	python := fixtureVenv(t, "gunicorn==27.0.1")
	p := newProject(t)
	p.manage(t, python, "migrate", "--noinput")
	p.manage(t, python, "collectstatic", "--noinput")

	imported := filepath.Join(t.TempDir(), "urls-imported")
	urls := filepath.Join(p.app, "fixtureapp", "urls.py")
	src, err := os.ReadFile(urls)
	if err != nil {
		t.Fatal(err)
	}
	mark := fmt.Sprintf("\nimport os as _os\nwith open(%q, \"a\") as _f:\n    _f.write(\"%%d\\n\" %% _os.getpid())\n", imported)
	if err := os.WriteFile(urls, append(src, mark...), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "gunicorn.conf.py")
	if err := os.WriteFile(conf, GunicornConf, 0o644); err != nil {
		t.Fatal(err)
	}

	addr := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	cmd := exec.Command(filepath.Join(filepath.Dir(python), "gunicorn"), "--config", conf, "--workers", "2",
		"--preload", "--no-control-socket", "--bind", addr, "--error-logfile", "-", "fixtureapp.wsgi")
	cmd.Dir, cmd.Env = p.app, p.env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	var log strings.Builder
	warmed := ""
	deadline := time.After(60 * time.Second)
	for warmed == "" {
		select {
		case l, ok := <-logs:
			if !ok {
				t.Fatalf("gunicorn exited before it warmed the app:\n%s", log.String())
			}
			log.WriteString(l + "\n")
			if strings.Contains(l, "warmed the app before forking") {
				warmed = l
			}
		case <-deadline:
			t.Fatalf("no \"warmed the app\" line from gunicorn within 60 s:\n%s", log.String())
		}
	}
	go io.Copy(io.Discard, stderr)
	if !strings.Contains(warmed, "GET / -> 200 OK") {
		t.Errorf("gunicorn logged %q, want GET / answered 200 OK (a Host from ALLOWED_HOSTS)", warmed)
	}

	c := http.Client{Timeout: 10 * time.Second}
	var ok int
	for i := 0; i < 100 && ok < 20; i++ {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "poll.example.org"
		resp, err := c.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / = %d, want 200", resp.StatusCode)
		}
		ok++
	}
	if ok < 20 {
		t.Fatalf("%d of 20 requests answered", ok)
	}
	data, err := os.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(data))
	if len(pids) != 1 || pids[0] != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the URL conf was imported by processes %q, want once by the master %d, before the workers forked", pids, cmd.Process.Pid)
	}
}
