package index

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestVulnerabilities(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pypi/django/4.2.0/json":
			w.Write([]byte(`{"info":{},"vulnerabilities":[{"aliases":["CVE-2023-1"],"details":"d","fixed_in":["4.2.1"],
				"id":"PYSEC-2023-1","link":"https://osv.dev/PYSEC-2023-1","source":"osv","summary":null,"withdrawn":null},
				{"aliases":[],"details":"w","fixed_in":[],"id":"GHSA-x","link":"l","summary":"s","withdrawn":"2024-01-01T00:00:00Z"}]}`))
		case "/pypi/django/6.0.5/json":
			w.Write([]byte(`{"info":{},"vulnerabilities":[]}`))
		case "/pypi/django/1.0/json":
			w.Write([]byte(`{"info":{}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := testClient(srv, Options{})

	got, err := c.Vulnerabilities(context.Background(), "Django", "4.2.0")
	want := []Vuln{
		{ID: "PYSEC-2023-1", Aliases: []string{"CVE-2023-1"}, Details: "d", Link: "https://osv.dev/PYSEC-2023-1", FixedIn: []string{"4.2.1"}},
		{ID: "GHSA-x", Aliases: []string{}, Summary: "s", Details: "w", Link: "l", FixedIn: []string{}, Withdrawn: "2024-01-01T00:00:00Z"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Vulnerabilities(%q, %q) = %+v, %v, want %+v", "Django", "4.2.0", got, err, want)
	}

	got, err = c.Vulnerabilities(context.Background(), "django", "6.0.5")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Vulnerabilities(%q, %q) = %#v, %v, want an empty list", "django", "6.0.5", got, err)
	}

	for _, v := range []string{"5.0.6", "1.0"} { // 404, and a document without the field
		got, err = c.Vulnerabilities(context.Background(), "django", v)
		if !errors.Is(err, ErrNoVulnerabilityData) {
			t.Errorf("Vulnerabilities(%q, %q) = %v, %v, want ErrNoVulnerabilityData", "django", v, got, err)
		}
	}

	for _, v := range []string{"", "1/../2", "1?x"} {
		if _, err := c.Vulnerabilities(context.Background(), "django", v); err == nil {
			t.Errorf("Vulnerabilities(%q, %q) succeeded, want an invalid version error", "django", v)
		}
	}
}
