package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// buildNice is the nice value a build takes while a generation serves on
// the same machine: the build's wheel writes, bytecode compile and
// hashing otherwise take a core from the requests, and a request then
// waits (measured on real Bitpoll with 2 cores: the slowest request of an
// upgrade fell in the bytecode compile).
const buildNice = 10

// yieldCPU lowers the CPU priority of every thread of this process, and
// so of every thread and child started later, which inherit it. Linux
// keeps a nice value per thread, so one setpriority call is not enough
// for a Go program; a thread born during the walk is caught by the next
// pass. Where the kernel groups tasks by session (autogroup, on by
// default in Debian's kernels), a nice value weighs only within the
// group, and the service runs in a session of its own: the session's
// group is lowered too, until restore (the admin's shell waits meanwhile).
func yieldCPU() (restore func(), err error) {
	restore, err = yieldAutogroup("/proc/self/autogroup")
	if err != nil {
		return nil, err
	}
	if err := yieldThreads(); err != nil {
		restore()
		return nil, err
	}
	return restore, nil
}

// yieldAutogroup sets the nice value of this session's autogroup to
// buildNice and returns what puts the old one back; it does nothing where
// the kernel has no autogroups.
func yieldAutogroup(path string) (func(), error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return func() {}, nil // no autogroups here
	}
	// "/autogroup-42 nice 0"
	fields := strings.Fields(string(data))
	if len(fields) != 3 || fields[1] != "nice" {
		return func() {}, nil
	}
	old, err := strconv.Atoi(fields[2])
	if err != nil || old >= buildNice {
		return func() {}, nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(buildNice)), 0); err != nil {
		return nil, fmt.Errorf("lower the build's priority: %s: %w", path, err)
	}
	return func() { os.WriteFile(path, []byte(strconv.Itoa(old)), 0) }, nil
}

func yieldThreads() error {
	for range 5 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("lower the build's priority: %w", err)
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// getpriority's raw syscall returns 20-nice.
			cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
			if err != nil {
				continue // the thread has exited
			}
			if 20-cur >= buildNice {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, buildNice); err != nil && err != unix.ESRCH {
				return fmt.Errorf("lower the build's priority: thread %d: %w", tid, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}
