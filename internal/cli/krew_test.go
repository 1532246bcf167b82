package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

// The krew manifest, rendered as krew-release-bot renders it for a tag, is
// a krew Plugin that installs kubectl-budgetgate on every platform.
func TestKrewManifest(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "plugins", "krew", "budgetgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const tag = "v0.2.0"
	tmpl, err := template.New("krew").Funcs(template.FuncMap{
		// krew-release-bot: the URL (itself a template) and its archive's sha256.
		"addURIAndSha": func(url, tag string) string {
			return "uri: " + strings.ReplaceAll(url, "{{ .TagName }}", tag) + "\n      sha256: " + strings.Repeat("5e", 32)
		},
	}).Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]string{"TagName": tag}); err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name string }
		Spec       struct {
			Version          string
			Homepage         string
			ShortDescription string `json:"shortDescription"`
			Description      string
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				}
				URI    string
				Sha256 string
				Bin    string
				Files  []struct{ From, To string }
			}
		}
	}
	if err := yaml.UnmarshalStrict(out.Bytes(), &m); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "budgetgate" || m.Spec.Version != tag {
		t.Errorf("%s %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name, m.Spec.Version)
	}
	if n := len(m.Spec.ShortDescription); n == 0 || n > 60 {
		t.Errorf("shortDescription of %d characters (krew's index wants a short one)", n)
	}
	platforms := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		osArch := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		platforms[osArch] = true
		bin, ext := "kubectl-budgetgate", ".tar.gz"
		if p.Selector.MatchLabels["os"] == "windows" {
			bin, ext = bin+".exe", ".zip"
		}
		want := "https://github.com/budgetgate/budgetgate/releases/download/" + tag + "/kubectl-budgetgate_" + tag + "_" + strings.ReplaceAll(osArch, "/", "_") + ext
		if p.URI != want || len(p.Sha256) != 64 || p.Bin != bin {
			t.Errorf("%s: uri %s (want %s), sha256 %q, bin %s", osArch, p.URI, want, p.Sha256, p.Bin)
		}
		if len(p.Files) != 2 || p.Files[0].From != bin || p.Files[1].From != "LICENSE" {
			t.Errorf("%s: files %v", osArch, p.Files)
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"} {
		if !platforms[want] {
			t.Errorf("no %s", want)
		}
	}
}
