package sbom

import "testing"

func TestLicenseOf(t *testing.T) {
	for _, tt := range []struct {
		meta string
		want License
	}{
		{"Name: a\nVersion: 1\nLicense-Expression: BSD-3-Clause\nLicense: BSD\n", License{Expression: "BSD-3-Clause"}},
		{"Name: a\nVersion: 1\nLicense: MIT\n", License{Expression: "MIT"}},
		{"Name: a\nVersion: 1\nLicense: Apache-2.0 OR MIT\n", License{Expression: "Apache-2.0 OR MIT"}},
		{"Name: a\nVersion: 1\nClassifier: License :: OSI Approved :: MIT License\n", License{Expression: "MIT"}},
		// "BSD License" names no one SPDX licence: kept as text.
		{"Name: a\nVersion: 1\nClassifier: License :: OSI Approved :: BSD License\n", License{Text: "License :: OSI Approved :: BSD License"}},
		{"Name: a\nVersion: 1\nLicense: Copyright (c) Someone\n        All rights reserved.\n", License{Text: "Copyright (c) Someone …"}},
		{"Name: a\nVersion: 1\nLicense-Expression: Not-A-Licence\n", License{Text: "Not-A-Licence"}},
		{"Name: a\nVersion: 1\n\nLicense: MIT (in the description, not a header)\n", License{}},
	} {
		m, err := ReadMetadata([]byte(tt.meta))
		if err != nil {
			t.Fatalf("ReadMetadata(%q) = %v", tt.meta, err)
		}
		if got := LicenseOf(m); got != tt.want {
			t.Errorf("LicenseOf(%q) = %+v, want %+v", tt.meta, got, tt.want)
		}
	}
	if _, err := ReadMetadata([]byte("Version: 1\n")); err == nil {
		t.Error("ReadMetadata without Name = nil error, want one")
	}
}

func TestPurl(t *testing.T) {
	c := Component{Name: "Psycopg_Binary", Version: "3.2.3", File: "psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_x86_64.whl"}
	if got, want := c.Purl(), "pkg:pypi/psycopg-binary@3.2.3?file_name=psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_x86_64.whl"; got != want {
		t.Errorf("Purl() = %s, want %s", got, want)
	}
}
