package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaFile is the JSON Schema of every --json record, kept at the top
// of the repository.
const schemaFile = "../../output.schema.json"

var (
	schemaOnce     sync.Once
	compiledSchema *jsonschema.Schema
	schemaTypes    []string
	schemaErr      error
)

// outputSchema compiles output.schema.json, once per test binary, and
// returns it with the message types it declares.
func outputSchema(t testing.TB) (*jsonschema.Schema, []string) {
	t.Helper()
	schemaOnce.Do(func() {
		data, err := os.ReadFile(schemaFile)
		if err != nil {
			schemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if schemaErr = c.AddResource("output.schema.json", doc); schemaErr != nil {
			return
		}
		if compiledSchema, schemaErr = c.Compile("output.schema.json"); schemaErr != nil {
			return
		}
		var raw struct {
			Properties struct {
				MessageType struct {
					Enum []string `json:"enum"`
				} `json:"message_type"`
			} `json:"properties"`
		}
		schemaErr = json.Unmarshal(data, &raw)
		schemaTypes = raw.Properties.MessageType.Enum
	})
	if schemaErr != nil {
		t.Fatalf("%s: %v", filepath.Base(schemaFile), schemaErr)
	}
	return compiledSchema, schemaTypes
}

// record is one line of --json output.
type record map[string]any

func (r record) typ() string { s, _ := r["message_type"].(string); return s }

// checkJSONOutput fails unless stderr is empty and every line of stdout
// is a JSON object that output.schema.json accepts; it returns the
// records.
func checkJSONOutput(t testing.TB, args []string, stdout, stderr string) []record {
	t.Helper()
	sch, _ := outputSchema(t)
	if stderr != "" {
		t.Errorf("%q wrote to standard error with --json, want every line on standard output as JSON:\n%s", args, stderr)
	}
	var out []record
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" && i == 0 && stdout == "" {
			break
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err != nil {
			t.Errorf("%q: line %d of --json output is not JSON: %v\n%s", args, i+1, err, line)
			continue
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%q: line %d of --json output does not match output.schema.json: %v\n%s", args, i+1, err, line)
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("%q: line %d: %v", args, i+1, err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestSchemaRejectsDrift proves the schema is strict enough to catch a
// record that drifted from it: an unknown field, a missing one, null
// where a list is due, "" for nothing, an unknown message type.
func TestSchemaRejectsDrift(t *testing.T) {
	sch, types := outputSchema(t)
	if len(types) < 10 {
		t.Fatalf("the schema declares %d message types: %q", len(types), types)
	}
	good := `{"message_type":"gc","dry_run":true,"generations":[1],"store_paths":[],"files":[],"bytes_freed":0}`
	bad := map[string]string{
		"an unknown field":       `{"message_type":"gc","dry_run":true,"generations":[1],"store_paths":[],"files":[],"bytes_freed":0,"extra":1}`,
		"a missing field":        `{"message_type":"gc","dry_run":true,"generations":[1],"store_paths":[],"files":[]}`,
		"null for a list":        `{"message_type":"gc","dry_run":true,"generations":null,"store_paths":[],"files":[],"bytes_freed":0}`,
		"an unknown type":        `{"message_type":"summary","done":1}`,
		"no message_type":        `{"dry_run":true}`,
		"a string for a number":  `{"message_type":"error","error":"x","exit_code":"1"}`,
		"an undocumented exit":   `{"message_type":"error","error":"x","exit_code":7}`,
		"an empty note":          `{"message_type":"note","message":""}`,
		"a log of no known tool": `{"message_type":"log","source":"someone","stream":"stdout","message":"x"}`,
	}
	check := func(doc string) error {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
	if err := check(good); err != nil {
		t.Errorf("a good gc record fails the schema: %v", err)
	}
	for what, doc := range bad {
		if check(doc) == nil {
			t.Errorf("the schema accepts %s: %s", what, doc)
		}
	}
}
