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

// Command release checks and assembles budgetgate's release artifacts; mk/release.mk
// drives it (make release, make release-check; see docs/release.md).
//
//	go run ./hack/release preflight --version v0.2.0 [--changelog CHANGELOG.md] [--require-clean]
//	go run ./hack/release assemble --version v0.2.0 --images-dir DIR --out dist/release/v0.2.0 ...
//	go run ./hack/release check [--changelog CHANGELOG.md] [--version-file VERSION] ...
//
// preflight refuses a version that is not semver with a leading v and a
// CHANGELOG.md without a section for it, before anything is built. assemble
// takes the images make image built (bin/release/VERSION/images) and writes
// the release directory: the OCI archives with their digests, install.yaml
// pinned by digest, the Helm chart with the digest in its values, CycloneDX
// SBOMs, release-notes.md and SHA256SUMS, every file reproducible. check
// exercises the same code on a fake digest, without building images.
package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const usage = `usage: go run ./hack/release preflight|assemble|check [flags]   (see docs/release.md)`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "preflight":
		err = preflight(os.Args[2:])
	case "assemble":
		err = assemble(os.Args[2:])
	case "check":
		err = check(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...) }

// preflight checks what a release needs before anything is built.
func preflight(args []string) error {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	ver := fs.String("version", "", "The release version, e.g. v0.2.0.")
	changelog := fs.String("changelog", "CHANGELOG.md", "The changelog with a section for the version.")
	requireClean := fs.Bool("require-clean", false, "Fail when the working tree differs from the commit.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := parseVersion(*ver)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(*changelog)
	if err != nil {
		return fmt.Errorf("%w; %s", err, missingSectionHelp(*changelog, v))
	}
	sections := parseChangelog(string(text))
	if err := checkChangelog(sections, *changelog); err != nil {
		return err
	}
	if _, err := notesFor(sections, *changelog, v); err != nil {
		return err
	}
	return checkSource(v, *requireClean)
}

// checkSource reports the commit a release is built from, and fails when a
// tag of the version exists elsewhere, or when the working tree differs from
// the commit and a clean tree is required (the release workflow).
func checkSource(v version, requireClean bool) error {
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if tagged, err := git("rev-parse", "-q", "--verify", "refs/tags/"+v.tag+"^{commit}"); err == nil && tagged != head {
		return fmt.Errorf("tag %s points at %s, but HEAD is %s: check out the tag to release it", v.tag, tagged, head)
	}
	epoch, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return err
	}
	status, err := git("status", "--porcelain", "--untracked-files=all")
	if err != nil {
		return err
	}
	digest, files, err := treeDigest()
	if err != nil {
		return err
	}
	sec, _ := strconv.ParseInt(epoch, 10, 64)
	logf("release %s from commit %s (SOURCE_DATE_EPOCH=%s, %s)", v.tag, head, epoch,
		time.Unix(sec, 0).UTC().Format(time.RFC3339))
	logf("sources: %d files, tree digest sha256:%s", files, digest)
	if status == "" {
		return nil
	}
	changed := strings.Split(status, "\n")
	msg := fmt.Sprintf("the working tree differs from commit %s in %d paths (git status --porcelain); "+
		"the artifacts are built from the working tree but say they are %s", head[:12], len(changed), head[:12])
	if requireClean {
		return errors.New(msg)
	}
	logf("WARNING: %s:", msg)
	for i, l := range changed {
		if i == 10 {
			fmt.Fprintf(os.Stderr, "     ... and %d more\n", len(changed)-i)
			break
		}
		fmt.Fprintf(os.Stderr, "     %s\n", l)
	}
	return nil
}

// treeDigest hashes the names and contents of the files git would see (tracked
// or not, ignored ones excluded), so that two runs can show they built the
// same sources.
func treeDigest() (string, int, error) {
	out, err := git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n := 0
	for name := range strings.SplitSeq(out, "\x00") {
		if name == "" {
			continue
		}
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return "", 0, err
		}
		_, _ = fmt.Fprintf(h, "%s\x00", name)
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return "", 0, err
		}
		n++
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n, nil
}

