package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestYieldCPU runs in a child process, since it changes the priority of
// the process it runs in: after yieldCPU, every thread, one born later
// and a child process all run at buildNice.
func TestYieldCPU(t *testing.T) {
	if os.Getenv("BITPOLL_TEST_YIELD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestYieldCPU$", "-test.v")
		cmd.Env = append(os.Environ(), "BITPOLL_TEST_YIELD=1")
		// A session, and so an autogroup, of its own at nice 0.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	// Threads that exist before: several, locked so they stay apart.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			<-release
		}()
	}
	restore, err := yieldCPU()
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("%d threads; the test needs several", len(tasks))
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if p, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil && 20-p != buildNice {
			t.Errorf("thread %d has nice %d, want %d", tid, 20-p, buildNice)
		}
	}
	// A thread born after, and a child process.
	born := make(chan int)
	go func() {
		runtime.LockOSThread()
		p, _ := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
		born <- 20 - p
	}()
	if n := <-born; n != buildNice {
		t.Errorf("a thread born after yieldCPU has nice %d, want %d", n, buildNice)
	}
	out, err := exec.Command("sh", "-c", "cut -d' ' -f19 /proc/$$/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(buildNice) {
		t.Errorf("a child process has nice %s, want %d", got, buildNice)
	}
	// The session's autogroup, where the kernel has them: lowered, then
	// put back.
	if data, err := os.ReadFile("/proc/self/autogroup"); err == nil {
		if !strings.HasSuffix(strings.TrimSpace(string(data)), " nice "+strconv.Itoa(buildNice)) {
			t.Errorf("the autogroup after yieldCPU: %q, want nice %d", data, buildNice)
		}
		restore()
		if data, _ := os.ReadFile("/proc/self/autogroup"); !strings.HasSuffix(strings.TrimSpace(string(data)), " nice 0") {
			t.Errorf("the autogroup after restore: %q, want nice 0 again", data)
		}
	} else {
		restore()
	}
	close(release)
	wg.Wait()
}
