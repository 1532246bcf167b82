package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A krew template of two platforms, in the form of plugins/krew/budgetgate.yaml.
const testKrewTemplate = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata: {name: budgetgate}
spec:
  version: {{ .TagName }}
  platforms:
    - selector: {matchLabels: {os: linux, arch: amd64}}
      {{ addURIAndSha "https://example.test/releases/download/{{ .TagName }}/kubectl-budgetgate_{{ .TagName }}_linux_amd64.tar.gz" .TagName }}
      files:
        - {from: kubectl-budgetgate, to: .}
        - {from: LICENSE, to: .}
      bin: kubectl-budgetgate
`

// make release builds the plugin per platform into archives whose bytes
// depend only on the source, holding the binary and LICENSE, and renders
// the krew manifest with their sha256.
func TestPluginArchives(t *testing.T) {
	dir := t.TempDir()
	license := filepath.Join(dir, "LICENSE")
	manifest := filepath.Join(dir, "krew.yaml")
	if err := os.WriteFile(license, []byte("license text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(testKrewTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	v, _ := parseVersion("v0.2.0")
	o := assembleOptions{commit: "abc", epoch: 1700000000, plugin: pluginOptions{pkg: "./testdata/fakeplugin",
		binary: "kubectl-budgetgate", platforms: "linux/amd64", files: license, manifest: manifest}}
	var runs [][]byte
	for i := range 2 {
		out := filepath.Join(dir, "out", string(rune('a'+i)))
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		archives, err := addPluginArchives(o, v, out)
		if err != nil {
			t.Fatal(err)
		}
		if len(archives) != 1 || archives[0].name != "kubectl-budgetgate_v0.2.0_linux_amd64.tar.gz" {
			t.Fatalf("archives %+v", archives)
		}
		data, err := os.ReadFile(filepath.Join(out, archives[0].name))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, data)
		rendered, err := os.ReadFile(filepath.Join(out, krewManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(rendered), "sha256: "+sha256Hex(data)) ||
			!strings.Contains(string(rendered), "uri: https://example.test/releases/download/v0.2.0/kubectl-budgetgate_v0.2.0_linux_amd64.tar.gz") {
			t.Errorf("rendered manifest:\n%s", rendered)
		}
	}
	if !bytes.Equal(runs[0], runs[1]) {
		t.Error("two builds of the same source gave different archives")
	}
	entries := readTarGz(t, runs[0])
	if got := slices.Sorted(maps.Keys(entries)); !slices.Equal(got, []string{"LICENSE", "kubectl-budgetgate"}) {
		t.Fatalf("archive holds %v", got)
	}
	if h := entries["kubectl-budgetgate"]; h.Mode != 0o755 || !h.ModTime.Equal(time.Unix(o.epoch, 0)) || h.Uid != 0 || h.Uname != "" {
		t.Errorf("binary entry %+v", h)
	}

	o.plugin.files = filepath.Join(dir, "NO-LICENSE")
	if _, err := addPluginArchives(o, v, t.TempDir()); err == nil || !strings.Contains(err.Error(), "NO-LICENSE") {
		t.Errorf("without the license file: %v", err)
	}
	o.plugin.files = ""
	if _, err := addPluginArchives(o, v, t.TempDir()); err == nil || !strings.Contains(err.Error(), "installs LICENSE, which the archive does not hold") {
		t.Errorf("archives without what the manifest installs: %v", err)
	}
	o.plugin.files, o.plugin.platforms = license, "linux/amd64,plan9"
	if _, err := addPluginArchives(o, v, t.TempDir()); err == nil || !strings.Contains(err.Error(), `"plan9" is not OS/ARCH`) {
		t.Errorf("a bad platform: %v", err)
	}
}

// The repository's krew manifest names exactly the archives of the default
// platforms, and installs what they hold.
func TestTheKrewManifestNamesTheArchives(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "plugins", "krew", "budgetgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fs := assembleFlags(&assembleOptions{})
	platforms := strings.Split(fs.Lookup("plugin-platforms").DefValue, ",")
	archives := func(entries ...string) []pluginArchive {
		var as []pluginArchive
		for _, p := range platforms {
			goos, goarch, _ := strings.Cut(p, "/")
			bin := "kubectl-budgetgate"
			if goos == "windows" {
				bin += ".exe"
			}
			as = append(as, pluginArchive{platform: p, name: pluginArchiveName("kubectl-budgetgate", "v1.2.3", goos, goarch),
				sha256: strings.Repeat("ab", 32), entries: append([]string{bin}, entries...)})
		}
		return as
	}
	all := archives("LICENSE")
	rendered, err := renderKrewManifest(string(tmpl), "v1.2.3", all)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkKrewManifest(rendered, "v1.2.3", all); err != nil {
		t.Error(err)
	}
	if err := checkKrewManifest(rendered, "v1.2.3", archives()); err == nil {
		t.Error("archives without LICENSE pass the manifest's check")
	}
	if _, err := renderKrewManifest(string(tmpl), "v1.2.3", all[1:]); err == nil ||
		!strings.Contains(err.Error(), "no archive built for "+all[0].name) {
		t.Errorf("a platform without an archive: %v", err)
	}
}

// The repository carries the license its sources' headers name, which every
// plugin archive ships.
func TestLicenseIsApache2(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile(filepath.Join("..", "boilerplate.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(header), "Apache License, Version 2.0") ||
		!strings.Contains(string(data), "Apache License\n                           Version 2.0, January 2004") {
		t.Error("LICENSE is not the Apache License 2.0 that hack/boilerplate.go.txt names")
	}
}

func TestZipArchiveIsReproducible(t *testing.T) {
	f := filepath.Join(t.TempDir(), "kubectl-budgetgate.exe")
	if err := os.WriteFile(f, []byte("MZ binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)
	files := []archiveFile{{name: "kubectl-budgetgate.exe", path: f, mode: 0o755}}
	a, err := writeArchive(files, true, mtime)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := writeArchive(files, true, mtime)
	if !bytes.Equal(a, b) {
		t.Error("two zips of the same files differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "kubectl-budgetgate.exe" || !zr.File[0].Modified.Equal(mtime) {
		t.Fatalf("zip holds %+v", zr.File)
	}
}

func readTarGz(t *testing.T, data []byte) map[string]*tar.Header {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q, time %s", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	entries := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
}
