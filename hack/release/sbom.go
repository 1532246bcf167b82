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
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sbomSpec says what one SBOM describes: the Go application in one platform's
// image of a release image.
type sbomSpec struct {
	tool       string // cyclonedx-gomod
	moduleDir  string // the module root
	main       string // the main package, relative to moduleDir (cmd, cmd/demo-app)
	repository string // ghcr.io/budgetgate/manager
	tag        string // v0.2.0
	index      string // the image index's digest
	platform   platformManifest
	commit     string
	created    time.Time
}

// property is a CycloneDX name/value property.
type property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// properties are what an SBOM says about its image, in metadata.properties:
// cyclonedx-gomod describes the Go module and cannot name the image it ends
// up in.
func (s sbomSpec) properties() []property {
	name := s.repository[strings.LastIndex(s.repository, "/")+1:]
	return []property{
		{"budgetgate:image:reference", s.repository + ":" + s.tag + "@" + s.index},
		{"budgetgate:image:digest", s.index},
		{"budgetgate:image:platform", s.platform.platform},
		{"budgetgate:image:platform-digest", s.platform.digest},
		{"budgetgate:image:purl", "pkg:oci/" + name + "@" + strings.Replace(s.index, ":", "%3A", 1) +
			"?repository_url=" + s.repository + "&tag=" + s.tag},
		{"budgetgate:source:commit", s.commit},
	}
}

// serial is the SBOM's serial number, derived from what it describes, so that
// the same release gives the same SBOM (a UUID of version 8, "custom").
func (s sbomSpec) serial() string {
	h := sha256.Sum256([]byte(strings.Join([]string{"budgetgate-sbom", s.repository, s.index,
		s.platform.platform, s.platform.digest}, "\x00")))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// generateSBOM runs cyclonedx-gomod in app mode for the main package with the
// platform's GOOS/GOARCH (its module selection and build properties follow
// them), without timestamp, then annotates the result.
func generateSBOM(s sbomSpec) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "release-sbom-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	parts := strings.Split(s.platform.platform, "/")
	env := []string{"GOOS=" + parts[0], "GOARCH=" + parts[1], "CGO_ENABLED=0"}
	if len(parts) > 2 && parts[1] == "arm" {
		env = append(env, "GOARM="+strings.TrimPrefix(parts[2], "v"))
	}
	out := filepath.Join(tmp, "bom.json")
	if _, err := run(s.moduleDir, env, s.tool, "app", "-json", "-licenses", "-notimestamp", "-serial", s.serial(),
		"-main", s.main, "-output", out, "."); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return annotateSBOM(data, s.created, s.properties())
}

// annotateSBOM sets metadata.timestamp and adds props to metadata.properties
// of a CycloneDX JSON document, keeping the order of every other field.
func annotateSBOM(data []byte, timestamp time.Time, props []property) ([]byte, error) {
	top, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	rawMeta, ok := top.get("metadata")
	if !ok {
		return nil, errors.New("SBOM has no metadata")
	}
	meta, err := parseObject(rawMeta)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var existing []property
	if raw, ok := meta.get("properties"); ok {
		if err := json.Unmarshal(raw, &existing); err != nil {
			return nil, fmt.Errorf("metadata.properties: %w", err)
		}
	}
	merged := make([]property, 0, len(existing)+len(props))
	for _, p := range existing {
		if !strings.HasPrefix(p.Name, "budgetgate:") {
			merged = append(merged, p)
		}
	}
	merged = append(merged, props...)
	rawProps, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	rawTime, err := json.Marshal(timestamp.UTC().Format(time.RFC3339))
	if err != nil {
		return nil, err
	}
	meta = append(object{{"timestamp", rawTime}}, meta.without("timestamp")...)
	meta.set("properties", rawProps)
	top.set("metadata", meta.marshal())
	var out bytes.Buffer
	if err := json.Indent(&out, top.marshal(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// member is one name/value pair of a JSON object.
type member struct {
	key   string
	value json.RawMessage
}

// object is a JSON object that keeps the order of its members.
type object []member

func parseObject(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object (%v)", err)
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("want a member name, got %v", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		o = append(o, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

func (o object) without(key string) object {
	var out object
	for _, m := range o {
		if m.key != key {
			out = append(out, m)
		}
	}
	return out
}

// set replaces the value of key, or appends key.
func (o *object) set(key string, value json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].value = value
			return
		}
	}
	*o = append(*o, member{key, value})
}

func (o object) marshal() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}
