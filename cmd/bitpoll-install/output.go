package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// With --json every line a command prints is one JSON object on standard
// output, with a message_type; output.schema.json describes each type.
// "Nothing" is null for a single value and [] for a list, never "".

// reporter prints what a command's core decided on its own: text lines on
// standard error, or "note" records with --json.
type reporter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func newReporter(g *globalOptions) *reporter { return &reporter{w: g.messages(), json: g.JSON} }

func (r *reporter) Notef(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if r.json {
		writeJSONLine(r.w, noteRecord{"note", msg})
		return
	}
	fmt.Fprintln(r.w, msg)
}

// messages is where messages for people go: standard error in text mode,
// standard output with --json, which carries every record.
func (g *globalOptions) messages() io.Writer {
	if g.JSON {
		return g.stdout
	}
	return g.stderr
}

func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errorRecord{"error", "encode output: " + err.Error(), exitFailure})
	}
	fmt.Fprintf(w, "%s\n", b)
}

// optional is s, or nil (JSON null) when s is empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// list is s, never nil: JSON [] rather than null.
func list[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// The records. Each field is always present.

type noteRecord struct {
	MessageType string `json:"message_type"` // "note"
	Message     string `json:"message"`
}

type errorRecord struct {
	MessageType string `json:"message_type"` // "error"
	Error       string `json:"error"`
	ExitCode    int    `json:"exit_code"`
}

type versionRecord struct {
	MessageType string `json:"message_type"` // "version"
	Version     string `json:"version"`
}

// logRecord is one line a child process wrote.
type logRecord struct {
	MessageType string `json:"message_type"` // "log"
	Source      string `json:"source"`       // the program: "gunicorn", "migrate", "manage.py"
	Stream      string `json:"stream"`       // "stdout" or "stderr"
	Message     string `json:"message"`
}

// logWriter turns what a child process writes into log records, a line
// each. A line cut at Close is still sent.
type logWriter struct {
	mu      *sync.Mutex // shared by the writers of one output
	w       io.Writer
	source  string
	stream  string
	pending bytes.Buffer
}

// childOutput is where a child process's output goes: the command's own
// streams in text mode, log records with --json.
func (g *globalOptions) childOutput(source string) (stdout, stderr io.Writer, flush func()) {
	if !g.JSON {
		return g.stdout, g.stderr, func() {}
	}
	mu := &sync.Mutex{}
	o := &logWriter{mu: mu, w: g.stdout, source: source, stream: "stdout"}
	e := &logWriter{mu: mu, w: g.stdout, source: source, stream: "stderr"}
	return o, e, func() { o.flush(); e.flush() }
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending.Write(p)
	for {
		line, err := l.pending.ReadString('\n')
		if err != nil {
			// No newline yet: keep the start of the line for later.
			rest := []byte(line)
			l.pending.Reset()
			l.pending.Write(rest)
			return len(p), nil
		}
		l.emit(line[:len(line)-1])
	}
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending.Len() > 0 {
		l.emit(l.pending.String())
		l.pending.Reset()
	}
}

func (l *logWriter) emit(line string) {
	writeJSONLine(l.w, logRecord{"log", l.source, l.stream, string(bytes.TrimRight([]byte(line), "\r"))})
}
