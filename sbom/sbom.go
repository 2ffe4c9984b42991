// Package sbom writes a software bill of materials of Bitpoll and its
// locked Python packages, as CycloneDX 1.6 JSON (through cyclonedx-go) or
// SPDX 2.3 JSON. It knows nothing of stores or locks: the caller fills a
// BOM from either, and ReadMetadata reads the licence fields of an
// installed package's METADATA.
package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/github/go-spdx/v2/spdxexp"
)

// BOM is what an SBOM says: the app and the packages it runs with.
type BOM struct {
	App      Component
	Packages []Component
	Created  time.Time
	Tool     string // "bitpoll-install 0.1.0"
	// Source says where the list came from, like "generation 3
	// (/opt/bitpoll/store/...)" or "lock bitpoll.lock, target cp313-x86_64".
	Source string
}

// Component is one package.
type Component struct {
	Name, Version string
	// File is the wheel or sdist it was installed from; SHA256 its hash,
	// URL where it is downloaded.
	File, SHA256, URL string
	// Commit and Tree pin a source tree by git ids (the app).
	Commit, Tree string
	License      License
}

// License is a package's declared licence: an SPDX expression when the
// metadata gives a valid one, else the metadata's free text, else nothing.
type License struct {
	Expression string
	Text       string
}

// Metadata is what ReadMetadata reads of a core metadata file.
type Metadata struct {
	Name, Version     string
	License           string // the License field, free text
	LicenseExpression string // PEP 639
	Classifiers       []string
}

// ReadMetadata reads the header fields of a METADATA file (RFC 822
// style; a line starting with white space continues the field before,
// and a blank line ends the headers).
func ReadMetadata(data []byte) (Metadata, error) {
	var m Metadata
	var key, val string
	flush := func() {
		val = strings.TrimSpace(val)
		switch strings.ToLower(key) {
		case "name":
			m.Name = val
		case "version":
			m.Version = val
		case "license":
			m.License = val
		case "license-expression":
			m.LicenseExpression = val
		case "classifier":
			m.Classifiers = append(m.Classifiers, val)
		}
		key, val = "", ""
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			val += "\n" + line
			continue
		}
		flush()
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return Metadata{}, fmt.Errorf("line %q is not \"Field: value\"", line)
		}
		key, val = k, v
	}
	flush()
	if m.Name == "" || m.Version == "" {
		return Metadata{}, fmt.Errorf("no Name or Version field")
	}
	return m, nil
}

// classifierIDs are the licence classifiers that name one SPDX licence
// unambiguously; "BSD License" or "Apache Software License" do not.
var classifierIDs = map[string]string{
	"License :: OSI Approved :: MIT License":                                  "MIT",
	"License :: OSI Approved :: MIT No Attribution License (MIT-0)":           "MIT-0",
	"License :: OSI Approved :: ISC License (ISCL)":                           "ISC",
	"License :: OSI Approved :: Python Software Foundation License":           "PSF-2.0",
	"License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)":         "MPL-2.0",
	"License :: OSI Approved :: The Unlicense (Unlicense)":                    "Unlicense",
	"License :: OSI Approved :: Zero-Clause BSD (0BSD)":                       "0BSD",
	"License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)":         "BSL-1.0",
	"License :: OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
}

// LicenseOf is the declared licence of m: License-Expression (PEP 639),
// else the License field when it is a valid SPDX expression, else the one
// licence its classifiers name unambiguously, else the License field's
// text. An expression that go-spdx does not accept is kept as text.
func LicenseOf(m Metadata) License {
	valid := func(e string) bool {
		if e == "" || strings.ContainsAny(e, "\n") || len(e) > 200 {
			return false
		}
		ok, _ := spdxexp.ValidateLicenses([]string{e})
		return ok
	}
	if valid(m.LicenseExpression) {
		return License{Expression: m.LicenseExpression}
	}
	if valid(m.License) {
		return License{Expression: m.License}
	}
	var ids []string
	for _, c := range m.Classifiers {
		if id, ok := classifierIDs[c]; ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 1 {
		return License{Expression: ids[0]}
	}
	text := strings.TrimSpace(m.LicenseExpression)
	if text == "" {
		text = strings.TrimSpace(m.License)
	}
	if text == "" {
		for _, c := range m.Classifiers {
			if strings.HasPrefix(c, "License :: ") {
				text = c
				break
			}
		}
	}
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = strings.TrimSpace(text[:i]) + " …" // the first line of a licence's full text
	}
	return License{Text: text}
}

