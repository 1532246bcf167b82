// Package testbin tells tests where the binaries that hack/ gets into bin/
// are, at the versions pinned in hack/versions.env, so that no test spells a
// version (hack/get.sh gets them; docs/development.md, "How binaries are
// obtained offline").
//
// Pins are read as the scripts read them: KEY=value lines of
// hack/versions.env, and a non-empty environment variable of the same name
// wins (K8S_VERSION=v1.37.1 go test ...).
package testbin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// VersionsFile is the versions file, relative to the module root.
const VersionsFile = "hack/versions.env"

// Root is the module root: the nearest directory above the working directory
// that holds go.mod.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

var keyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Versions returns every pin of hack/versions.env, environment overrides
// applied.
func Versions() (map[string]string, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(root, VersionsFile))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	pins := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok || !keyRE.MatchString(key) {
			continue
		}
		if env := os.Getenv(key); env != "" {
			val = env
		}
		pins[key] = val
	}
	return pins, sc.Err()
}

// Version returns the pin KEY of hack/versions.env (or its environment
// override).
func Version(key string) (string, error) {
	pins, err := Versions()
	if err != nil {
		return "", err
	}
	v, ok := pins[key]
	if !ok || v == "" {
		return "", fmt.Errorf("%s pins no %s", VersionsFile, key)
	}
	return v, nil
}

// K8sDir is bin/k8s/<K8S_VERSION without v>-<GOOS>-<GOARCH>, where
// hack/k8s-binaries.sh and `make envtest-binaries` put etcd, kube-apiserver,
// kubectl and the other Kubernetes binaries (setup-envtest's layout).
func K8sDir() (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	v, err := Version("K8S_VERSION")
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "k8s", strings.TrimPrefix(v, "v")+"-"+runtime.GOOS+"-"+runtime.GOARCH), nil
}

// EnvtestAssets is the directory envtest starts etcd and kube-apiserver from:
// $KUBEBUILDER_ASSETS when set (make test-envtest sets it), else K8sDir. It
// fails, naming the make target, when the binaries are not there.
func EnvtestAssets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		var err error
		if dir, err = K8sDir(); err != nil {
			return "", err
		}
	}
	var errs []error
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if err := executable(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("no envtest binaries (run `make envtest-binaries`, or set KUBEBUILDER_ASSETS): %w", err)
	}
	return dir, nil
}

// Kubectl is K8sDir's kubectl.
func Kubectl() (string, error) {
	dir, err := K8sDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kubectl"), nil
}

// PrometheusDir is bin/prometheus, where hack/prometheus.sh (make prometheus)
// puts prometheus and promtool at PROMETHEUS_VERSION.
func PrometheusDir() (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "prometheus"), nil
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
