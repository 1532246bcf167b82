/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	for _, s := range []string{"v0.2.0", "v1.0.0", "v10.20.30", "v0.3.0-rc.1", "v1.0.0-alpha.beta.1", "v1.0.0-0.3.7",
		"v1.0.0-x-y-z.--", "v0.0.0-release-check"} {
		v, err := parseVersion(s)
		if err != nil {
			t.Errorf("parseVersion(%q): %v", s, err)
			continue
		}
		if v.tag != s || v.chart() != s[1:] {
			t.Errorf("parseVersion(%q) = %+v, chart %q", s, v, v.chart())
		}
	}
	for s, want := range map[string]string{
		"":                                      "VERSION is not set",
		"0.2.0":                                 "no leading v: use v0.2.0",
		"v0.2":                                  "not a release version",
		"V0.2.0":                                "not a release version",
		"v01.2.3":                               "not a release version",
		"v0.2.0-":                               "not a release version",
		"v0.2.0-01":                             "not a release version",
		"v0.2.0-rc..1":                          "not a release version",
		"v0.2.0 ":                               "not a release version",
		"v0.2.0+build1":                         "build metadata",
		"latest":                                "not a release version",
		"v" + strings.Repeat("1", 130) + ".0.0": "longer than an image tag",
	} {
		_, err := parseVersion(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseVersion(%q) = %v, want an error containing %q", s, err, want)
		}
	}
}

