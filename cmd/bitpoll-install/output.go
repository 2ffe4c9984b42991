package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// reporter prints what a command's core decided on its own: text lines, or
// JSON lines with a message_type when --json is given.
type reporter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func newReporter(g *globalOptions) *reporter { return &reporter{w: g.stderr, json: g.JSON} }

func (r *reporter) Notef(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if r.json {
		writeJSONLine(r.w, map[string]any{"message_type": "note", "message": msg})
		return
	}
	fmt.Fprintln(r.w, msg)
}

func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "{\"message_type\":\"error\",\"error\":%q}\n", err.Error())
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}
