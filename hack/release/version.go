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
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// semverRE is Semantic Versioning 2.0.0 with a leading v and without build
// metadata: vMAJOR.MINOR.PATCH[-PRERELEASE].
var semverRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?$`)

// maxTagLength is the longest image tag the OCI distribution spec allows.
const maxTagLength = 128

// version is a release version: the git tag and image tag (v0.2.0) and, without
// the v, the chart version and the CHANGELOG heading (0.2.0).
type version struct {
	tag                 string
	major, minor, patch int
	prerelease          string
}

// parseVersion accepts exactly the versions a release may have, and says how
// to fix any other.
func parseVersion(s string) (version, error) {
	const want = "want semantic versioning with a leading v: vMAJOR.MINOR.PATCH[-PRERELEASE], e.g. v0.2.0 or v0.3.0-rc.1"
	switch {
	case s == "":
		return version{}, fmt.Errorf("VERSION is not set: make release VERSION=v0.2.0 (%s)", want)
	case strings.Contains(s, "+"):
		return version{}, fmt.Errorf("VERSION %q has build metadata (+...), which an image tag cannot carry; %s", s, want)
	case !strings.HasPrefix(s, "v") && semverRE.MatchString("v"+s):
		return version{}, fmt.Errorf("VERSION %q has no leading v: use v%s", s, s)
	case len(s) > maxTagLength:
		return version{}, fmt.Errorf("VERSION %q is longer than an image tag may be (%d characters)", s, maxTagLength)
	}
	m := semverRE.FindStringSubmatch(s)
	if m == nil {
		return version{}, fmt.Errorf("VERSION %q is not a release version: %s", s, want)
	}
	v := version{tag: s, prerelease: m[4]}
	var err error
	for i, p := range []*int{&v.major, &v.minor, &v.patch} {
		if *p, err = strconv.Atoi(m[i+1]); err != nil {
			return version{}, fmt.Errorf("VERSION %q: %w", s, err)
		}
	}
	return v, nil
}

// chart is the version without the v: the chart's version and the CHANGELOG
// heading.
func (v version) chart() string { return strings.TrimPrefix(v.tag, "v") }

// compare orders versions as Semantic Versioning 2.0.0 does: a pre-release
// precedes its release, numeric identifiers compare numerically and precede
// alphanumeric ones.
func (v version) compare(o version) int {
	for _, d := range []int{v.major - o.major, v.minor - o.minor, v.patch - o.patch} {
		if d != 0 {
			return sign(d)
		}
	}
	switch {
	case v.prerelease == o.prerelease:
		return 0
	case v.prerelease == "":
		return 1
	case o.prerelease == "":
		return -1
	}
	a, b := strings.Split(v.prerelease, "."), strings.Split(o.prerelease, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareIdentifier(a[i], b[i]); c != 0 {
			return c
		}
	}
	return sign(len(a) - len(b))
}

func compareIdentifier(a, b string) int {
	na, errA := strconv.Atoi(a)
	nb, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return sign(na - nb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func sign(d int) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}
