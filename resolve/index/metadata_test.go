package index

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Each testdata/metadata/<case>.metadata is parsed and compared with
// <case>.want: either the JSON of the Metadata or "error: <substring>".
func TestParseMetadata(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "metadata", "*.metadata"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no test cases found: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".metadata")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw, err := os.ReadFile(strings.TrimSuffix(in, ".metadata") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseMetadata(data)
			if wantErr, ok := strings.CutPrefix(strings.TrimSpace(string(wantRaw)), "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("ParseMetadata(%q) error = %v, want one containing %q", name, err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMetadata(%q) error = %v", name, err)
			}
			var want Metadata
			if err := json.Unmarshal(wantRaw, &want); err != nil {
				t.Fatalf("bad %s.want: %v", name, err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("ParseMetadata(%q) = %+v, want %+v", name, *got, want)
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "metadata", "*.metadata"))
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("Name: a\nVersion: 1\n \n"))
	f.Add([]byte(":\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(data)
		if err != nil {
			return
		}
		if m.Name == "" || m.Version == "" {
			t.Errorf("ParseMetadata(%q) = %+v with no error, want name and version set", data, m)
		}
	})
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Django", "django"},
		{"zope.interface", "zope-interface"},
		{"typing_extensions", "typing-extensions"},
		{"A-_.-b", "a-b"},
		{"psycopg", "psycopg"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
