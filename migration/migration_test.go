package migration

import (
	"strings"
	"testing"
)

// out is what the helper prints: noise from the app, then its one line.
const stateOut = `Some warning the app printed
BITPOLL-MIGRATION-JSON:{"applied": [["polls", "0001_initial"], ["polls", "0002_poll_note"], ["sessions", "0001_initial"]], "database": true, "errors": [], "integrity": "ok", "leaves": {"polls": ["0001_initial"], "sessions": ["0001_initial"]}, "unapplied": [], "unknown": [["polls", "0002_poll_note"]]}
`

func TestParseState(t *testing.T) {
	s, err := ParseState([]byte(stateOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Applied) != 3 || s.Applied[1] != (Node{"polls", "0002_poll_note"}) || !s.Database || s.Integrity != "ok" {
		t.Errorf("ParseState = %+v, want three applied migrations, a database and integrity ok", s)
	}
	if got := s.AppliedByApp(); !got.Equal(Applied{"polls": {"0001_initial", "0002_poll_note"}, "sessions": {"0001_initial"}}) || got.Count() != 3 {
		t.Errorf("AppliedByApp = %v, want polls 0001 and 0002, sessions 0001", got)
	}
	targets, err := ReverseTargets(s)
	if err != nil || len(targets) != 1 || targets["polls"] != "0001_initial" {
		t.Errorf("ReverseTargets = %v, %v, want polls → 0001_initial", targets, err)
	}
}

func TestParseStateNoAnswer(t *testing.T) {
	_, err := ParseState([]byte("Traceback (most recent call last):\nRuntimeError: boom\n"))
	if err == nil || !strings.Contains(err.Error(), "RuntimeError: boom") {
		t.Errorf("ParseState of a traceback = %v, want an error quoting it", err)
	}
}

func TestReverseTargets(t *testing.T) {
	s := &State{Leaves: map[string][]string{"a": {"0001", "0002x"}}, Unknown: []Node{{"a", "0003"}, {"gone", "0001"}}}
	if _, err := ReverseTargets(s); err == nil || !strings.Contains(err.Error(), "2 leaf migrations") {
		t.Errorf("ReverseTargets with two leaves = %v, want an error naming them", err)
	}
	s.Leaves["a"] = []string{"0002"}
	targets, err := ReverseTargets(s)
	if err != nil || targets["a"] != "0002" || targets["gone"] != "" {
		t.Errorf("ReverseTargets = %v, %v, want a → 0002 and gone → zero", targets, err)
	}
}

func TestRefusals(t *testing.T) {
	plan, err := ParsePlan([]byte(`BITPOLL-MIGRATION-JSON:{"steps": [` +
		`{"app": "polls", "name": "0003_remove_poll_note", "backwards": true, "irreversible": [], "drops": ["RemoveField: Remove field note from poll"]},` +
		`{"app": "polls", "name": "0002_data", "backwards": true, "irreversible": ["RunPython"], "drops": []},` +
		`{"app": "polls", "name": "0001_initial", "backwards": false, "irreversible": ["ignored forwards"], "drops": []}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := Refusals(plan)
	if len(got) != 2 || !strings.Contains(got[1], "polls.0002_data is irreversible (RunPython)") || !strings.Contains(got[0], "polls.0003_remove_poll_note dropped data") {
		t.Errorf("Refusals = %q, want the irreversible and the data-dropping backward steps by name", got)
	}
}

func TestPlanArgs(t *testing.T) {
	args := PlanArgs(map[string]string{"polls": "0001_initial", "gone": ""})
	if len(args) != 4 || args[0] != "-c" || args[2] != "plan" || args[3] != `{"gone":null,"polls":"0001_initial"}` {
		t.Errorf("PlanArgs = %q, want -c SCRIPT plan and the targets with zero as null", args)
	}
}
