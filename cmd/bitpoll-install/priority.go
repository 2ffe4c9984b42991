package main

import (
	"fmt"
	"os"
	"strconv"

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
// pass.
func yieldCPU() error {
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
