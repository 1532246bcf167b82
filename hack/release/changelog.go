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
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// unreleased is the name of the section that collects changes not yet released.
const unreleased = "Unreleased"

var (
	// headingRE is a keep-a-changelog version heading: "## [0.2.0] - 2026-12-02".
	headingRE = regexp.MustCompile(`^## \[([^\]]*)\](.*)$`)
	// dateRE is what follows the version of a released section.
	dateRE = regexp.MustCompile(`^ - ([0-9]{4}-[0-9]{2}-[0-9]{2})$`)
	// linkRefRE is a Markdown link reference definition, as at the end of a
	// keep-a-changelog file: "[0.2.0]: https://github.com/...".
	linkRefRE = regexp.MustCompile(`^\[[^\]]+\]:\s*\S+`)
)

// section is one "## [...]" section of CHANGELOG.md.
type section struct {
	name    string // "Unreleased" or a version without the v ("0.2.0"); "" for a heading without brackets
	heading string // the heading line
	line    int    // 1-based line of the heading
	body    string // the lines up to the next "## " heading, trimmed, without trailing link references
}

// parseChangelog splits a keep-a-changelog file into its level-2 sections.
// Headings inside fenced code blocks do not count.
func parseChangelog(text string) []section {
	var (
		sections []section
		cur      *section
		body     []string
		fenced   bool
	)
	flush := func() {
		if cur != nil {
			cur.body = trimBody(body)
			sections = append(sections, *cur)
		}
		body = nil
	}
	for i, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(l, "## ") {
			flush()
			cur = &section{heading: l, line: i + 1}
			if m := headingRE.FindStringSubmatch(l); m != nil {
				cur.name = m[1]
			}
			continue
		}
		if cur != nil {
			body = append(body, l)
		}
	}
	flush()
	return sections
}

// trimBody drops leading blank lines and trailing blank lines and link
// reference definitions.
func trimBody(lines []string) string {
	start, end := 0, len(lines)
	for start < end && strings.TrimSpace(lines[start]) == "" {
		start++
	}
	for end > start && (strings.TrimSpace(lines[end-1]) == "" || linkRefRE.MatchString(lines[end-1])) {
		end--
	}
	return strings.Join(lines[start:end], "\n")
}

// missingSectionHelp says how to add the section of a release.
func missingSectionHelp(path string, v version) string {
	return fmt.Sprintf("add it before releasing: in %s, move the entries of \"## [%s]\" under a new heading "+
		"\"## [%s] - YYYY-MM-DD\" (the release date) just below it, leave \"## [%s]\" empty above it, "+
		"add the link reference \"[%s]: https://github.com/budgetgate/budgetgate/releases/tag/%s\" at the end, "+
		"commit, then tag %s (docs/release.md)",
		path, unreleased, v.chart(), unreleased, v.chart(), v.tag, v.tag)
}

// notesFor is the body of the section of v ("## [0.2.0]"; "## [v0.2.0]" is
// accepted too).
func notesFor(sections []section, path string, v version) (string, error) {
	for _, s := range sections {
		if s.name != v.chart() && s.name != v.tag {
			continue
		}
		if s.body == "" {
			return "", fmt.Errorf("%s:%d: the section %q is empty; write what changed in %s under it",
				path, s.line, s.heading, v.tag)
		}
		return s.body, nil
	}
	return "", fmt.Errorf("%s has no \"## [%s]\" section; %s", path, v.chart(), missingSectionHelp(path, v))
}

// checkChangelog checks the structure of CHANGELOG.md: [Unreleased] first,
// then released versions with their dates, each once, newest first.
func checkChangelog(sections []section, path string) error {
	if len(sections) == 0 {
		return fmt.Errorf("%s has no \"## [...]\" sections; start it with \"## [%s]\"", path, unreleased)
	}
	var problems []string
	if sections[0].name != unreleased {
		problems = append(problems, fmt.Sprintf("%s:%d: the first section must be \"## [%s]\", not %q",
			path, sections[0].line, unreleased, sections[0].heading))
	}
	var prev *version
	seen := map[string]int{}
	for _, s := range sections {
		if line, ok := seen[s.name]; ok {
			problems = append(problems, fmt.Sprintf("%s:%d: %q again (first at line %d)", path, s.line, s.heading, line))
			continue
		}
		seen[s.name] = s.line
		if s.name == unreleased {
			if s.heading != "## ["+unreleased+"]" {
				problems = append(problems, fmt.Sprintf("%s:%d: want \"## [%s]\", got %q", path, s.line, unreleased, s.heading))
			}
			continue
		}
		v, err := checkReleasedHeading(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", path, s.line, err))
			continue
		}
		if prev != nil && v.compare(*prev) >= 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: %s is listed below %s; newest first", path, s.line, v.tag, prev.tag))
		}
		prev = &v
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// checkReleasedHeading checks "## [0.2.0] - 2026-12-02" and returns its version.
func checkReleasedHeading(s section) (version, error) {
	m := headingRE.FindStringSubmatch(s.heading)
	if m == nil {
		return version{}, fmt.Errorf("heading %q: want \"## [X.Y.Z] - YYYY-MM-DD\"", s.heading)
	}
	v, err := parseVersion("v" + strings.TrimPrefix(m[1], "v"))
	if err != nil {
		return version{}, fmt.Errorf("heading %q: %w", s.heading, err)
	}
	d := dateRE.FindStringSubmatch(m[2])
	if d == nil {
		return version{}, fmt.Errorf("heading %q: want \" - YYYY-MM-DD\" after the version", s.heading)
	}
	if _, err := time.Parse(time.DateOnly, d[1]); err != nil {
		return version{}, fmt.Errorf("heading %q: %w", s.heading, err)
	}
	if s.body == "" {
		return version{}, fmt.Errorf("the section %q is empty", s.heading)
	}
	return v, nil
}

// latestEntry is the newest released section, or [Unreleased] before the
// first release.
func latestEntry(sections []section) (section, bool) {
	for _, s := range sections {
		if s.name != unreleased {
			return s, true
		}
	}
	for _, s := range sections {
		if s.name == unreleased {
			return s, true
		}
	}
	return section{}, false
}
