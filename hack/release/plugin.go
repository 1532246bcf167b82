package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"
)

// The kubectl plugin's release archives, one per platform, as its krew
// manifest (plugins/krew/budgetgate.yaml) names them:
// kubectl-budgetgate_vX.Y.Z_OS_ARCH.tar.gz (.zip on Windows), each holding the
// binary and the files the manifest lists (LICENSE). The manifest, rendered
// with each archive's URL and sha256 as krew-release-bot renders it on the
// tag, is written beside them as budgetgate.krew.yaml, and checked: every
// platform's archive exists and holds what the manifest installs from it.

// pluginOptions are the flags of assemble that concern the plugin.
type pluginOptions struct {
	pkg, platforms, files, manifest, binary string
}

// pluginArchive is one archive of the plugin.
type pluginArchive struct {
	platform, name, sha256 string
	entries                []string
}

// pluginArchiveName is the archive of the plugin for GOOS/GOARCH at tag, as the
// krew manifest's URLs name it.
func pluginArchiveName(binary, tag, goos, goarch string) string {
	ext := ".tar.gz"
	if goos == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("%s_%s_%s_%s%s", binary, tag, goos, goarch, ext)
}

// addPluginArchives builds the plugin for every platform, reproducibly
// (-trimpath, no VCS stamp, CGO off, stamped with the version and commit),
// archives each with the extra files, and renders and checks the krew
// manifest. An empty package skips it all.
func addPluginArchives(o assembleOptions, v version, dir string) ([]pluginArchive, error) {
	p := o.plugin
	if p.pkg == "" {
		logf("kubectl plugin: skipped (no --plugin)")
		return nil, nil
	}
	build, err := os.MkdirTemp("", "budgetgate-plugin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(build)
	var extra []string
	if p.files != "" {
		extra = strings.Split(p.files, ",")
	}
	for _, f := range extra {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("kubectl plugin archives: %w (every archive holds it, as the krew manifest says)", err)
		}
	}
	mtime := time.Unix(o.epoch, 0).UTC()
	var archives []pluginArchive
	for _, platform := range strings.Split(p.platforms, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(platform), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("--plugin-platforms: %q is not OS/ARCH", platform)
		}
		exe := p.binary
		if goos == "windows" {
			exe += ".exe"
		}
		out := filepath.Join(build, goos+"-"+goarch, exe)
		ldflags := "-s -w -X github.com/budgetgate/budgetgate/internal/version.Version=" + v.tag +
			" -X github.com/budgetgate/budgetgate/internal/version.Commit=" + o.commit
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, p.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s for %s: %w\n%s", p.pkg, platform, err, b)
		}
		files := []archiveFile{{name: exe, path: out, mode: 0o755}}
		for _, f := range extra {
			files = append(files, archiveFile{name: filepath.Base(f), path: f, mode: 0o644})
		}
		name := pluginArchiveName(p.binary, v.tag, goos, goarch)
		data, err := writeArchive(files, goos == "windows", mtime)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, err
		}
		a := pluginArchive{platform: goos + "/" + goarch, name: name, sha256: sha256Hex(data)}
		for _, f := range files {
			a.entries = append(a.entries, f.name)
		}
		archives = append(archives, a)
		logf("kubectl plugin: %s", name)
	}
	if p.manifest == "" {
		return archives, nil
	}
	tmpl, err := os.ReadFile(p.manifest)
	if err != nil {
		return nil, err
	}
	rendered, err := renderKrewManifest(string(tmpl), v.tag, archives)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.manifest, err)
	}
	if err := checkKrewManifest(rendered, v.tag, archives); err != nil {
		return nil, fmt.Errorf("%s, rendered for %s: %w", p.manifest, v.tag, err)
	}
	return archives, os.WriteFile(filepath.Join(dir, krewManifestFile), rendered, 0o644)
}

// krewManifestFile is the rendered krew manifest of a release.
const krewManifestFile = "budgetgate.krew.yaml"

// renderKrewManifest renders the krew-release-bot template as the bot does on
// the tag: .TagName is the tag, and addURIAndSha gives an archive's URL and
// the sha256 of the archive of that name.
func renderKrewManifest(tmpl, tag string, archives []pluginArchive) ([]byte, error) {
	var missing []string
	t, err := template.New("krew").Option("missingkey=error").Funcs(template.FuncMap{
		"addURIAndSha": func(url, tag string) string {
			url = strings.ReplaceAll(url, "{{ .TagName }}", tag)
			i := slices.IndexFunc(archives, func(a pluginArchive) bool { return a.name == path.Base(url) })
			if i < 0 {
				missing = append(missing, path.Base(url))
				return "uri: " + url
			}
			return "uri: " + url + "\n      sha256: " + archives[i].sha256
		},
	}).Parse(tmpl)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]string{"TagName": tag}); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no archive built for %s (see --plugin-platforms)", strings.Join(missing, ", "))
	}
	return b.Bytes(), nil
}

// checkKrewManifest checks the rendered manifest against the archives: the
// version is the tag, and every platform installs its bin and files from
// what its archive holds.
func checkKrewManifest(rendered []byte, tag string, archives []pluginArchive) error {
	var m struct {
		Spec struct {
			Version   string
			Platforms []struct {
				URI, Sha256, Bin string
				Files            []struct{ From, To string }
			}
		}
	}
	if err := yaml.Unmarshal(rendered, &m); err != nil {
		return err
	}
	if m.Spec.Version != tag {
		return fmt.Errorf("spec.version %q, want %q", m.Spec.Version, tag)
	}
	if len(m.Spec.Platforms) == 0 {
		return errors.New("no platforms")
	}
	var errs []error
	for _, pl := range m.Spec.Platforms {
		i := slices.IndexFunc(archives, func(a pluginArchive) bool { return a.name == path.Base(pl.URI) })
		if i < 0 {
			errs = append(errs, fmt.Errorf("%s: no such archive", pl.URI))
			continue
		}
		a := archives[i]
		if pl.Sha256 != a.sha256 {
			errs = append(errs, fmt.Errorf("%s: sha256 %s, the archive's is %s", a.name, pl.Sha256, a.sha256))
		}
		for _, f := range pl.Files {
			if !slices.Contains(a.entries, f.From) {
				errs = append(errs, fmt.Errorf("%s: installs %s, which the archive does not hold (%s)",
					a.name, f.From, strings.Join(a.entries, ", ")))
			}
		}
		if !slices.Contains(a.entries, pl.Bin) && !slices.Contains(a.entries, pl.Bin+".exe") {
			errs = append(errs, fmt.Errorf("%s: bin %s is not in the archive", a.name, pl.Bin))
		}
	}
	return errors.Join(errs...)
}

// archiveFile is one file of an archive.
type archiveFile struct {
	name, path string
	mode       int64
}

// writeArchive writes files into a tar.gz, or a zip, whose bytes depend only
// on the files' contents and names, their modes and mtime: no owner, no
// gzip name or time.
func writeArchive(files []archiveFile, asZip bool, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	if asZip {
		zw := zip.NewWriter(&b)
		for _, f := range files {
			data, err := os.ReadFile(f.path)
			if err != nil {
				return nil, err
			}
			h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mtime}
			h.SetMode(os.FileMode(f.mode))
			w, err := zw.CreateHeader(h)
			if err != nil {
				return nil, err
			}
			if _, err := w.Write(data); err != nil {
				return nil, err
			}
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	gz, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(data)), ModTime: mtime,
			Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sha256Hex(data []byte) string { return fmt.Sprintf("%x", sha256.Sum256(data)) }