var separators = regexp.MustCompile(`[-_.]+`)

// Normalize is a project name as PEP 503 spells it, and as purls of type
// pypi want it.
func Normalize(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}

// Purl is the package URL of c on PyPI, with its file when known.
func (c Component) Purl() string {
	p := "pkg:pypi/" + Normalize(c.Name) + "@" + url.PathEscape(c.Version)
	if c.File != "" {
		p += "?file_name=" + url.QueryEscape(c.File)
	}
	return p
}

func (b BOM) sorted() []Component {
	pkgs := append([]Component(nil), b.Packages...)
	sort.Slice(pkgs, func(i, j int) bool { return Normalize(pkgs[i].Name) < Normalize(pkgs[j].Name) })
	return pkgs
}

// CycloneDX returns b as CycloneDX 1.6 JSON.
func CycloneDX(b BOM) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidOf(b)
	app := cdxComponent(b.App, cdx.ComponentTypeApplication)
	app.PackageURL = "" // Bitpoll is not on PyPI
	if b.App.URL != "" {
		app.ExternalReferences = &[]cdx.ExternalReference{{URL: b.App.URL, Type: cdx.ERTypeVCS}}
	}
	var props []cdx.Property
	if b.App.Commit != "" {
		props = append(props, cdx.Property{Name: "bitpoll-install:git-commit", Value: b.App.Commit})
	}
	if b.App.Tree != "" {
		props = append(props, cdx.Property{Name: "bitpoll-install:git-tree", Value: b.App.Tree})
	}
	if b.Source != "" {
		props = append(props, cdx.Property{Name: "bitpoll-install:source", Value: b.Source})
	}
	if len(props) > 0 {
		app.Properties = &props
	}
	tool, toolVersion, _ := strings.Cut(b.Tool, " ")
	bom.Metadata = &cdx.Metadata{
		Timestamp: b.Created.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: tool, Version: toolVersion}}},
		Component: &app,
	}
	var comps []cdx.Component
	var deps []string
	for _, p := range b.sorted() {
		c := cdxComponent(p, cdx.ComponentTypeLibrary)
		comps = append(comps, c)
		deps = append(deps, c.BOMRef)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: app.BOMRef, Dependencies: &deps}}
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("write CycloneDX SBOM: %w", err)
	}
	return buf.Bytes(), nil
}

func cdxComponent(p Component, t cdx.ComponentType) cdx.Component {
	c := cdx.Component{
		BOMRef: p.Purl(), Type: t, Name: p.Name, Version: p.Version, PackageURL: p.Purl(),
	}
	if t == cdx.ComponentTypeApplication {
		c.BOMRef = "app:" + p.Name + "@" + p.Version
	}
	if p.SHA256 != "" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.SHA256}}
	}
	switch {
	case p.License.Expression != "":
		c.Licenses = &cdx.Licenses{{Expression: p.License.Expression}}
	case p.License.Text != "":
		c.Licenses = &cdx.Licenses{{License: &cdx.License{Name: p.License.Text}}}
	}
	if p.URL != "" && t == cdx.ComponentTypeLibrary {
		c.ExternalReferences = &[]cdx.ExternalReference{{URL: p.URL, Type: cdx.ERTypeDistribution}}
	}
	return c
}

