package testbin

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestVersionsFileFormat(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, VersionsFile))
	if err != nil {
		t.Fatal(err)
	}
	// Every line is a comment, blank, or KEY=value with nothing a shell or make
	// would read differently from this package: no quotes, spaces, $ or #.
	line := regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=([A-Za-z0-9._+-]+)$`)
	seen := map[string]bool{}
	for i, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("%s:%d: %q is not KEY=value", VersionsFile, i+1, l)
			continue
		}
		if seen[m[1]] {
			t.Errorf("%s:%d: %s pinned twice", VersionsFile, i+1, m[1])
		}
		seen[m[1]] = true
	}
}

func TestEnvironmentWins(t *testing.T) {
	t.Setenv("K8S_VERSION", "v1.2.3")
	dir, err := K8sDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := "1.2.3-" + runtime.GOOS + "-" + runtime.GOARCH; filepath.Base(dir) != want {
		t.Errorf("K8sDir() = %s, want .../%s", dir, want)
	}
	if _, err := Version("NO_SUCH_PIN"); err == nil {
		t.Error("Version(NO_SUCH_PIN) did not fail")
	}
}

// TestPinsThatFollow checks the two pins that cannot live in hack/versions.env
// alone: go.mod's go-containerregistry (the Go code imports it) and the
// Prometheus image test/demo/kind names (hack/kind.sh and hack/real.sh tag
// or pull prom/prometheus:v$PROMETHEUS_RELEASE under that name).
func TestPinsThatFollow(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"GO_CONTAINERREGISTRY_VERSION", "PROMETHEUS_RELEASE"} {
		t.Setenv(key, "") // the file, not an override
	}
	ggcr, err := Version("GO_CONTAINERREGISTRY_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	req := regexp.MustCompile(`(?m)^(?:require)?\s*github\.com/google/go-containerregistry\s+(\S+)`).FindSubmatch(data)
	if req == nil {
		t.Errorf("go.mod does not require github.com/google/go-containerregistry: drop GO_CONTAINERREGISTRY_VERSION's note in %s", VersionsFile)
	} else if string(req[1]) != ggcr {
		t.Errorf("go.mod requires github.com/google/go-containerregistry %s, %s pins GO_CONTAINERREGISTRY_VERSION=%s", req[1], VersionsFile, ggcr)
	}

	release, err := Version("PROMETHEUS_RELEASE")
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(root, "test", "demo", "kind", "prometheus.yaml")
	data, err = os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s*image:\s*(prom/prometheus:\S+)\s*$`).FindAllStringSubmatch(string(data), -1)
	if len(images) != 1 {
		t.Fatalf("%s: want one prom/prometheus image, found %d", manifest, len(images))
	}
	if want := "prom/prometheus:v" + release; images[0][1] != want {
		t.Errorf("%s runs %s, %s pins PROMETHEUS_RELEASE=%s: make it %s", manifest, images[0][1], VersionsFile, release, want)
	}
}
