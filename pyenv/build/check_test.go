package build

import (
	"testing"

	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

func TestCompatible(t *testing.T) {
	target := wheeltag.Target{Minor: 13, Arch: "x86_64", Glibc: wheeltag.Glibc{Major: 2, Minor: 28}}
	tests := []struct {
		wheel string
		want  bool
	}{
		{"a-1-py3-none-any.whl", true},
		{"a-1-cp313-cp313-manylinux_2_17_x86_64.whl", true},
		{"a-1-cp313-cp313-linux_x86_64.whl", true}, // a local build
		{"a-1-cp310-abi3-linux_x86_64.whl", true},
		{"a-1-cp313-cp313-linux_aarch64.whl", false},
		{"a-1-cp312-cp312-linux_x86_64.whl", false},
		{"a-1-cp313-cp313-manylinux_2_34_x86_64.whl", false}, // newer than the glibc floor
		{"a-1-cp313-cp313-win_amd64.whl", false},
		{"a-1-py2-none-any.whl", false},
	}
	for _, tt := range tests {
		fn, err := wheeltag.ParseFilename(tt.wheel)
		if err != nil {
			t.Fatal(err)
		}
		if got := compatible(fn, target); got != tt.want {
			t.Errorf("compatible(%q, %s) = %v, want %v", tt.wheel, target, got, tt.want)
		}
	}
}