func git(args ...string) (string, error) {
	out, err := run("", nil, "git", args...)
	return strings.TrimRight(string(out), "\n"), err
}

// imageSpec is one image of a release: its name and its main package.
type imageSpec struct {
	name, main string
}

func parseImages(s string) ([]imageSpec, error) {
	var images []imageSpec
	for item := range strings.SplitSeq(s, ",") {
		name, main, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" || main == "" {
			return nil, fmt.Errorf("--images %q: want NAME=MAIN_PACKAGE,... (e.g. manager=cmd)", s)
		}
		images = append(images, imageSpec{name: name, main: strings.TrimPrefix(main, "./")})
	}
	return images, nil
}

// assembleOptions are the flags of assemble.
type assembleOptions struct {
	version, repo, images, imagesDir, out           string
	kustomize, configDir, installImage, stamped     string
	helm, chartDir, chartRepo, cyclonedx, changelog string
	commit, sourceURL                               string
	epoch                                           int64
	requireChart                                    bool
	plugin                                          pluginOptions
}

func assembleFlags(o *assembleOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("assemble", flag.ContinueOnError)
	fs.StringVar(&o.version, "version", "", "The release version, e.g. v0.2.0.")
	fs.StringVar(&o.repo, "repo", "ghcr.io/budgetgate", "Where the images live: REPO/NAME.")
	fs.StringVar(&o.images, "images", "manager=cmd,demo-app=cmd/demo-app", "NAME=MAIN_PACKAGE of each image.")
	fs.StringVar(&o.imagesDir, "images-dir", "", "Where make image wrote NAME.tar, NAME.digest and build/.")
	fs.StringVar(&o.out, "out", "", "The release directory, e.g. dist/release/v0.2.0 (replaced).")
	fs.StringVar(&o.kustomize, "kustomize", "bin/kustomize", "kustomize.")
	fs.StringVar(&o.configDir, "config", "config", "The kustomize tree; config/default is rendered.")
	fs.StringVar(&o.installImage, "install-image", "manager", "The image install.yaml and the chart pin.")
	fs.StringVar(&o.stamped, "stamped", "manager", "Comma-separated images whose binaries must carry the version.")
	fs.StringVar(&o.helm, "helm", "bin/helm", "helm; the chart is skipped when it does not exist.")
	fs.StringVar(&o.chartDir, "chart", "charts/budgetgate", "The chart; skipped when it does not exist.")
	fs.BoolVar(&o.requireChart, "require-chart", false, "Fail instead of skipping the chart.")
	fs.StringVar(&o.chartRepo, "chart-repo", "oci://ghcr.io/budgetgate/charts", "Where the chart is pushed (notes).")
	fs.StringVar(&o.cyclonedx, "cyclonedx-gomod", "bin/cyclonedx-gomod", "cyclonedx-gomod.")
	fs.StringVar(&o.changelog, "changelog", "CHANGELOG.md", "The changelog with a section for the version.")
	fs.StringVar(&o.commit, "commit", "", "The commit the binaries are stamped with.")
	fs.Int64Var(&o.epoch, "source-date-epoch", -1, "SOURCE_DATE_EPOCH: every timestamp of the release.")
	fs.StringVar(&o.sourceURL, "source-url", "https://github.com/budgetgate/budgetgate", "The repository (notes).")
	fs.StringVar(&o.plugin.pkg, "plugin", "", "The kubectl plugin's main package, e.g. ./cmd/kubectl-budgetgate; empty: no plugin archives.")
	fs.StringVar(&o.plugin.binary, "plugin-binary", "kubectl-budgetgate", "The plugin's binary name.")
	fs.StringVar(&o.plugin.platforms, "plugin-platforms", "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64",
		"OS/ARCH of the plugin archives.")
	fs.StringVar(&o.plugin.files, "plugin-files", "LICENSE", "Comma-separated files every plugin archive holds beside the binary.")
	fs.StringVar(&o.plugin.manifest, "krew-manifest", "plugins/krew/budgetgate.yaml",
		"The krew-release-bot template, rendered and checked against the archives; empty: not rendered.")
	return fs
}

