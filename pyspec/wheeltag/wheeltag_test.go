package wheeltag

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

var floor = Glibc{2, 28}

func TestParseGlibc(t *testing.T) {
	tests := []struct {
		in   string
		want Glibc
		ok   bool
	}{
		{"2.28", Glibc{2, 28}, true},
		{"2.5", Glibc{2, 5}, true},
		{"2.17", Glibc{2, 17}, true},
		{"2.4", Glibc{}, false},
		{"3.0", Glibc{}, false},
		{"2", Glibc{}, false},
		{"2.", Glibc{}, false},
		{"2.028", Glibc{}, false},
		{"2.28.1", Glibc{}, false},
		{"+2.28", Glibc{}, false},
		{"", Glibc{}, false},
	}
	for _, tt := range tests {
		got, err := ParseGlibc(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseGlibc(%q) = %v, %v, want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseGlibc(%q).String() = %q, want %q", tt.in, got.String(), tt.in)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{"cp313-x86_64", Target{13, "x86_64", floor}, ""},
		{"cp38-aarch64", Target{8, "aarch64", floor}, ""},
		{"cp399-aarch64", Target{99, "aarch64", floor}, ""},
		{"cp37-x86_64", Target{}, "want CPython 3.8 to 3.99"},
		{"cp3100-x86_64", Target{}, "want CPython 3.8 to 3.99"},
		{"cp313-arm64", Target{}, `unknown architecture "arm64"`},
		{"cp313-i686", Target{}, `unknown architecture "i686"`},
		{"py313-x86_64", Target{}, "want cp3<minor>-<arch>"},
		{"cp313", Target{}, "want cp3<minor>-<arch>"},
		{"cp313-x86_64-extra", Target{}, "unknown architecture"},
		{"cp3013-x86_64", Target{}, "want CPython"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in, floor)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
				t.Errorf("ParseTarget(%q) error = %v, want one naming the input and containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("ParseTarget(%q).String() = %q, want %q", tt.in, got.String(), tt.in)
		}
	}
}

func TestPlatforms(t *testing.T) {
	tests := []struct {
		target Target
		want   []string
	}{
		{Target{13, "aarch64", Glibc{2, 18}}, []string{"manylinux_2_18_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"}},
		{Target{13, "aarch64", Glibc{2, 12}}, nil},
		{Target{13, "x86_64", Glibc{2, 12}}, []string{
			"manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_11_x86_64", "manylinux_2_10_x86_64",
			"manylinux_2_9_x86_64", "manylinux_2_8_x86_64", "manylinux_2_7_x86_64", "manylinux_2_6_x86_64",
			"manylinux_2_5_x86_64", "manylinux1_x86_64"}},
	}
	for _, tt := range tests {
		if got := tt.target.Platforms(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v.Platforms() = %v, want %v", tt.target, got, tt.want)
		}
	}
}

func TestParseFilename(t *testing.T) {
	tests := []struct {
		in      string
		want    Filename
		wantErr string
	}{
		{"django-6.0.5-py3-none-any.whl", Filename{"django", "6.0.5", "", []Tag{{"py3", "none", "any"}}}, ""},
		{"Django_Crispy.Forms-2.1-py2.py3-none-any.whl", Filename{"django-crispy-forms", "2.1", "", []Tag{{"py2", "none", "any"}, {"py3", "none", "any"}}}, ""},
		{"psycopg_binary-3.2.3-1local-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", Filename{"psycopg-binary", "3.2.3", "1local",
			[]Tag{{"cp313", "cp313", "manylinux_2_17_x86_64"}, {"cp313", "cp313", "manylinux2014_x86_64"}}}, ""},
		{"cffi-1.17.1-CP313-CP313-Manylinux_2_17_X86_64.whl", Filename{"cffi", "1.17.1", "", []Tag{{"cp313", "cp313", "manylinux_2_17_x86_64"}}}, ""},
		{"x-1.0+local.1-py3-none-any.whl", Filename{"x", "1.0+local.1", "", []Tag{{"py3", "none", "any"}}}, ""},
		{"django-6.0.5.tar.gz", Filename{}, `ending in ".whl"`},
		{"django-6.0.5-py3-any.whl", Filename{}, "<name>-<version>"},
		{"django-6.0.5-1-2-py3-none-any.whl", Filename{}, "<name>-<version>"},
		{"dj__ango-6.0.5-py3-none-any.whl", Filename{}, "project name"},
		{"_django-6.0.5-py3-none-any.whl", Filename{}, "project name"},
		{"-6.0.5-py3-none-any.whl", Filename{}, "project name"},
		{"django-6 0-py3-none-any.whl", Filename{}, "version"},
		{"django--py3-none-any.whl", Filename{}, "version"},
		{"django-6.0-x1-py3-none-any.whl", Filename{}, "build tag"},
		{"django-6.0-py3..py2-none-any.whl", Filename{}, "empty or invalid"},
		{"django-6.0-py3-none-.whl", Filename{}, "empty or invalid"},
	}
	for _, tt := range tests {
		got, err := ParseFilename(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
				t.Errorf("ParseFilename(%q) error = %v, want one naming the file and containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFilename(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestRank(t *testing.T) {
	x86 := Target{13, "x86_64", floor}
	arm := Target{12, "aarch64", floor}
	tests := []struct {
		target Target
		file   string
		ok     bool
	}{
		{x86, "a-1-py3-none-any.whl", true},
		{x86, "a-1-cp313-cp313-manylinux_2_28_x86_64.whl", true},
		{x86, "a-1-cp313-cp313-manylinux_2_34_x86_64.whl", false}, // above the floor
		{x86, "a-1-cp313-cp313-linux_x86_64.whl", false},          // not portable
		{x86, "a-1-cp313-cp313-musllinux_1_2_x86_64.whl", false},
		{x86, "a-1-cp312-cp312-manylinux2014_x86_64.whl", false},
		{x86, "a-1-cp39-abi3-manylinux1_x86_64.whl", true},
		{x86, "a-1-cp313-cp313t-manylinux_2_17_x86_64.whl", false},
		{x86, "a-1-cp313-cp313-manylinux_2_17_aarch64.whl", false},
		{x86, "a-1-py2-none-any.whl", false},
		{x86, "a-1-cp313-cp313-win_amd64.whl", false},
		{arm, "a-1-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", true},
		{arm, "a-1-cp312-cp312-manylinux_2_5_aarch64.whl", false},
		{arm, "a-1-cp313-cp313-manylinux_2_17_aarch64.whl", false},
	}
	for _, tt := range tests {
		f, err := ParseFilename(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tt.target.Rank(f); ok != tt.ok {
			t.Errorf("%v.Rank(%q) ok = %v, want %v", tt.target, tt.file, ok, tt.ok)
		}
	}

	// Better wheels rank lower.
	order := []string{
		"a-1-cp313-cp313-manylinux_2_28_x86_64.whl",
		"a-1-cp313-cp313-manylinux_2_17_x86_64.whl",
		"a-1-cp313-cp313-manylinux1_x86_64.whl",
		"a-1-cp313-abi3-manylinux_2_28_x86_64.whl",
		"a-1-cp39-abi3-manylinux_2_17_x86_64.whl",
		"a-1-py3-none-manylinux_2_17_x86_64.whl",
		"a-1-cp313-none-any.whl",
		"a-1-py313-none-any.whl",
		"a-1-py3-none-any.whl",
		"a-1-py30-none-any.whl",
	}
	prev := -1
	for _, fn := range order {
		f, err := ParseFilename(fn)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := x86.Rank(f)
		if !ok || r <= prev {
			t.Errorf("%v.Rank(%q) = %d, %v, want ok and more than %d", x86, fn, r, ok, prev)
		}
		prev = r
	}
}

func TestIsSdist(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"django-6.0.5.tar.gz", true},
		{"uwsgi-2.0.28.zip", true},
		{"django-6.0.5-py3-none-any.whl", false},
		{"x-1.tar.bz2", false},
		{"x-1.tar", false},
	}
	for _, tt := range tests {
		if got := IsSdist(tt.in); got != tt.want {
			t.Errorf("IsSdist(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// pythonTags is a script printing, one per line, the tags packaging.tags
// would give CPython 3.<minor> on a glibc-<floor> Linux <arch> machine,
// leaving out plain linux_<arch>.
const pythonTags = `
import sys
from packaging import tags, _manylinux
minor, arch, gmaj, gmin = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
_manylinux._get_glibc_version = lambda: (gmaj, gmin)
_manylinux._have_compatible_abi = lambda executable, archs: True
_manylinux._get_manylinux_module = lambda: None
plats = list(_manylinux.platform_tags([arch]))
cp = "cp3%d" % minor
for t in tags.cpython_tags((3, minor), abis=[cp], platforms=plats):
    print(t)
for t in tags.compatible_tags((3, minor), interpreter=cp, platforms=plats):
    print(t)
`

func TestTagsMatchPackaging(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 not found; install it with the packaging library to compare tags")
	}
	if err := exec.Command(py, "-c", "import packaging.tags, packaging._manylinux").Run(); err != nil {
		testenv.Skip(t, "python3 has no packaging library (pip install packaging) to compare tags with")
	}
	targets := []Target{
		{13, "x86_64", Glibc{2, 28}},
		{11, "aarch64", Glibc{2, 28}},
		{14, "aarch64", Glibc{2, 17}},
		{12, "x86_64", Glibc{2, 17}},
		{8, "x86_64", Glibc{2, 5}},
		{10, "aarch64", Glibc{2, 12}},
		{99, "x86_64", Glibc{2, 39}},
	}
	for _, tg := range targets {
		out, err := exec.Command(py, "-c", pythonTags, fmt.Sprint(tg.Minor), tg.Arch,
			fmt.Sprint(tg.Glibc.Major), fmt.Sprint(tg.Glibc.Minor)).Output()
		if err != nil {
			t.Fatalf("python3 tags for %v (glibc %v): %v", tg, tg.Glibc, err)
		}
		var want []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			want = append(want, sc.Text())
		}
		var got []string
		for _, tag := range tg.Tags() {
			got = append(got, tag.String())
		}
		if len(got) != len(want) {
			t.Errorf("%v (glibc %v).Tags() has %d tags, packaging has %d", tg, tg.Glibc, len(got), len(want))
		}
		for i := 0; i < len(got) && i < len(want); i++ {
			if got[i] != want[i] {
				t.Errorf("%v (glibc %v).Tags()[%d] = %q, want %q", tg, tg.Glibc, i, got[i], want[i])
				break
			}
		}
	}
}

func FuzzParseFilename(f *testing.F) {
	for _, s := range []string{
		"django-6.0.5-py3-none-any.whl",
		"psycopg_binary-3.2.3-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		"a-1-py2.py3-none-any.whl",
		"a-1-py3-none-.whl",
		"a.whl",
	} {
		f.Add(s)
	}
	tg := Target{13, "x86_64", floor}
	f.Fuzz(func(t *testing.T, s string) {
		fn, err := ParseFilename(s)
		if err != nil {
			return
		}
		if fn.Name == "" || fn.Version == "" || len(fn.Tags) == 0 {
			t.Fatalf("ParseFilename(%q) = %+v with an empty part", s, fn)
		}
		if fn.Name != NormalizeName(fn.Name) {
			t.Fatalf("ParseFilename(%q).Name = %q, not normalised", s, fn.Name)
		}
		if r, ok := tg.Rank(fn); ok {
			if tags := tg.Tags(); !containsAny(fn.Tags, tags[r]) {
				t.Fatalf("Rank(%q) = %d (%v), not one of its tags", s, r, tags[r])
			}
		}
	})
}

func containsAny(tags []Tag, t Tag) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}
