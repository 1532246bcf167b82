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

// Command image writes OCI images of static binaries without a container
// engine: one layer holding the binary (plus an empty /tmp and a passwd/group
// naming the non-root user), on an empty base, for one or more platforms.
//
//	go run ./hack/image build \
//	    --binary 'bin/images/build/manager-{os}-{arch}' \
//	    --platform linux/amd64,linux/arm64 \
//	    --name budgetgate/manager --tag v0.1.0 \
//	    --out bin/images/manager.tar
//
// The result is an OCI image layout in a tar (oci-layout, index.json,
// blobs/sha256/...) whose index.json points at a multi-platform image index and
// names it twice: io.containerd.image.name (the full reference, e.g.
// docker.io/budgetgate/manager:v0.1.0, which `ctr images import` uses as the
// image's name) and org.opencontainers.image.ref.name (the tag, for other OCI
// tools). `ctr -n k8s.io images import FILE` loads it as is; so does
// `docker load` (Docker 25+). --format docker writes a docker-archive tarball
// (manifest.json with RepoTags) instead, for one platform.
//
// Images are reproducible: every timestamp (the layer's files, the config's
// created time, the history) is SOURCE_DATE_EPOCH, or the Unix epoch when it is
// unset, file owners and modes are fixed, and the tar and gzip streams are
// written deterministically. The same binaries and flags give the same digest.
// It prints the reference and the digest of what it wrote on stdout:
//
//	docker.io/budgetgate/manager:v0.1.0 sha256:... bin/images/manager.tar
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Output formats, and the owner of every file in the images and tars.
const (
	formatOCI    = "oci"
	formatDocker = "docker"
	owner        = "root"
)