// assemble writes the release directory from the images make image built.
func assemble(args []string) error {
	var o assembleOptions
	if err := assembleFlags(&o).Parse(args); err != nil {
		return err
	}
	v, err := parseVersion(o.version)
	if err != nil {
		return err
	}
	images, err := parseImages(o.images)
	if err != nil {
		return err
	}
	if o.imagesDir == "" || o.out == "" || o.commit == "" || o.epoch < 0 {
		return errors.New("--images-dir, --out, --commit and --source-date-epoch are required")
	}
	changes, err := readNotes(o.changelog, v)
	if err != nil {
		return err
	}
	tmp := o.out + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	in := notesInput{v: v, changes: changes, chartRepo: o.chartRepo, sourceURL: o.sourceURL, commit: o.commit,
		goVersion: runtime.Version(), epoch: o.epoch}
	for _, img := range images {
		a, err := addImage(o, v, img, tmp)
		if err != nil {
			return err
		}
		in.images = append(in.images, releasedImage{repository: o.repo + "/" + img.name, archive: a})
	}
	pinned, err := pinnedImage(o, in.images)
	if err != nil {
		return err
	}
	if err := writeInstall(o, pinned, tmp); err != nil {
		return err
	}
	if in.chart, err = addChart(o, v, pinned, tmp); err != nil {
		return err
	}
	if err := addSBOMs(o, v, images, in.images, tmp); err != nil {
		return err
	}
	if in.plugin, err = addPluginArchives(o, v, tmp); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "release-notes.md"), []byte(releaseNotes(in)), 0o644); err != nil {
		return err
	}
	sums, err := writeSums(tmp)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return err
	}
	logf("%s:\n%s", o.out, sums)
	for _, img := range in.images {
		fmt.Printf("%s:%s@%s\n", img.repository, v.tag, img.archive.digest)
	}
	fmt.Printf("%s sha256:%x\n", filepath.Join(o.out, sumsFile), sha256.Sum256(sums))
	return nil
}

func readNotes(changelog string, v version) (string, error) {
	text, err := os.ReadFile(changelog)
	if err != nil {
		return "", err
	}
	return notesFor(parseChangelog(string(text)), changelog, v)
}

// addImage copies one image's OCI archive into the release with its digest,
// after checking it is the image make image just built for this release.
func addImage(o assembleOptions, v version, img imageSpec, dir string) (ociArchive, error) {
	src := filepath.Join(o.imagesDir, img.name+".tar")
	a, err := readOCIArchive(src)
	if err != nil {
		return ociArchive{}, err
	}
	ref, digest, err := readImageDigestFile(filepath.Join(o.imagesDir, img.name+".digest"))
	if err != nil {
		return ociArchive{}, err
	}
	want := o.repo + "/" + img.name + ":" + v.tag
	if ref != want || a.name != want || digest != a.digest {
		return ociArchive{}, fmt.Errorf("%s is %s %s (archive: %s %s), want %s: rebuild it with make release",
			src, ref, digest, a.name, a.digest, want)
	}
	for stamped := range strings.SplitSeq(o.stamped, ",") {
		if stamped == img.name {
			if err := checkBinaries(o, v, img, a); err != nil {
				return ociArchive{}, err
			}
		}
	}
	if err := copyFile(src, filepath.Join(dir, img.name+".oci.tar")); err != nil {
		return ociArchive{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, img.name+".digest"), []byte(a.digest+"\n"), 0o644); err != nil {
		return ociArchive{}, err
	}
	logf("image %s@%s (%d platforms)", want, a.digest, len(a.platforms))
	return a, nil
}

