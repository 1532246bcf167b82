// Package version is the version of budgetgate's binaries, set at build time:
//
//	go build -ldflags "-X github.com/budgetgate/budgetgate/internal/version.Version=v0.2.0
//	  -X github.com/budgetgate/budgetgate/internal/version.Commit=$(git rev-parse HEAD)"
//
// Without ldflags it reports the module version and VCS revision Go embedded.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set with -ldflags -X.
var (
	Version = ""
	Commit  = ""
)

func init() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		Version = info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && Commit == "" {
			Commit = s.Value
		}
	}
	if Version == "" {
		Version = "dev"
	}
}

// String describes a binary: "budgetgate manager v0.2.0 (commit abc1234, go1.26.8 linux/amd64)".
func String(binary string) string {
	commit := Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("budgetgate %s %s (commit %s, %s %s/%s)", binary, Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