func TestCompareFollowsSemver(t *testing.T) {
	// The precedence example of semver.org, item 11.
	ordered := []string{"v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta", "v1.0.0-beta.2",
		"v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1", "v1.1.0", "v2.0.0"}
	for i := range ordered {
		for j := range ordered {
			a, _ := parseVersion(ordered[i])
			b, _ := parseVersion(ordered[j])
			if got, want := a.compare(b), sign(i-j); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

const changelogFixture = `# Changelog

All notable changes.

## [Unreleased]

### Added

- Something new.

## [0.2.0] - 2026-12-02

### Added

- The release workflow.

` + "```sh\n## [9.9.9] - not a heading inside a code block\n```" + `

## [0.1.0] - 2026-11-27

- First release.

[Unreleased]: https://github.com/budgetgate/budgetgate/compare/v0.2.0...HEAD
[0.2.0]: https://github.com/budgetgate/budgetgate/releases/tag/v0.2.0
[0.1.0]: https://github.com/budgetgate/budgetgate/releases/tag/v0.1.0
`

func TestChangelogNotes(t *testing.T) {
	sections := parseChangelog(changelogFixture)
	if err := checkChangelog(sections, "CHANGELOG.md"); err != nil {
		t.Fatalf("checkChangelog: %v", err)
	}
	v, _ := parseVersion("v0.2.0")
	notes, err := notesFor(sections, "CHANGELOG.md", v)
	if err != nil {
		t.Fatal(err)
	}
	want := "### Added\n\n- The release workflow.\n\n```sh\n## [9.9.9] - not a heading inside a code block\n```"
	if notes != want {
		t.Errorf("notes of v0.2.0 = %q, want %q", notes, want)
	}
	v, _ = parseVersion("v0.1.0")
	if notes, _ := notesFor(sections, "CHANGELOG.md", v); notes != "- First release." {
		t.Errorf("notes of v0.1.0 = %q: link references must not be part of the last section", notes)
	}
	v, _ = parseVersion("v0.3.0")
	_, err = notesFor(sections, "CHANGELOG.md", v)
	for _, want := range []string{`has no "## [0.3.0]" section`, `"## [0.3.0] - YYYY-MM-DD"`, `"## [Unreleased]"`, "tag v0.3.0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("notes of a missing version: %v, want %q", err, want)
		}
	}
	if latest, _ := latestEntry(sections); latest.name != "0.2.0" {
		t.Errorf("latest entry = %q, want 0.2.0", latest.name)
	}
	if latest, _ := latestEntry(parseChangelog("## [Unreleased]\n\n- x\n")); latest.name != unreleased {
		t.Errorf("latest entry before any release = %q, want Unreleased", latest.name)
	}
}

func TestChangelogNotesOfEmptySection(t *testing.T) {
	v, _ := parseVersion("v0.2.0")
	_, err := notesFor(parseChangelog("## [Unreleased]\n\n## [0.2.0] - 2026-12-02\n\n[0.2.0]: https://x\n"), "C.md", v)
	if err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("notes of an empty section: %v", err)
	}
}

func TestCheckChangelogFindsMistakes(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"no sections":       {"# Changelog\n", "no \"## [...]\" sections"},
		"unreleased later":  {"## [0.1.0] - 2026-01-01\n\n- a\n\n## [Unreleased]\n", "the first section must be"},
		"no date":           {"## [Unreleased]\n\n## [0.1.0]\n\n- a\n", "YYYY-MM-DD"},
		"bad date":          {"## [Unreleased]\n\n## [0.1.0] - 2026-13-01\n\n- a\n", "month out of range"},
		"not semver":        {"## [Unreleased]\n\n## [0.1] - 2026-01-01\n\n- a\n", "not a release version"},
		"twice":             {"## [Unreleased]\n\n## [0.1.0] - 2026-01-02\n\n- a\n\n## [0.1.0] - 2026-01-01\n\n- b\n", "again"},
		"oldest first":      {"## [Unreleased]\n\n## [0.1.0] - 2026-01-01\n\n- a\n\n## [0.2.0] - 2026-01-02\n\n- b\n", "newest first"},
		"empty release":     {"## [Unreleased]\n\n## [0.1.0] - 2026-01-01\n\n## [0.0.1] - 2025-01-01\n\n- a\n", "is empty"},
		"heading no braces": {"## [Unreleased]\n\n## 0.1.0 - 2026-01-01\n\n- a\n", "want \"## [X.Y.Z] - YYYY-MM-DD\""},
	} {
		err := checkChangelog(parseChangelog(tc.text), "CHANGELOG.md")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: checkChangelog = %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestTheRepositoryChangelog(t *testing.T) {
	text, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := parseChangelog(string(text))
	if err := checkChangelog(sections, "CHANGELOG.md"); err != nil {
		t.Fatal(err)
	}
	if latest, ok := latestEntry(sections); !ok || latest.body == "" {
		t.Fatalf("CHANGELOG.md: the latest entry is empty")
	}
}

const valuesFixture = `# Default values.
nameOverride: ""

image:
  # -- Manager image repository.
  repository: budgetgate
  # -- Tag.
  tag: ""
  # -- Digest.
  digest: ""
  nested:
    repository: not-this-one

sidecar:
  image:
    repository: nor-this-one
    digest: ""
`

func TestSetChartImage(t *testing.T) {
	got, err := setChartImage([]byte(valuesFixture), "ghcr.io/budgetgate/manager", "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(strings.Replace(valuesFixture, "  repository: budgetgate\n",
		"  repository: ghcr.io/budgetgate/manager\n", 1), "  digest: \"\"\n  nested", "  digest: \"sha256:abc\"\n  nested", 1)
	if string(got) != want {
		t.Errorf("setChartImage:\n%s\nwant:\n%s", got, want)
	}
	if _, err := setChartImage([]byte("image:\n  repository: x\n"), "r", "d"); err == nil ||
		!strings.Contains(err.Error(), "no image.digest") {
		t.Errorf("values without image.digest: %v", err)
	}
	if _, err := setChartImage([]byte("images:\n  repository: x\n"), "r", "d"); err == nil {
		t.Error("values without image: no error")
	}
}

func TestCheckOnlyImageDiffers(t *testing.T) {
	const img = "ghcr.io/budgetgate/manager@sha256:f00"
	unpinned := "kind: Deployment\nspec:\n  containers:\n  - image: budgetgate:latest\n    name: manager\n"
	pinned := strings.Replace(unpinned, "budgetgate:latest", img, 1)
	if err := checkOnlyImageDiffers([]byte(unpinned), []byte(pinned), img); err != nil {
		t.Errorf("pinned image only: %v", err)
	}
	for name, other := range map[string]string{
		"nothing changed":   unpinned,
		"another line":      strings.Replace(pinned, "name: manager", "name: other", 1),
		"a line more":       pinned + "x: y\n",
		"another image":     strings.Replace(unpinned, "budgetgate:latest", "ghcr.io/budgetgate/manager:v0.2.0", 1),
		"a second image":    pinned + "  - image: busybox\n",
		"wrong digest form": strings.Replace(unpinned, "budgetgate:latest", img+"x", 1),
	} {
		if err := checkOnlyImageDiffers([]byte(unpinned), []byte(other), img); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if got := imageValues([]byte("  image: \"a@sha256:1\"\n  image: 'b'\n  imagePullPolicy: x\n")); fmt.Sprint(got) != "[a@sha256:1 b]" {
		t.Errorf("imageValues = %q", got)
	}
}

// tgz writes a chart archive as helm package does: gzip with helm's extra
// field and comment, entries stamped with mtime.
func tgz(t *testing.T, mtime time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Extra = []byte("+aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=")
	zw.Comment = "Helm"
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, body string }{
		{"budgetgate/Chart.yaml", "name: budgetgate\nversion: 0.2.0\n"},
		{"budgetgate/values.yaml", "image: {}\n"},
		{"budgetgate/templates/deployment.yaml", "kind: Deployment\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestNormalizeTgzIsReproducible(t *testing.T) {
	epoch := time.Unix(1796216161, 0)
	a, err := normalizeTgz(tgz(t, time.Now()), epoch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := normalizeTgz(tgz(t, time.Now().Add(-time.Hour)), epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("archives packaged at different times differ after normalizeTgz")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Comment != "Helm" || string(zr.Extra) != "+aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header = %+v, want helm's comment and extra, no time", zr.Header)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		if !h.ModTime.Equal(epoch) || h.Mode != 0o644 || int64(len(body)) != h.Size {
			t.Errorf("%s: mtime %v mode %o size %d/%d", h.Name, h.ModTime, h.Mode, len(body), h.Size)
		}
	}
	if got := strings.Join(names, " "); got != "budgetgate/Chart.yaml budgetgate/values.yaml budgetgate/templates/deployment.yaml" {
		t.Errorf("entries = %s, want helm's order", got)
	}
}

const sbomFixture = `{
  "bomFormat": "CycloneDX",
  "specVersion": "1.6",
  "serialNumber": "urn:uuid:00000000-0000-8000-8000-000000000000",
  "version": 1,
  "metadata": {
    "tools": [{"name": "cyclonedx-gomod"}],
    "component": {"name": "github.com/budgetgate/budgetgate", "purl": "pkg:golang/x?a=1\u0026b=2"},
    "properties": [{"name": "other", "value": "kept"}, {"name": "budgetgate:image:digest", "value": "old"}]
  },
  "components": [{"name": "b"}, {"name": "a"}]
}`

func TestAnnotateSBOM(t *testing.T) {
	s := sbomSpec{repository: "ghcr.io/budgetgate/manager", tag: "v0.2.0", index: "sha256:1111",
		platform: platformManifest{platform: "linux/arm64", digest: "sha256:2222"}, commit: "abc"}
	ts := time.Unix(1796216161, 0)
	out, err := annotateSBOM([]byte(sbomFixture), ts, s.properties())
	if err != nil {
		t.Fatal(err)
	}
	again, err := annotateSBOM(out, ts, s.properties())
	if err != nil || !bytes.Equal(out, again) {
		t.Errorf("annotating twice changes the SBOM (%v):\n%s\n%s", err, out, again)
	}
	var doc struct {
		Metadata struct {
			Timestamp  string     `json:"timestamp"`
			Properties []property `json:"properties"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Metadata.Timestamp != "2026-12-02T12:56:01Z" {
		t.Errorf("timestamp = %q", doc.Metadata.Timestamp)
	}
	got := map[string]string{}
	for _, p := range doc.Metadata.Properties {
		got[p.Name] = p.Value
	}
	for k, v := range map[string]string{
		"other":                            "kept",
		"budgetgate:image:reference":       "ghcr.io/budgetgate/manager:v0.2.0@sha256:1111",
		"budgetgate:image:digest":          "sha256:1111",
		"budgetgate:image:platform":        "linux/arm64",
		"budgetgate:image:platform-digest": "sha256:2222",
		"budgetgate:image:purl":            "pkg:oci/manager@sha256%3A1111?repository_url=ghcr.io/budgetgate/manager&tag=v0.2.0",
		"budgetgate:source:commit":         "abc",
	} {
		if got[k] != v {
			t.Errorf("property %s = %q, want %q", k, got[k], v)
		}
	}
	if len(doc.Metadata.Properties) != 7 {
		t.Errorf("%d properties, want 7: %v", len(doc.Metadata.Properties), doc.Metadata.Properties)
	}
	// Field order is kept: bomFormat first, metadata's timestamp first, components as they were.
	order := regexp.MustCompile(`(?s)^\{\n  "bomFormat".*"metadata": \{\n    "timestamp".*"tools".*"component".*` +
		`"properties".*"components": \[\n    \{\n      "name": "b"`)
	if !order.Match(out) {
		t.Errorf("field order changed:\n%s", out)
	}
}

func TestSerialIsADerivedUUID(t *testing.T) {
	s := sbomSpec{repository: "ghcr.io/budgetgate/manager", index: "sha256:1",
		platform: platformManifest{platform: "linux/amd64", digest: "sha256:2"}}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	first, second := s.serial(), s.serial()
	if !uuid.MatchString(first) || first != second {
		t.Errorf("serial %q is not a stable UUID of version 8", s.serial())
	}
	other := s
	other.platform.platform = "linux/arm64"
	if other.serial() == s.serial() {
		t.Error("two platforms' SBOMs have the same serial")
	}
}

// ociTar writes an OCI layout tar as hack/image does, with the image index
// blob (optionally corrupted).
func ociTar(t *testing.T, corrupt bool) (string, string) {
	t.Helper()
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaa","size":1,` +
		`"platform":{"architecture":"amd64","os":"linux"}},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbb","size":1,` +
		`"platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}`)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(index))
	top := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,`+
		`"annotations":{"io.containerd.image.name":"ghcr.io/budgetgate/manager:v0.2.0"}}]}`,
		mediaTypeOCIIndex, digest, len(index))
	if corrupt {
		index = append(index, ' ')
	}
	file := filepath.Join(t.TempDir(), "manager.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for name, body := range map[string][]byte{"index.json": []byte(top), "oci-layout": []byte(`{}`),
		"blobs/sha256/" + strings.TrimPrefix(digest, "sha256:"): index} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return file, digest
}

func TestReadOCIArchive(t *testing.T) {
	file, digest := ociTar(t, false)
	a, err := readOCIArchive(file)
	if err != nil {
		t.Fatal(err)
	}
	if a.name != "ghcr.io/budgetgate/manager:v0.2.0" || a.digest != digest ||
		fmt.Sprint(a.platforms) != "[{linux/amd64 sha256:aaaa} {linux/arm/v7 sha256:bbbb}]" {
		t.Errorf("readOCIArchive = %+v", a)
	}
	file, _ = ociTar(t, true)
	if _, err := readOCIArchive(file); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("corrupted index: %v", err)
	}
}

func TestWriteSumsAndNotes(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.txt": "b\n", "a.txt": "a\n", sumsFile: "stale\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := writeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x  a.txt\n%x  b.txt\n", sha256.Sum256([]byte("a\n")), sha256.Sum256([]byte("b\n")))
	if string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}

	v, _ := parseVersion("v0.2.0")
	in := notesInput{v: v, changes: "### Added\n\n- x", chart: "budgetgate-0.2.0.tgz", chartRepo: "oci://ghcr.io/budgetgate/charts",
		sourceURL: "https://github.com/budgetgate/budgetgate", commit: "abc", goVersion: "go1.26.8", epoch: 1,
		images: []releasedImage{{repository: "ghcr.io/budgetgate/manager", archive: ociArchive{digest: "sha256:1",
			platforms: []platformManifest{{"linux/amd64", "sha256:2"}, {"linux/arm64", "sha256:3"}}}}}}
	notes := releaseNotes(in)
	for _, s := range []string{"### Added\n\n- x\n\n## Artifacts", "for linux/amd64, linux/arm64",
		"- `ghcr.io/budgetgate/manager:v0.2.0@sha256:1`", "releases/download/v0.2.0/install.yaml",
		"oci://ghcr.io/budgetgate/charts/budgetgate --version 0.2.0",
		"(also attached as `budgetgate-0.2.0.tgz`)", "commit `abc` with go1.26.8"} {
		if !strings.Contains(notes, s) {
			t.Errorf("release notes lack %q:\n%s", s, notes)
		}
	}
	in.changes = "- [API](docs/api.md), [hotfixes](docs/enforcement.md#hotfixes), [site](https://x.example/a), [top](#x)"
	if got, want := releaseNotes(in), "- [API](https://github.com/budgetgate/budgetgate/blob/v0.2.0/docs/api.md), "+
		"[hotfixes](https://github.com/budgetgate/budgetgate/blob/v0.2.0/docs/enforcement.md#hotfixes), "+
		"[site](https://x.example/a), [top](#x)\n"; !strings.HasPrefix(got, want) {
		t.Errorf("release notes start with %q, want %q", got[:len(want)], want)
	}
	in.chart = ""
	if strings.Contains(releaseNotes(in), "helm") {
		t.Error("release notes without a chart mention helm")
	}
}