// checkBinaries checks that every platform's binary of img carries the version
// and commit, and runs the host's with --version.
func checkBinaries(o assembleOptions, v version, img imageSpec, a ociArchive) error {
	for _, p := range a.platforms {
		parts := strings.Split(p.platform, "/")
		bin := filepath.Join(o.imagesDir, "build", img.name+"-"+parts[0]+"-"+parts[1])
		if err := checkStamped(bin, v.tag, o.commit); err != nil {
			return err
		}
		if parts[0] != runtime.GOOS || parts[1] != runtime.GOARCH {
			continue
		}
		out, err := run("", nil, bin, "--version")
		if err != nil {
			return err
		}
		got := strings.TrimSpace(string(out))
		if !strings.Contains(got, " "+v.tag+" ") || !strings.Contains(got, o.commit[:12]) {
			return fmt.Errorf("%s --version says %q, want %s and commit %s", bin, got, v.tag, o.commit[:12])
		}
		logf("%s --version: %s", filepath.Base(bin), got)
	}
	return nil
}

// pinnedImage is REPO/NAME@DIGEST of the image install.yaml and the chart run.
func pinnedImage(o assembleOptions, images []releasedImage) (string, error) {
	for _, img := range images {
		if strings.HasSuffix(img.repository, "/"+o.installImage) {
			return img.repository + "@" + img.archive.digest, nil
		}
	}
	return "", fmt.Errorf("--install-image %q is not among --images %q", o.installImage, o.images)
}

func writeInstall(o assembleOptions, image, dir string) error {
	rendered, err := renderInstall(o.kustomize, o.configDir, image)
	if err != nil {
		return err
	}
	if err := checkPinned(rendered, image); err != nil {
		return fmt.Errorf("install.yaml: %w", err)
	}
	logf("install.yaml: %s/default with %s", o.configDir, image)
	return os.WriteFile(filepath.Join(dir, "install.yaml"), rendered, 0o644)
}

// addChart packages the chart when it and helm exist, and says why not when
// they do not.
func addChart(o assembleOptions, v version, image, dir string) (string, error) {
	var missing []string
	if st, err := os.Stat(filepath.Join(o.chartDir, "Chart.yaml")); err != nil || !st.Mode().IsRegular() {
		missing = append(missing, o.chartDir+"/Chart.yaml")
	}
	if _, err := exec.LookPath(o.helm); err != nil {
		missing = append(missing, o.helm+" (make helm)")
	}
	if len(missing) > 0 {
		msg := "no Helm chart in this release: missing " + strings.Join(missing, " and ")
		if o.requireChart {
			return "", errors.New(msg)
		}
		logf("SKIPPED: %s", msg)
		return "", nil
	}
	repository, digest, _ := strings.Cut(image, "@")
	name, err := packageChart(chartOptions{helm: o.helm, dir: o.chartDir, v: v, repository: repository, digest: digest,
		mtime: time.Unix(o.epoch, 0)}, dir)
	if err != nil {
		return "", err
	}
	logf("chart %s: version %s, appVersion %s, image.digest %s", name, v.chart(), v.tag, digest)
	return name, nil
}

