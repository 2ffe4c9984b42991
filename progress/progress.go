// Package progress reports the progress of a batch of downloads (or any
// work counted in items and bytes) to the user. The core takes a Reporter,
// which is Nop by default; New picks a progress bar for a terminal, plain
// lines for a log, or JSON lines for programs.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Reporter receives progress events. Its methods may be called from several
// goroutines at once.
type Reporter interface {
	// Start announces total items holding totalBytes bytes in all.
	Start(total int, totalBytes int64)
	// Add records bytes more bytes of item name. bytes is negative when a
	// failed attempt is rolled back before a retry.
	Add(name string, bytes int64)
	// Done records that item name is complete.
	Done(name string)
	// Log shows a message without disturbing the progress display.
	Log(msg string)
	// Finish ends the display; no calls follow it.
	Finish()
}

var (
	_ Reporter = Nop{}
	_ Reporter = (*plain)(nil)
	_ Reporter = (*jsonReporter)(nil)
	_ Reporter = (*bar)(nil)
)

// Nop is a Reporter that reports nothing.
type Nop struct{}

func (Nop) Start(int, int64)  {}
func (Nop) Add(string, int64) {}
func (Nop) Done(string)       {}
func (Nop) Log(string)        {}
func (Nop) Finish()           {}

// New returns the Reporter for w: JSON lines when asJSON is set, a progress
// bar when w is a terminal, and plain lines otherwise.
func New(w io.Writer, asJSON bool) Reporter {
	switch {
	case asJSON:
		return newJSON(w)
	case isTerminal(w):
		return newBar(w)
	default:
		return newPlain(w)
	}
}

// isTerminal reports whether w is a terminal: an *os.File, or a writer
// wrapping one that tells its descriptor.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && f.Fd() != ^uintptr(0) && term.IsTerminal(int(f.Fd()))
}

// counts is the state every Reporter keeps; the caller holds the lock.
type counts struct {
	mu         sync.Mutex
	total      int
	totalBytes int64
	done       int
	bytes      int64
	perItem    map[string]int64
	started    time.Time
}

func (c *counts) start(total int, totalBytes int64) {
	c.total, c.totalBytes = total, totalBytes
	c.perItem = make(map[string]int64)
	c.started = time.Now()
}

func (c *counts) add(name string, n int64) {
	if c.perItem == nil {
		c.perItem = make(map[string]int64)
	}
	c.bytes += n
	c.perItem[name] += n
}

func (c *counts) summary() string {
	return fmt.Sprintf("fetched %d of %d files, %s in %s", c.done, c.total, FormatBytes(c.bytes), time.Since(c.started).Round(time.Millisecond))
}

// plain writes one line per finished item and a summary, for logs and pipes.
type plain struct {
	w io.Writer
	c counts
}

func newPlain(w io.Writer) *plain { return &plain{w: w} }

func (p *plain) Start(total int, totalBytes int64) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.start(total, totalBytes)
}

func (p *plain) Add(name string, n int64) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.add(name, n)
}

func (p *plain) Done(name string) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.done++
	fmt.Fprintf(p.w, "fetched %s (%s) [%d/%d]\n", name, FormatBytes(p.c.perItem[name]), p.c.done, p.c.total)
}

func (p *plain) Log(msg string) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	fmt.Fprintln(p.w, msg)
}

func (p *plain) Finish() {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.c.done == 0 {
		return
	}
	fmt.Fprintln(p.w, p.c.summary())
}

// jsonReporter writes one JSON object per line, each with a message_type,
// so that other programs can follow along.
type jsonReporter struct {
	enc *json.Encoder
	c   counts
}

func newJSON(w io.Writer) *jsonReporter { return &jsonReporter{enc: json.NewEncoder(w)} }

// The JSON records; their message types are unique among all of the
// command line's records ("log" is a child process's line there, so a
// message of ours is a "note").
type jsonStart struct {
	MessageType string `json:"message_type"` // "fetch_start"
	Total       int    `json:"total"`
	TotalBytes  int64  `json:"total_bytes"`
}

type jsonDone struct {
	MessageType string `json:"message_type"` // "fetched"
	Name        string `json:"name"`
	Bytes       int64  `json:"bytes"`
	Done        int    `json:"done"`
	Total       int    `json:"total"`
}

type jsonLog struct {
	MessageType string `json:"message_type"` // "note"
	Message     string `json:"message"`
}

type jsonSummary struct {
	MessageType string  `json:"message_type"` // "fetch_summary"
	Done        int     `json:"done"`
	Total       int     `json:"total"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
}

func (j *jsonReporter) Start(total int, totalBytes int64) {
	j.c.mu.Lock()
	defer j.c.mu.Unlock()
	j.c.start(total, totalBytes)
	j.enc.Encode(jsonStart{"fetch_start", total, totalBytes})
}

// Add only counts: a line per chunk would drown the reader.
func (j *jsonReporter) Add(name string, n int64) {
	j.c.mu.Lock()
	defer j.c.mu.Unlock()
	j.c.add(name, n)
}

func (j *jsonReporter) Done(name string) {
	j.c.mu.Lock()
	defer j.c.mu.Unlock()
	j.c.done++
	j.enc.Encode(jsonDone{"fetched", name, j.c.perItem[name], j.c.done, j.c.total})
}

func (j *jsonReporter) Log(msg string) {
	j.c.mu.Lock()
	defer j.c.mu.Unlock()
	j.enc.Encode(jsonLog{"note", msg})
}

func (j *jsonReporter) Finish() {
	j.c.mu.Lock()
	defer j.c.mu.Unlock()
	j.enc.Encode(jsonSummary{"fetch_summary", j.c.done, j.c.total, j.c.bytes, time.Since(j.c.started).Seconds()})
}

// bar draws a byte progress bar on a terminal, with the item count in its
// description.
type bar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	c   counts
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

func (b *bar) Start(total int, totalBytes int64) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.c.start(total, totalBytes)
	b.bar = progressbar.NewOptions64(totalBytes,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(b.describe()),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (b *bar) describe() string {
	return fmt.Sprintf("fetching %d/%d", b.c.done, b.c.total)
}

func (b *bar) Add(name string, n int64) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.c.add(name, n)
	if b.bar != nil {
		b.bar.Add64(n)
	}
}

func (b *bar) Done(name string) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.c.done++
	if b.bar != nil {
		b.bar.Describe(b.describe())
	}
}

func (b *bar) Log(msg string) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	// The message takes the bar's line, and the bar is drawn again below.
	if b.bar != nil {
		b.bar.Clear()
	}
	fmt.Fprintln(b.w, msg)
	if b.bar != nil {
		b.bar.RenderBlank()
	}
}

func (b *bar) Finish() {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if b.bar != nil {
		b.bar.Finish()
	}
	if b.c.done > 0 {
		fmt.Fprintln(b.w, b.c.summary())
	}
}

// FormatBytes prints n in the largest binary unit that keeps it at 1 or more.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
