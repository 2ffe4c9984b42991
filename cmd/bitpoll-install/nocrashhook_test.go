//go:build !crashhook

package main

import (
	"testing"

	"github.com/bitpoll-install/bitpoll-install/service"
)

// TestNoCrashHook: the binary built without the crashhook tag ignores
// $BITPOLL_CRASH_PHASE, which the system tests set to kill the tagged
// one at a phase of a switch.
func TestNoCrashHook(t *testing.T) {
	t.Setenv("BITPOLL_CRASH_PHASE", string(service.PhasePending))
	if phaseHooks().At != nil {
		t.Error("phaseHooks() has a hook without the crashhook tag, want none")
	}
}
