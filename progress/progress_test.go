package progress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// run feeds r the events of fetching the named items, each of size bytes,
// with a log message in the middle.
func run(r Reporter, names []string, size int64) {
	r.Start(len(names), int64(len(names))*size)
	for i, name := range names {
		r.Add(name, size/2)
		if i == 0 {
			r.Log("retrying " + name)
			r.Add(name, -size/2) // a failed attempt, taken back
			r.Add(name, size/2)
		}
		r.Add(name, size-size/2)
		r.Done(name)
	}
	r.Finish()
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestNewChooses(t *testing.T) {
	var buf bytes.Buffer
	tests := []struct {
		json bool
		want string
	}{
		{false, "*progress.plain"}, // a buffer is not a terminal
		{true, "*progress.jsonReporter"},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf("%T", New(&buf, tt.json)); got != tt.want {
			t.Errorf("New(buffer, %v) = %s, want %s", tt.json, got, tt.want)
		}
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	run(New(&buf, true), []string{"a.whl", "b.whl"}, 1000)
	var types []string
	for _, line := range lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("JSON reporter line %q does not parse: %v", line, err)
		}
		mt, _ := m["message_type"].(string)
		if mt == "" {
			t.Errorf("JSON reporter line %q has no message_type", line)
		}
		types = append(types, mt)
		switch mt {
		case "fetched":
			if m["bytes"] != 1000.0 {
				t.Errorf("fetched line %q has bytes %v, want 1000", line, m["bytes"])
			}
		case "fetch_summary":
			if m["bytes"] != 2000.0 || m["done"] != 2.0 || m["total"] != 2.0 {
				t.Errorf("summary line %q, want 2 of 2 done and 2000 bytes", line)
			}
		}
	}
	want := []string{"fetch_start", "note", "fetched", "fetched", "fetch_summary"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("JSON message types = %v, want %v", types, want)
	}
}

func TestPlain(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, false)
	names := []string{"a.whl", "b.whl", "c.whl"}
	r.Start(len(names), 3*2048)
	for _, name := range names {
		r.Add(name, 2048)
		r.Done(name)
	}
	got := lines(buf.String())
	if len(got) != len(names) {
		t.Fatalf("plain reporter wrote %q for %d done files, want one line each", got, len(names))
	}
	for i, name := range names {
		if want := fmt.Sprintf("fetched %s (2.0 KiB) [%d/3]", name, i+1); got[i] != want {
			t.Errorf("plain line %d = %q, want %q", i, got[i], want)
		}
	}
	r.Finish()
	if got := lines(buf.String()); len(got) != len(names)+1 || !strings.HasPrefix(got[len(names)], "fetched 3 of 3 files, 6.0 KiB in ") {
		t.Errorf("plain output after Finish = %q, want a summary line \"fetched 3 of 3 files, 6.0 KiB in ...\"", got)
	}
}

func TestPlainNothingDone(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, false)
	r.Start(0, 0)
	r.Finish()
	if buf.Len() != 0 {
		t.Errorf("plain reporter with nothing to do wrote %q, want nothing", buf.String())
	}
}

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	run(newBar(&buf), []string{"a.whl", "b.whl"}, 4096)
	out := buf.String()
	for _, want := range []string{"retrying a.whl\n", "fetched 2 of 2 files, 8.0 KiB in "} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output = %q, want it to contain %q", out, want)
		}
	}
}

// TestConcurrent runs under -race: the core reports from several
// goroutines.
func TestConcurrent(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var buf bytes.Buffer
		r := New(&buf, asJSON)
		r.Start(16, 16*100)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				name := fmt.Sprintf("p%d.whl", i)
				for range 10 {
					r.Add(name, 10)
				}
				r.Done(name)
			})
		}
		wg.Wait()
		r.Finish()
		want := 17 // one per file and a summary
		if asJSON {
			want++ // and a start line
		}
		if got := lines(buf.String()); len(got) != want {
			t.Errorf("reporter (json %v) wrote %d lines for 16 done files, want %d", asJSON, len(got), want)
		}
		summary := "fetched 16 of 16 files, 1.6 KiB"
		if asJSON {
			summary = `{"message_type":"fetch_summary","done":16,"total":16,"bytes":1600,`
		}
		if !strings.Contains(buf.String(), summary) {
			t.Errorf("reporter (json %v) output = %q, want a summary with %q", asJSON, buf.String(), summary)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"},
		{3 << 30, "3.0 GiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