const usage = `usage: go run ./hack/image build [flags]

Writes an OCI image of a static binary (see the package documentation).
Flags of build:
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	binary     string
	platforms  []v1.Platform
	ref        name.Tag
	imageName  string // the full reference containerd and the kubelet use
	path       string
	out        string
	format     string
	user       string
	entrypoint []string
	cmd        []string
	env        []string
	labels     map[string]string
	ports      []string
	created    time.Time
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "build" {
		fmt.Fprint(os.Stderr, usage)
		newFlags(&rawFlags{}).PrintDefaults()
		os.Exit(2)
	}
	var raw rawFlags
	fset := newFlags(&raw)
	if err := fset.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	opts, err := raw.options()
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(2)
	}
	digest, err := build(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", opts.imageName, digest, opts.out)
}

// rawFlags are the command-line flags before validation.
type rawFlags struct {
	binary, platforms, name, tag, path, out, format, user string
	entrypoint, cmd                                       string
	version, source, revision                             string
	env, labels, ports                                    stringList
}

func newFlags(r *rawFlags) *flag.FlagSet {
	f := flag.NewFlagSet("build", flag.ContinueOnError)
	f.StringVar(&r.binary, "binary", "",
		"Static binary to put in the image. With several platforms, a template: "+
			"{os}, {arch} and {variant} are replaced per platform.")
	f.StringVar(&r.platforms, "platform", "linux/amd64",
		"Comma-separated platforms (os/arch[/variant]). "+
			"More than one gives a multi-platform image index.")
	f.StringVar(&r.name, "name", "",
		"Repository, e.g. budgetgate/manager (docker.io/ is added when no registry is given).")
	f.StringVar(&r.tag, "tag", "latest", "Tag of the image.")
	f.StringVar(&r.path, "path", "", "Where the binary lands in the image (default /<name of the binary>).")
	f.StringVar(&r.out, "out", "", "Output tar file.")
	f.StringVar(&r.format, "format", formatOCI,
		"oci (OCI image layout tar, all platforms) or docker (docker-archive tarball, one platform).")
	f.StringVar(&r.user, "user", "65532:65532", "User (uid:gid) the image runs as.")
	f.StringVar(&r.entrypoint, "entrypoint", "", "Comma-separated entrypoint (default: the binary's path).")
	f.StringVar(&r.cmd, "cmd", "", "Comma-separated default arguments (CMD).")
	f.StringVar(&r.version, "version", "", "org.opencontainers.image.version label (default: the tag).")
	f.StringVar(&r.source, "source", "", "org.opencontainers.image.source label (e.g. the repository URL).")
	f.StringVar(&r.revision, "revision", "", "org.opencontainers.image.revision label (e.g. the git commit).")
	f.Var(&r.env, "env", "KEY=value environment variable of the image (repeatable).")
	f.Var(&r.labels, "label", "KEY=value label of the image (repeatable).")
	f.Var(&r.ports, "expose", "Exposed port, e.g. 8099/tcp (repeatable).")
	return f
}

func (r rawFlags) options() (*options, error) {
	if r.binary == "" || r.name == "" || r.out == "" {
		return nil, errors.New("--binary, --name and --out are required")
	}
	ref, err := name.NewTag(r.name + ":" + r.tag)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w", r.name+":"+r.tag, err)
	}
	// Name the image as containerd and the kubelet do: a reference without a
	// registry lives on docker.io (ggcr says index.docker.io).
	registry := ref.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	o := &options{binary: r.binary, ref: ref, path: r.path,
		imageName: registry + "/" + ref.RepositoryStr() + ":" + ref.TagStr(), out: r.out, format: r.format, user: r.user,
		env: r.env, ports: r.ports, labels: map[string]string{}}
	for p := range strings.SplitSeq(r.platforms, ",") {
		plat, err := v1.ParsePlatform(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		o.platforms = append(o.platforms, *plat)
	}
	if len(o.platforms) > 1 && !strings.Contains(r.binary, "{arch}") {
		return nil, errors.New("several platforms need a --binary template with {arch}")
	}
	if o.format != formatOCI && o.format != formatDocker {
		return nil, fmt.Errorf("--format %q: want oci or docker", o.format)
	}
	if o.format == formatDocker && len(o.platforms) != 1 {
		return nil, errors.New("--format docker holds one platform; pass one --platform")
	}
	if o.path == "" {
		o.path = "/" + filepath.Base(strings.NewReplacer("-{os}", "", "-{arch}", "", "-{variant}", "").Replace(r.binary))
	}
	if !path.IsAbs(o.path) {
		return nil, fmt.Errorf("--path %q must be absolute", o.path)
	}
	o.entrypoint = []string{o.path}
	if r.entrypoint != "" {
		o.entrypoint = strings.Split(r.entrypoint, ",")
	}
	if r.cmd != "" {
		o.cmd = strings.Split(r.cmd, ",")
	}
	for _, l := range r.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("--label %q: want KEY=value", l)
		}
		o.labels[k] = v
	}
	version := r.version
	if version == "" {
		version = ref.TagStr()
	}
	o.labels["org.opencontainers.image.version"] = version
	if r.source != "" {
		o.labels["org.opencontainers.image.source"] = r.source
	}
	if r.revision != "" {
		o.labels["org.opencontainers.image.revision"] = r.revision
	}
	o.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		o.created = time.Unix(sec, 0).UTC()
	}
	o.labels["org.opencontainers.image.created"] = o.created.Format(time.RFC3339)
	return o, nil
}

// build writes the image and returns the digest that names it: the image
// index's for --format oci, the manifest's for --format docker.
func build(o *options) (v1.Hash, error) {
	var adds []mutate.IndexAddendum
	images := map[string]v1.Image{}
	for _, p := range o.platforms {
		bin := strings.NewReplacer("{os}", p.OS, "{arch}", p.Architecture, "{variant}", p.Variant).Replace(o.binary)
		img, err := platformImage(o, p, bin)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", p.String(), err)
		}
		images[p.String()] = img
		pp := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pp}})
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return v1.Hash{}, err
	}
	if o.format == formatDocker {
		img := images[o.platforms[0].String()]
		tmp := o.out + ".tmp"
		if err := tarball.MultiRefWriteToFile(tmp, map[name.Reference]v1.Image{o.ref: img}); err != nil {
			return v1.Hash{}, err
		}
		if err := os.Rename(tmp, o.out); err != nil {
			return v1.Hash{}, err
		}
		return img.Digest()
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	idx = mutate.Annotations(idx, map[string]string{
		"org.opencontainers.image.created": o.created.Format(time.RFC3339),
	}).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := writeLayoutTar(o, idx); err != nil {
		return v1.Hash{}, err
	}
	for _, p := range o.platforms {
		d, _ := images[p.String()].Digest()
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", p.String(), d)
	}
	return digest, nil
}

// platformImage is the one-layer image of bin for platform p.
func platformImage(o *options, p v1.Platform, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layerTar, err := layerTar(o, data)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: o.created},
			CreatedBy: "hack/image: " + o.path,
			Comment:   "static binary",
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: o.created}
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Author = ""
	cfg.Config = v1.Config{
		Entrypoint: o.entrypoint,
		Cmd:        o.cmd,
		User:       o.user,
		WorkingDir: "/",
		Env:        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, o.env...),
		Labels:     o.labels,
	}
	if len(o.ports) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, port := range o.ports {
			if !strings.Contains(port, "/") {
				port += "/tcp"
			}
			cfg.Config.ExposedPorts[port] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cfg)
}

// layerTar is the uncompressed layer: /tmp (1777), /etc/passwd and /etc/group
// naming root and the image's user "nonroot", and the binary (0755, root).
func layerTar(o *options, binary []byte) ([]byte, error) {
	uid, gid := "65532", "65532"
	if u, g, ok := strings.Cut(o.user, ":"); ok {
		uid, gid = u, g
	} else if o.user != "" {
		uid = o.user
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n"+
		"nonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%s:\n", gid)
	type entry struct {
		name string
		mode int64
		dir  bool
		data []byte
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	// The binary's parent directories, then the binary.
	rel := strings.TrimPrefix(path.Clean(o.path), "/")
	for d := path.Dir(rel); d != "." && d != "etc" && d != "tmp"; d = path.Dir(d) {
		entries = append(entries, entry{name: d + "/", mode: 0o755, dir: true})
	}
	entries = append(entries, entry{name: rel, mode: 0o755, data: binary})
	slices.SortStableFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, ModTime: o.created, Format: tar.FormatPAX,
			Uid: 0, Gid: 0, Uname: owner, Gname: owner,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayoutTar writes idx as an OCI image layout (via ggcr's layout package,
// in a scratch directory) and packs it into o.out with sorted entries, fixed
// times and owners, so the tar file itself is reproducible too.
func writeLayoutTar(o *options, idx v1.ImageIndex) error {
	dir, err := os.MkdirTemp("", "image-layout-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          o.imageName,
		"org.opencontainers.image.ref.name": o.ref.TagStr(),
	})); err != nil {
		return err
	}
	var files []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			files = append(files, p)
		}
		return nil
	}); err != nil {
		return err
	}
	slices.Sort(files)

	tmp := o.out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: o.created, Format: tar.FormatPAX, Uname: owner, Gname: owner}
		if st.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, in)
		_ = in.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, o.out)
}
