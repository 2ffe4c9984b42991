//go:build !crashhook

package main

import "github.com/bitpoll-install/bitpoll-install/store"

// phaseHooks is empty: only a test binary built with -tags crashhook
// acts on the phases (see crashhook.go).
func phaseHooks() store.Hooks { return store.Hooks{} }
