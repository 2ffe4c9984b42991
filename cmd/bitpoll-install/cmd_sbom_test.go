package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
)

// The validators, from PyPI, installed once into a cached venv.
const sbomValidatorReqs = "cyclonedx-python-lib[json-validation]==11.12.0 spdx-tools==0.8.5"

var validatorsOnce sync.Mutex

// sbomValidators returns the bin directory of a venv with
// cyclonedx-python-lib (and its JSON schema validator) and spdx-tools,
// making it on first use; without PyPI it skips (fails with CI=true).
func sbomValidators(t *testing.T) string {
	t.Helper()
	validatorsOnce.Lock()
	defer validatorsOnce.Unlock()
	cache, err := os.UserCacheDir()
	if err != nil {
		testenv.Skipf(t, "no cache directory for the SBOM validators' venv: %v", err)
	}
	venv := filepath.Join(cache, "bitpoll-install-test", "sbom-validators")
	bin := filepath.Join(venv, "bin")
	stamp := filepath.Join(venv, "installed")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == sbomValidatorReqs {
		return bin
	}
	testenv.NeedPyPI(t, "installs the SBOM validators (cyclonedx-python-lib, spdx-tools) from PyPI")
	it := testkit.HostPython(t)
	_ = os.RemoveAll(venv)
	if out, err := exec.Command(it.Path, "-m", "venv", venv).CombinedOutput(); err != nil {
		t.Fatalf("make the validators' venv: %v\n%s", err, out)
	}
	args := append([]string{"-m", "pip", "install", "-q"}, strings.Fields(sbomValidatorReqs)...)
	if out, err := exec.Command(filepath.Join(bin, "python"), args...).CombinedOutput(); err != nil {
		_ = os.RemoveAll(venv)
		t.Fatalf("pip install %s: %v\n%s", sbomValidatorReqs, err, out)
	}
	// Written last: a venv without it is made anew.
	if err := os.WriteFile(stamp, []byte(sbomValidatorReqs), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin
}

// cdxValidate is cyclonedx-python-lib's strict JSON schema validation of
// a CycloneDX 1.6 document; it prints the error, if any.
const cdxValidate = `import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if err is not None:
    print(err)
    sys.exit(1)
`

// validateSBOM runs the real validator of format on path.
func validateSBOM(t *testing.T, bin, format, path string) {
	t.Helper()
	var cmd *exec.Cmd
	if format == "cyclonedx" {
		cmd = exec.Command(filepath.Join(bin, "python"), "-c", cdxValidate, path)
	} else {
		cmd = exec.Command(filepath.Join(bin, "pyspdxtools"), "-i", path)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Errorf("%s does not validate %s: %v\n%s\ndocument:\n%.3000s", cmd.Args[0], path, err, out, data)
	}
}

// sbomPackages reads the packages of an SBOM: name → the fields the
// tests look at.
type sbomPackage struct{ version, purl, sha256, license string }

func sbomPackages(t *testing.T, format, path string) map[string]sbomPackage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sbomPackage{}
	if format == "cyclonedx" {
		var doc struct {
			Components []struct {
				Name, Version, Purl string
				Hashes              []struct{ Alg, Content string }
				Licenses            []struct {
					Expression string
					License    struct{ Name string }
				}
			}
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, c := range doc.Components {
			p := sbomPackage{version: c.Version, purl: c.Purl}
			for _, h := range c.Hashes {
				if h.Alg == "SHA-256" {
					p.sha256 = h.Content
				}
			}
			for _, l := range c.Licenses {
				p.license = l.Expression + l.License.Name
			}
			out[c.Name] = p
		}
		return out
	}
	var doc struct {
		Packages []struct {
			Name, VersionInfo, LicenseDeclared string
			Checksums                          []struct{ Algorithm, ChecksumValue string }
			ExternalRefs                       []struct{ ReferenceType, ReferenceLocator string }
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Packages {
		p := sbomPackage{version: c.VersionInfo, license: c.LicenseDeclared}
		for _, h := range c.Checksums {
			p.sha256 = h.ChecksumValue
		}
		for _, r := range c.ExternalRefs {
			if r.ReferenceType == "purl" {
				p.purl = r.ReferenceLocator
			}
		}
		out[c.Name] = p
	}
	return out
}

// TestSBOMOfLock writes both formats of a lock's SBOM and validates them.
func TestSBOMOfLock(t *testing.T) {
	bin := sbomValidators(t)
	dir := t.TempDir()
	l := smallLock()
	l.App.URL = "https://github.com/fsinfuhh/Bitpoll.git" // the validator wants a real domain
	lock := writeLock(t, dir, l)
	for _, format := range []string{"cyclonedx", "spdx"} {
		out := filepath.Join(dir, "bom."+format+".json")
		r := runCLI(t, "sbom", "--lock", lock, "--target", "cp312-x86_64", "--format", format, "-o", out)
		if r.code != exitOK {
			t.Fatalf("sbom --lock --format %s = exit %d\n%s", format, r.code, r.stderr)
		}
		validateSBOM(t, bin, format, out)
		pkgs := sbomPackages(t, format, out)
		// cp312 needs tzdata (its marker) and no build-only setuptools.
		want := map[string]string{
			"django":         "pkg:pypi/django@6.0.5?file_name=django-6.0.5-py3-none-any.whl",
			"psycopg-binary": "pkg:pypi/psycopg-binary@3.2.3?file_name=psycopg_binary-3.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
			"tzdata":         "pkg:pypi/tzdata@2025.1?file_name=tzdata-2025.1-py2.py3-none-any.whl",
		}
		for name, purl := range want {
			if p := pkgs[name]; p.purl != purl || p.sha256 == "" {
				t.Errorf("%s SBOM of the lock: %s = %+v, want purl %s and a sha256", format, name, p, purl)
			}
		}
		if _, ok := pkgs["setuptools"]; ok {
			t.Errorf("%s SBOM of the lock lists the build-only setuptools", format)
		}
	}
	if r := runCLI(t, "sbom", "--lock", lock); r.code != exitUsage || !strings.Contains(r.stderr, "--target is required") {
		t.Errorf("sbom --lock of a two-target lock without --target = exit %d, %q, want a usage error asking for --target", r.code, r.stderr)
	}
	if r := runCLI(t, "sbom", "--format", "xml", "--lock", lock); r.code != exitUsage {
		t.Errorf("sbom --format xml = exit %d, want usage error", r.code)
	}
}

// TestSBOMOfGeneration installs the fixture app with --root and checks
// that the SBOM of the current generation validates in both formats, and
// lists every installed package with its wheel's hash and the licence of
// its METADATA.
func TestSBOMOfGeneration(t *testing.T) {
	bin := sbomValidators(t)
	e := newGenEnv(t)
	e.must(append([]string{"install"}, e.version(testkit.FixtureApp(), "1.0.0")...)...)
	sp := e.meta(1).StorePath
	var man storeManifest
	data, err := os.ReadFile(filepath.Join(sp, "bitpoll-store.json"))
	if err == nil {
		err = json.Unmarshal(data, &man)
	}
	if err != nil || len(man.Pkgs) == 0 {
		t.Fatalf("store manifest: %v, %d packages", err, len(man.Pkgs))
	}
	for _, format := range []string{"cyclonedx", "spdx"} {
		out := filepath.Join(t.TempDir(), "bom.json")
		e.must("sbom", "--format", format, "-o", out)
		validateSBOM(t, bin, format, out)
		pkgs := sbomPackages(t, format, out)
		for _, p := range man.Pkgs {
			got, ok := pkgs[p.Name]
			if !ok || got.version != p.Version || got.sha256 != p.SHA256 || !strings.HasPrefix(got.purl, "pkg:pypi/") {
				t.Errorf("%s SBOM: %s = %+v, %v, want version %s, sha256 %s and a purl", format, p.Name, got, ok, p.Version, p.SHA256)
			}
		}
		// Django declares BSD-3-Clause in its METADATA (License-Expression
		// since 5.2, the License field before); gunicorn MIT.
		for name, want := range map[string]string{"django": "BSD-3-Clause", "gunicorn": "MIT"} {
			if got := pkgs[name].license; got != want {
				t.Errorf("%s SBOM: licence of %s = %q, want %q (from its METADATA)", format, name, got, want)
			}
		}
	}
}
