// Package migration asks Django itself, through a small embedded helper
// run with a generation's own interpreter, what state a database's
// migrations are in and what `migrate` would do to reach a target. It
// parses nothing of the database by hand: Django's loader, recorder and
// executor are the source of truth. Running the helper (in the service's
// sandbox or directly) is the caller's business.
package migration

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

//go:embed helper.py
var helper string

// Marker starts the helper's one line of JSON.
const Marker = "BITPOLL-MIGRATION-JSON:"

// Args is the interpreter's argument list that runs the helper with cmd
// and its arguments: "-c", the script, then cmd.
func Args(cmd ...string) []string { return append([]string{"-c", helper}, cmd...) }

// StateArgs asks for the code's graph against the database.
func StateArgs() []string { return Args("state") }

// PlanArgs asks for the plan that reaches targets (app → migration name,
// "" for zero).
func PlanArgs(targets map[string]string) []string {
	t := map[string]*string{}
	for app, name := range targets {
		if name == "" {
			t[app] = nil
		} else {
			t[app] = &name
		}
	}
	b, _ := json.Marshal(t) // a map of strings always marshals
	return Args("plan", string(b))
}

// Node is one migration: an app label and a name.
type Node struct{ App, Name string }

func (n Node) String() string { return n.App + "." + n.Name }

func (n *Node) UnmarshalJSON(b []byte) error {
	var pair []string
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("migration node %s is not [app, name]", b)
	}
	n.App, n.Name = pair[0], pair[1]
	return nil
}

func (n Node) MarshalJSON() ([]byte, error) { return json.Marshal([]string{n.App, n.Name}) }

// State is what one generation's code says about the database.
type State struct {
	// Leaves are the newest migrations of each app in the code.
	Leaves map[string][]string `json:"leaves"`
	// Errors are the system checks' errors: an app that fails to import.
	Errors []string `json:"errors"`
	// Database says whether there is a database yet (SQLite file).
	Database bool `json:"database"`
	// Applied are the migrations the database records.
	Applied []Node `json:"applied"`
	// Unknown are applied migrations the code does not have: the
	// database is ahead of this code.
	Unknown []Node `json:"unknown"`
	// Unapplied are the code's migrations the database lacks, in order.
	Unapplied []Node `json:"unapplied"`
	// Integrity is SQLite's PRAGMA integrity_check ("ok"); empty for
	// other databases.
	Integrity string `json:"integrity"`
}

// Step is one migration of a plan.
type Step struct {
	App          string   `json:"app"`
	Name         string   `json:"name"`
	Backwards    bool     `json:"backwards"`
	Irreversible []string `json:"irreversible"` // operations that cannot be reversed
	Drops        []string `json:"drops"`        // operations whose reversal cannot bring data back
}

func (s Step) String() string { return s.App + "." + s.Name }

// ParseState reads the helper's output of "state".
func ParseState(out []byte) (*State, error) {
	var s State
	if err := parse(out, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParsePlan reads the helper's output of "plan".
func ParsePlan(out []byte) ([]Step, error) {
	var p struct{ Steps []Step }
	if err := parse(out, &p); err != nil {
		return nil, err
	}
	return p.Steps, nil
}

func parse(out []byte, v any) error {
	for line := range bytes.Lines(out) {
		if rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte(Marker)); ok {
			if err := json.Unmarshal(rest, v); err != nil {
				return fmt.Errorf("read the migration helper's answer: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("the migration helper gave no answer; its output:\n%s", tail(out))
}

func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// Applied is a database's applied migrations per app, sorted, as a
// generation records them after its migrations ran. Two equal values are
// the same schema.
type Applied map[string][]string

// AppliedByApp groups the applied migrations by app.
func (s *State) AppliedByApp() Applied {
	h := Applied{}
	for _, n := range s.Applied {
		h[n.App] = append(h[n.App], n.Name)
	}
	for app := range h {
		sort.Strings(h[app])
	}
	return h
}

// Equal reports whether a and b record the same applied migrations.
func (a Applied) Equal(b Applied) bool {
	if len(a) != len(b) {
		return false
	}
	for app, names := range a {
		if !slices.Equal(names, b[app]) {
			return false
		}
	}
	return true
}

// Count is the number of applied migrations.
func (a Applied) Count() int {
	n := 0
	for _, names := range a {
		n += len(names)
	}
	return n
}

// ReverseTargets are the `migrate APP TARGET` targets that undo what to's
// code does not know: for each app with unknown applied migrations, the
// newest migration of to's code (its leaf), or "" (zero) when to's code
// has no migrations of that app. An error names an app whose graph has
// more than one leaf, which `migrate` cannot target alone.
func ReverseTargets(to *State) (map[string]string, error) {
	t := map[string]string{}
	for _, n := range to.Unknown {
		leaves := to.Leaves[n.App]
		switch len(leaves) {
		case 0:
			t[n.App] = ""
		case 1:
			t[n.App] = leaves[0]
		default:
			return nil, fmt.Errorf("app %s has %d leaf migrations (%s) in the target's code; merge them first", n.App, len(leaves), strings.Join(leaves, ", "))
		}
	}
	return t, nil
}

// Refusals lists the backward steps of plan that lose data or cannot run:
// one line each, naming the migration and the operation.
func Refusals(plan []Step) []string {
	var out []string
	for _, s := range plan {
		if !s.Backwards {
			continue
		}
		for _, op := range s.Irreversible {
			out = append(out, fmt.Sprintf("%s is irreversible (%s)", s, op))
		}
		for _, op := range s.Drops {
			out = append(out, fmt.Sprintf("%s dropped data that reversing cannot bring back (%s)", s, op))
		}
	}
	return out
}
