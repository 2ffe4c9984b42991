//go:build crashhook

package main

import (
	"os"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/store"
)

// crashPhaseEnv names the phase at which a binary built with the
// crashhook tag kills itself.
const crashPhaseEnv = "BITPOLL_CRASH_PHASE"

// phaseHooks, in a binary built with -tags crashhook, SIGKILLs the
// process as it reaches the phase named by $BITPOLL_CRASH_PHASE: the
// system tests kill the real binary at each step of a switch in a booted
// machine. The binary built without the tag has none of this.
func phaseHooks() store.Hooks {
	phase := os.Getenv(crashPhaseEnv)
	if phase == "" {
		return store.Hooks{}
	}
	return store.Hooks{At: func(p store.Phase, _ string) {
		if string(p) == phase {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // the signal arrives first
		}
	}}
}
