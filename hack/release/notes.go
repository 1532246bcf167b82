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
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// relativeLinkRE is a Markdown inline link to a path in the repository, e.g.
// "](docs/api.md)" or "](docs/enforcement.md#hotfixes)".
var relativeLinkRE = regexp.MustCompile(`\]\(([^)\s:#][^)\s:]*)\)`)

// absoluteLinks points the repository-relative links of a CHANGELOG entry at
// the tagged tree, since a GitHub release page resolves them elsewhere.
func absoluteLinks(markdown, sourceURL, tag string) string {
	return relativeLinkRE.ReplaceAllString(markdown, "]("+sourceURL+"/blob/"+tag+"/$1)")
}

// sumsFile is the checksums file of a release.
const sumsFile = "SHA256SUMS"

// releasedImage is one image of a release, for the notes.
type releasedImage struct {
	repository string // ghcr.io/budgetgate/manager
	archive    ociArchive
}

// notesInput is what release-notes.md says besides the CHANGELOG entry.
type notesInput struct {
	v         version
	changes   string // the CHANGELOG section's body
	images    []releasedImage
	chart     string // the chart archive's name, "" when the chart was skipped
	plugin    []pluginArchive
	chartRepo string // oci://ghcr.io/budgetgate/charts
	sourceURL string // https://github.com/budgetgate/budgetgate
	commit    string
	goVersion string
	epoch     int64
}

// releaseNotes is release-notes.md: the CHANGELOG entry of the version, then
// how to get and check what the release holds.
func releaseNotes(in notesInput) string {
	var b strings.Builder
	b.WriteString(absoluteLinks(in.changes, in.sourceURL, in.v.tag))
	b.WriteString("\n\n## Artifacts\n\n")
	b.WriteString("Images, for ")
	if len(in.images) > 0 {
		platforms := make([]string, 0, len(in.images[0].archive.platforms))
		for _, p := range in.images[0].archive.platforms {
			platforms = append(platforms, p.platform)
		}
		b.WriteString(strings.Join(platforms, ", "))
	}
	b.WriteString(" (pull them by digest):\n\n")
	for _, img := range in.images {
		fmt.Fprintf(&b, "- `%s:%s@%s`\n", img.repository, in.v.tag, img.archive.digest)
	}
	if in.chart != "" {
		fmt.Fprintf(&b, "\nHelm chart: `%s/budgetgate`, version `%s` (also attached as `%s`); "+
			"its values pin the manager image by digest.\n", in.chartRepo, in.v.chart(), in.chart)
	}
	fmt.Fprintf(&b, "\nInstall ([docs/install.md](%s/blob/%s/docs/install.md)):\n\n```sh\n", in.sourceURL, in.v.tag)
	fmt.Fprintf(&b, "kubectl apply --server-side -f %s/releases/download/%s/install.yaml\n", in.sourceURL, in.v.tag)
	if in.chart != "" {
		fmt.Fprintf(&b, "# or\nhelm install budgetgate %s/budgetgate --version %s \\\n"+
			"  --namespace budgetgate-system --create-namespace\n", in.chartRepo, in.v.chart())
	}
	b.WriteString("```\n\n")
	if len(in.plugin) > 0 {
		platforms := make([]string, 0, len(in.plugin))
		for _, a := range in.plugin {
			platforms = append(platforms, a.platform)
		}
		fmt.Fprintf(&b, "kubectl plugin ([docs/kubectl-plugin.md](%s/blob/%s/docs/kubectl-plugin.md)) for %s: "+
			"`kubectl-budgetgate_%s_OS_ARCH.tar.gz` (`.zip` on Windows), and `%s`, its krew manifest for this release.\n\n",
			in.sourceURL, in.v.tag, strings.Join(platforms, ", "), in.v.tag, krewManifestFile)
	}
	b.WriteString("Attached: `install.yaml` (the manager pinned by digest), the images as OCI archives " +
		"(`*.oci.tar`, their index digests in `*.digest`), a CycloneDX SBOM per image and platform " +
		"(`*.cdx.json`), and `SHA256SUMS` over every file (`sha256sum -c SHA256SUMS`).\n\n")
	fmt.Fprintf(&b, "Built from commit `%s` with %s, SOURCE_DATE_EPOCH=%d: `make release VERSION=%s` "+
		"from that commit with that Go version gives the same files "+
		"([docs/release.md](%s/blob/%s/docs/release.md)).\n",
		in.commit, in.goVersion, in.epoch, in.v.tag, in.sourceURL, in.v.tag)
	return b.String()
}

// writeSums writes SHA256SUMS over every other file of dir, in the format of
// sha256sum (sha256sum -c SHA256SUMS checks it).
func writeSums(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != sumsFile {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	data := []byte(b.String())
	return data, os.WriteFile(filepath.Join(dir, sumsFile), data, 0o644)
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