// uuidOf is a version 5 style UUID of the BOM's content, so that the same
// input gives the same serial number.
func uuidOf(b BOM) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", b.App.Name, b.App.Version, b.Source, b.Created.UTC().Format(time.RFC3339))
	for _, p := range b.sorted() {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", p.Name, p.Version, p.SHA256)
	}
	s := h.Sum(nil)[:16]
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	x := hex.EncodeToString(s)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// SPDX returns b as an SPDX 2.3 JSON document.
func SPDX(b BOM) ([]byte, error) {
	type checksum struct {
		Algorithm     string `json:"algorithm"`
		ChecksumValue string `json:"checksumValue"`
	}
	type extRef struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		SPDXID           string     `json:"SPDXID"`
		Name             string     `json:"name"`
		Version          string     `json:"versionInfo,omitempty"`
		FileName         string     `json:"packageFileName,omitempty"`
		Download         string     `json:"downloadLocation"`
		FilesAnalyzed    bool       `json:"filesAnalyzed"`
		Checksums        []checksum `json:"checksums,omitempty"`
		LicenseConcluded string     `json:"licenseConcluded"`
		LicenseDeclared  string     `json:"licenseDeclared"`
		LicenseComments  string     `json:"licenseComments,omitempty"`
		Copyright        string     `json:"copyrightText"`
		ExternalRefs     []extRef   `json:"externalRefs,omitempty"`
		Comment          string     `json:"comment,omitempty"`
	}
	type rel struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}
	id := regexp.MustCompile(`[^A-Za-z0-9.-]+`)
	spdxPkg := func(prefix string, p Component) pkg {
		q := pkg{
			SPDXID: "SPDXRef-" + prefix + "-" + id.ReplaceAllString(Normalize(p.Name), "-"),
			Name:   p.Name, Version: p.Version, FileName: p.File, Download: "NOASSERTION",
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", Copyright: "NOASSERTION",
		}
		if p.URL != "" {
			q.Download = p.URL
		}
		if p.SHA256 != "" {
			q.Checksums = []checksum{{"SHA256", p.SHA256}}
		}
		if p.License.Expression != "" {
			q.LicenseDeclared = p.License.Expression
		} else if p.License.Text != "" {
			q.LicenseComments = "declared in the package metadata as: " + p.License.Text
		}
		return q
	}
	app := spdxPkg("App", b.App)
	app.FileName, app.Download = "", "NOASSERTION" // a local source's file: URL is no download location
	var comment []string
	if b.App.Commit != "" {
		comment = append(comment, "git commit "+b.App.Commit)
	}
	if b.App.Tree != "" {
		comment = append(comment, "git tree "+b.App.Tree)
	}
	if u := strings.TrimPrefix(b.App.URL, "git+"); strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		app.Download = "git+" + u
		if b.App.Commit != "" {
			app.Download += "@" + b.App.Commit
		}
	}
	app.Comment = strings.Join(comment, ", ")
	pkgs := []pkg{app}
	rels := []rel{{"SPDXRef-DOCUMENT", "DESCRIBES", app.SPDXID}}
	for _, p := range b.sorted() {
		q := spdxPkg("Package", p)
		q.ExternalRefs = []extRef{{"PACKAGE-MANAGER", "purl", p.Purl()}}
		pkgs = append(pkgs, q)
		rels = append(rels, rel{app.SPDXID, "DEPENDS_ON", q.SPDXID})
	}
	tool := strings.ReplaceAll(b.Tool, " ", "-")
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              b.App.Name + "-" + b.App.Version,
		"documentNamespace": "https://spdx.org/spdxdocs/" + url.PathEscape(b.App.Name+"-"+b.App.Version) + "-" + uuidOf(b),
		"creationInfo": map[string]any{
			"created":  b.Created.UTC().Format(time.RFC3339),
			"creators": []string{"Tool: " + tool},
			"comment":  b.Source,
		},
		"packages":      pkgs,
		"relationships": rels,
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("write SPDX SBOM: %w", err)
	}
	return append(out, '\n'), nil
}
