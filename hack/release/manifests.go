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
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// renderInstall renders config/default as make build-installer does, in a
// scratch copy of configDir (nothing tracked changes), with the manager image
// ("controller" in config/manager) set to image unless image is empty.
func renderInstall(kustomize, configDir, image string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "release-config-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	dst := filepath.Join(tmp, "config")
	if err := os.CopyFS(dst, os.DirFS(configDir)); err != nil {
		return nil, fmt.Errorf("copying %s: %w", configDir, err)
	}
	if image != "" {
		setImage := []string{"edit", "set", "image", "controller=" + image}
		if _, err := run(filepath.Join(dst, "manager"), nil, kustomize, setImage...); err != nil {
			return nil, err
		}
	}
	return run(tmp, nil, kustomize, "build", filepath.Join(dst, "default"))
}

// imageValues are the values of the "image:" fields of rendered manifests.
func imageValues(rendered []byte) []string {
	var images []string
	for l := range strings.Lines(string(rendered)) {
		if v, ok := imageValue(l); ok {
			images = append(images, v)
		}
	}
	return images
}

// imageValue is the value of a YAML line "image: X" or "- image: X".
func imageValue(line string) (string, bool) {
	v, ok := strings.CutPrefix(strings.TrimPrefix(strings.TrimSpace(line), "- "), "image:")
	if !ok {
		return "", false
	}
	return strings.Trim(strings.TrimSpace(v), `"'`), true
}

// checkPinned fails unless every image of the rendered manifests is image.
func checkPinned(rendered []byte, image string) error {
	images := imageValues(rendered)
	if len(images) == 0 {
		return errors.New("no image: field in the rendered manifests")
	}
	for _, got := range images {
		if got != image {
			return fmt.Errorf("rendered manifests use image %q, want only %q", got, image)
		}
	}
	return nil
}

// checkOnlyImageDiffers fails unless pinned is unpinned with its image lines,
// and only those, changed to image.
func checkOnlyImageDiffers(unpinned, pinned []byte, image string) error {
	a, b := strings.Split(string(unpinned), "\n"), strings.Split(string(pinned), "\n")
	if len(a) != len(b) {
		return fmt.Errorf("pinning the image changed the number of lines (%d to %d)", len(a), len(b))
	}
	changed := 0
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		changed++
		if v, ok := imageValue(b[i]); !ok || v != image {
			return fmt.Errorf("pinning the image changed line %d: %q to %q", i+1, a[i], b[i])
		}
	}
	if changed == 0 {
		return errors.New("pinning the image changed nothing")
	}
	return checkPinned(pinned, image)
}

// setChartImage sets image.repository and image.digest in a chart's
// values.yaml, changing nothing else (comments stay, for helm show values).
func setChartImage(values []byte, repository, digest string) ([]byte, error) {
	lines := strings.Split(string(values), "\n")
	start := -1
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, "image:")
		if ok && (strings.TrimSpace(rest) == "" || strings.HasPrefix(strings.TrimSpace(rest), "#")) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, errors.New("values.yaml has no top-level \"image:\" block")
	}
	want := map[string]string{"repository": repository, "digest": fmt.Sprintf("%q", digest)}
	set := map[string]bool{}
	indent := ""
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if !strings.HasPrefix(l, " ") {
			break // the next top-level key
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " "))]
		if indent == "" {
			indent = ind
		}
		key, _, _ := strings.Cut(trimmed, ":")
		if v, ok := want[key]; ok && ind == indent {
			lines[i] = indent + key + ": " + v
			set[key] = true
		}
	}
	for key := range want {
		if !set[key] {
			return nil, fmt.Errorf("values.yaml: no image.%s to set", key)
		}
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// chartOptions say how to package the chart of a release.
type chartOptions struct {
	helm, dir  string
	v          version
	repository string // e.g. ghcr.io/budgetgate/manager
	digest     string // the manager image's index digest
	mtime      time.Time
}

// packageChart packages a scratch copy of the chart whose values pin the
// manager image by digest, with the release's version and appVersion,
// normalizes the archive's timestamps, writes it into outDir and checks that
// it renders the pinned image. It returns the archive's name.
func packageChart(o chartOptions, outDir string) (string, error) {
	tmp, err := os.MkdirTemp("", "release-chart-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	src := filepath.Join(tmp, filepath.Base(o.dir))
	if err := os.CopyFS(src, os.DirFS(o.dir)); err != nil {
		return "", fmt.Errorf("copying %s: %w", o.dir, err)
	}
	valuesFile := filepath.Join(src, "values.yaml")
	values, err := os.ReadFile(valuesFile)
	if err != nil {
		return "", err
	}
	if values, err = setChartImage(values, o.repository, o.digest); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(o.dir, "values.yaml"), err)
	}
	if err := os.WriteFile(valuesFile, values, 0o644); err != nil {
		return "", err
	}
	pkgDir := filepath.Join(tmp, "package")
	if _, err := run(tmp, nil, o.helm, "package", src, "--version", o.v.chart(), "--app-version", o.v.tag,
		"--destination", pkgDir); err != nil {
		return "", err
	}
	tgzs, err := filepath.Glob(filepath.Join(pkgDir, "*.tgz"))
	if err != nil || len(tgzs) != 1 {
		return "", fmt.Errorf("helm package wrote %d archives, want 1", len(tgzs))
	}
	data, err := os.ReadFile(tgzs[0])
	if err != nil {
		return "", err
	}
	if data, err = normalizeTgz(data, o.mtime); err != nil {
		return "", fmt.Errorf("%s: %w", tgzs[0], err)
	}
	name := filepath.Base(tgzs[0])
	dst, err := filepath.Abs(filepath.Join(outDir, name))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return "", err
	}
	rendered, err := run(tmp, nil, o.helm, "template", "budgetgate", dst, "--namespace", "budgetgate-system")
	if err != nil {
		return "", err
	}
	if err := checkPinned(rendered, o.repository+"@"+o.digest); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return name, nil
}

// normalizeTgz rewrites a chart archive (helm package stamps every entry with
// the time of packaging) with every entry's time set to mtime. Entries, their
// order, names, modes and contents, and the gzip header's extra field and
// comment (helm's) stay as they are; the gzip stream carries no time.
func normalizeTgz(data []byte, mtime time.Time) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		h.ModTime, h.AccessTime, h.ChangeTime = mtime.UTC(), time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Header = gzip.Header{Comment: zr.Comment, Extra: zr.Extra, Name: zr.Name, OS: zr.OS}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// run runs a command in dir and returns its standard output; on failure the
// error carries its standard error.
func run(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