// addSBOMs writes one CycloneDX SBOM per image and platform:
// NAME.OS-ARCH.cdx.json.
func addSBOMs(o assembleOptions, v version, specs []imageSpec, images []releasedImage, dir string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	tool, err := filepath.Abs(o.cyclonedx)
	if err != nil {
		return err
	}
	for i, img := range images {
		for _, p := range img.archive.platforms {
			start := time.Now()
			data, err := generateSBOM(sbomSpec{tool: tool, moduleDir: wd, main: specs[i].main,
				repository: img.repository, tag: v.tag, index: img.archive.digest, platform: p, commit: o.commit,
				created: time.Unix(o.epoch, 0)})
			if err != nil {
				return fmt.Errorf("SBOM of %s %s: %w", specs[i].name, p.platform, err)
			}
			name := specs[i].name + "." + strings.ReplaceAll(p.platform, "/", "-") + ".cdx.json"
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
			logf("SBOM %s (%s, %.1fs)", name, specs[i].main, time.Since(start).Seconds())
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// check exercises the release machinery without building images: the
// CHANGELOG, install.yaml and the chart pinned to a fake digest.
func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	changelog := fs.String("changelog", "CHANGELOG.md", "The changelog.")
	versionFile := fs.String("version-file", "VERSION", "A file naming the next version, if the project keeps one.")
	ver := fs.String("version", "",
		"Check the CHANGELOG entry of this version (default: --version-file, else the latest).")
	kustomize := fs.String("kustomize", "bin/kustomize", "kustomize.")
	configDir := fs.String("config", "config", "The kustomize tree.")
	helm := fs.String("helm", "bin/helm", "helm; the chart check is skipped when it does not exist.")
	chartDir := fs.String("chart", "charts/budgetgate", "The chart.")
	repo := fs.String("repo", "ghcr.io/budgetgate", "Where the images live.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := checkChangelogEntry(*changelog, *versionFile, *ver)
	if err != nil {
		return err
	}
	fake := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("budgetgate release-check")))
	image := *repo + "/manager@" + fake
	unpinned, err := renderInstall(*kustomize, *configDir, "")
	if err != nil {
		return err
	}
	pinned, err := renderInstall(*kustomize, *configDir, image)
	if err != nil {
		return err
	}
	if err := checkOnlyImageDiffers(unpinned, pinned, image); err != nil {
		return fmt.Errorf("install.yaml pinning: %w", err)
	}
	logf("install.yaml pinning: only the manager image changes, to %s", image)
	if _, err := exec.LookPath(*helm); err != nil {
		logf("SKIPPED chart check: no %s (make helm)", *helm)
		return nil
	}
	if _, err := os.Stat(filepath.Join(*chartDir, "Chart.yaml")); err != nil {
		logf("SKIPPED chart check: no %s", *chartDir)
		return nil
	}
	tmp, err := os.MkdirTemp("", "release-check-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	repository, digest, _ := strings.Cut(image, "@")
	name, err := packageChart(chartOptions{helm: *helm, dir: *chartDir, v: v, repository: repository, digest: digest,
		mtime: time.Unix(0, 0)}, tmp)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	logf("chart: %s packages as %s and renders %s", *chartDir, name, image)
	return nil
}

// checkChangelogEntry checks CHANGELOG.md's structure and the entry of the
// version asked for, of the version in versionFile, or the latest entry. It
// returns the version the chart check packages.
func checkChangelogEntry(changelog, versionFile, ver string) (version, error) {
	text, err := os.ReadFile(changelog)
	if err != nil {
		return version{}, err
	}
	sections := parseChangelog(string(text))
	if err := checkChangelog(sections, changelog); err != nil {
		return version{}, err
	}
	from := "--version"
	if ver == "" {
		if data, err := os.ReadFile(versionFile); err == nil {
			ver, from = strings.TrimSpace(string(data)), versionFile
		}
	}
	if ver != "" {
		v, err := parseVersion(ver)
		if err != nil {
			return version{}, fmt.Errorf("%s: %w", from, err)
		}
		if _, err := notesFor(sections, changelog, v); err != nil {
			return version{}, err
		}
		logf("%s: well-formed; has the entry of %s (%s)", changelog, v.tag, from)
		return v, nil
	}
	latest, ok := latestEntry(sections)
	if !ok || latest.body == "" {
		return version{}, fmt.Errorf("%s: the latest entry is empty", changelog)
	}
	logf("%s: well-formed; latest entry %q has %d lines", changelog, latest.heading, strings.Count(latest.body, "\n")+1)
	if latest.name == unreleased {
		return parseVersion("v0.0.0-release-check")
	}
	return parseVersion("v" + strings.TrimPrefix(latest.name, "v"))
}
