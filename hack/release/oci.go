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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

const (
	mediaTypeOCIIndex = "application/vnd.oci.image.index.v1+json"
	// maxMetadataBlob bounds what readOCIArchive keeps in memory: index.json
	// and the image index, never the layers.
	maxMetadataBlob = 1 << 20
	digestPrefix    = "sha256:"
)

// platformManifest is the image of one platform in a multi-platform index.
type platformManifest struct {
	platform string // os/arch[/variant]
	digest   string
}

// ociArchive is what a release needs to know of an OCI image layout tar
// written by hack/image.
type ociArchive struct {
	name      string // io.containerd.image.name, e.g. ghcr.io/budgetgate/manager:v0.2.0
	digest    string // the image index's digest: what a multi-platform pull resolves
	platforms []platformManifest
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant,omitempty"`
	} `json:"platform,omitempty"`
}

type ociIndex struct {
	Manifests []ociDescriptor `json:"manifests"`
}

// readOCIArchive reads the image index of an OCI layout tar holding one
// multi-platform image, checking the index blob against its digest.
func readOCIArchive(file string) (ociArchive, error) {
	f, err := os.Open(file)
	if err != nil {
		return ociArchive{}, err
	}
	defer func() { _ = f.Close() }()
	small := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ociArchive{}, fmt.Errorf("%s: %w", file, err)
		}
		if h.Typeflag != tar.TypeReg || h.Size > maxMetadataBlob {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return ociArchive{}, fmt.Errorf("%s: %s: %w", file, h.Name, err)
		}
		small[path.Clean(h.Name)] = data
	}
	var top ociIndex
	if err := json.Unmarshal(small["index.json"], &top); err != nil {
		return ociArchive{}, fmt.Errorf("%s: index.json: %w", file, err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != mediaTypeOCIIndex {
		return ociArchive{}, fmt.Errorf("%s: want one multi-platform image index in index.json, got %d entries",
			file, len(top.Manifests))
	}
	a := ociArchive{name: top.Manifests[0].Annotations["io.containerd.image.name"], digest: top.Manifests[0].Digest}
	blob, err := blobOf(small, a.digest)
	if err != nil {
		return ociArchive{}, fmt.Errorf("%s: %w", file, err)
	}
	var idx ociIndex
	if err := json.Unmarshal(blob, &idx); err != nil {
		return ociArchive{}, fmt.Errorf("%s: image index: %w", file, err)
	}
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			return ociArchive{}, fmt.Errorf("%s: manifest %s has no platform", file, m.Digest)
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			p += "/" + m.Platform.Variant
		}
		a.platforms = append(a.platforms, platformManifest{platform: p, digest: m.Digest})
	}
	if len(a.platforms) == 0 {
		return ociArchive{}, fmt.Errorf("%s: the image index lists no images", file)
	}
	return a, nil
}

// blobOf returns the blob of digest from the layout's files, verified.
func blobOf(files map[string][]byte, digest string) ([]byte, error) {
	hexDigest, ok := strings.CutPrefix(digest, digestPrefix)
	if !ok {
		return nil, fmt.Errorf("digest %q is not sha256", digest)
	}
	blob, ok := files["blobs/sha256/"+hexDigest]
	if !ok {
		return nil, fmt.Errorf("blob %s missing", digest)
	}
	sum := sha256.Sum256(blob)
	if hex.EncodeToString(sum[:]) != hexDigest {
		return nil, fmt.Errorf("blob %s does not match its digest", digest)
	}
	return blob, nil
}

// readImageDigestFile reads the "REFERENCE DIGEST PATH" line hack/image
// prints (bin/images/NAME.digest).
func readImageDigestFile(file string) (ref, digest string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 || !strings.HasPrefix(fields[1], digestPrefix) {
		return "", "", fmt.Errorf("%s: want \"REFERENCE sha256:... PATH\", got %q", file, strings.TrimSpace(string(data)))
	}
	return fields[0], fields[1], nil
}

// checkStamped fails unless the binary carries the release version and commit
// (-X .../internal/version.Version and .Commit).
func checkStamped(binary, version, commit string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	for _, want := range []string{version, commit} {
		if !bytes.Contains(data, []byte(want)) {
			return fmt.Errorf("%s does not contain %q: was it built with the release's -ldflags -X?", binary, want)
		}
	}
	return nil
}
