package cli_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/budgetgate/budgetgate/internal/cli"
	"github.com/budgetgate/budgetgate/internal/version"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// run runs kubectl-budgetgate in-process, as cmd/kubectl-budgetgate does,
// with no kubeconfig to find.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	var out, errOut bytes.Buffer
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func importerData(parts ...string) string {
	return filepath.Join(append([]string{"..", "importer", "testdata"}, parts...)...)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test ./internal/cli -update rewrites it):\n%s", path, diff)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "", "--version")
	if err != nil {
		t.Fatal(err)
	}
	if want := version.String("kubectl plugin") + "\n"; out != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
}

func TestNoCommand(t *testing.T) {
	out, _, err := run(t, "")
	if err == nil || err.Error() != "a command is required: status, why, simulate, except, release, import or rules" {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(out, "kubectl budgetgate [flags]") || !strings.Contains(out, "import") {
		t.Errorf("the help is not printed as kubectl budgetgate's:\n%s", out)
	}
}

func TestCompletion(t *testing.T) {
	out, _, err := run(t, "", "completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "__start_kubectl-budgetgate") {
		t.Errorf("no bash completion for kubectl-budgetgate:\n%.300s", out)
	}
	// kubectl's plugin completion (kubectl_complete-budgetgate) calls __complete.
	out, _, err = run(t, "", "__complete", "rules", "-o", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "yaml\njson\n") {
		t.Errorf("completing -o: %q", out)
	}
	out, _, err = run(t, "", "__complete", "imp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "import\t") {
		t.Errorf("completing a command: %q", out)
	}
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
`

// openSLOExact converts without a difference: --strict passes.
const openSLOExact = `apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
spec:
  service: api
  indicator:
    metadata:
      name: api-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="api",code=~"5.."}
        total:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="api"}
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
`

func TestImportErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", openSLOExact+"---\napiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x\n")
	mixed := writeFile(t, "mixed.yaml", openSLOExact+"---\n"+deployment)
	threshold := writeFile(t, "threshold.yaml", `apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-latency
spec:
  service: search
  indicator:
    metadata: {name: p99}
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec:
            query: histogram_quantile(0.99, sum by (le) (rate(search_duration_seconds_bucket[5m])))
  budgetingMethod: Occurrences
  objectives:
    - {op: lt, value: 0.5, target: 0.99}
`)
	plugin := writeFile(t, "plugin.yaml", `version: prometheus/v1
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      plugin:
        id: sloth-common/kubernetes/apiserver/availability
    alerting: {name: APIAvailability}
`)
	danglingRef := writeFile(t, "ref.yaml", strings.Replace(openSLOExact, "  indicator:\n    metadata:\n      name: api-errors\n", "  indicatorRef: api-errors\n  unused:\n", 1))
	target := writeFile(t, "target.yaml", strings.Replace(openSLOExact, "target: 0.999", "target: 0.4", 1))
	empty := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  []string // substrings of the error, in order
	}{
		{"no file", []string{"import"}, "", []string{"no file to import: kubectl budgetgate import FILE... (- reads stdin)"}},
		{"missing file", []string{"import", "missing.yaml"}, "", []string{"stat missing.yaml: no such file or directory"}},
		{"empty directory", []string{"import", "-f", empty}, "", []string{"no .yaml, .yml or .json file in the directory"}},
		{"bad YAML names the document", []string{"import", bad}, "", []string{"bad.yaml: document 2: not valid YAML: yaml: line 31: did not find expected ',' or '}'"}},
		{"unknown kind names the document", []string{"import", mixed}, "", []string{"mixed.yaml: document 2 (line 30), apps/v1 Deployment: unknown kind: apiVersion \"apps/v1\", kind \"Deployment\"; import reads Sloth"}},
		{"unknown kind from stdin", []string{"import", "-"}, deployment, []string{"-: document 1 (line 1), apps/v1 Deployment: unknown kind"}},
		{"no apiVersion", []string{"import", "-"}, "name: x\n", []string{"-: document 1 (line 1): unknown kind: the document has no apiVersion and kind"}},
		{"older OpenSLO", []string{"import", "-"}, "apiVersion: openslo/v1alpha\nkind: SLO\n", []string{"only OpenSLO openslo/v1 is read"}},
		{"budgetgate's own", []string{"import", "-"}, "apiVersion: slo.budgetgate.dev/v1alpha1\nkind: ServiceLevelObjective\n", []string{"is already budgetgate's: apply it as it is"}},
		{"threshold metric", []string{"import", threshold}, "", []string{"threshold.yaml: document 1 (line 1), openslo/v1 SLO: spec.indicator.spec.thresholdMetric: no budgetgate equivalent: budgetgate's SLOs count good and bad events"}},
		{"Sloth SLI plugin", []string{"import", plugin}, "", []string{`SLO "availability" (slos[0]): slos[0].sli.plugin: no budgetgate equivalent: the SLI plugin "sloth-common/kubernetes/apiserver/availability": budgetgate runs no Sloth plugins`}},
		{"reference not in the input", []string{"import", danglingRef}, "", []string{`spec.indicatorRef: no SLI named "api-errors" in the input: give the file that defines it too`}},
		{"target below 50", []string{"import", target}, "", []string{"spec.objectives[0].target: 0.4 (as a percentage: 40.0000)%: budgetgate's targets are at least 50%"}},
		{"several documents fail", []string{"import", mixed, plugin}, "", []string{"2 documents could not be converted:", "mixed.yaml: document 2", "plugin.yaml: document 1"}},
		{"bad output", []string{"import", "-o", "xml", mixed}, "", []string{"-o xml: the formats are yaml and json"}},
		{"bad policy prefix", []string{"import", "--policy-prefix", "Team_A", plugin}, "", []string{`the policy prefix "Team_A": policy names are lower-case letters, digits and -`}},
		{"bad Sloth period", []string{"import", "--sloth-period", "a month", plugin}, "", []string{`the Sloth SLO period: "a month" is not a duration`}},
		{"rules: bad output", []string{"rules", "-o", "wide", "-f", mixed}, "", []string{"-o wide: the formats are  and yaml and json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, tc.stdin, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", out)
			}
			if out != "" {
				t.Errorf("an error, yet stdout is not empty:\n%s", out)
			}
			msg := err.Error()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error\n  %s\ndoes not say\n  %s", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestImportStrict(t *testing.T) {
	// A difference: --strict prints the differences and nothing on stdout.
	out, stderr, err := run(t, "", "import", "--strict", importerData("openslo", "timeslices-calendar-7d.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), "--strict: the output differs from the sources in 3 ways (listed above); nothing written") {
		t.Fatalf("error %v", err)
	}
	if out != "" {
		t.Errorf("--strict failed, yet wrote:\n%s", out)
	}
	for _, want := range []string{
		"ServiceLevelObjective login-availability (from " + importerData("openslo", "timeslices-calendar-7d.yaml") + ", document 1: OpenSLO SLO \"login-availability\"):\n",
		"  differs: spec.timeWindow[0]: a calendar-aligned window of 1w starting 2026-01-05 00:00:00 (Europe/Berlin)",
		"  differs: spec.budgetingMethod: Timeslices: budgetgate's budget is Occurrences",
		"  differs: spec.indicator.spec.ratioMetric.raw: a precomputed success ratio",
		"Converted 1 document into 1 ServiceLevelObjective and 0 ErrorBudgetPolicies: 3 differences, 2 notes (in the comments of the YAML output).\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}

	// None: --strict writes the same as without it.
	strict, stderr, err := run(t, openSLOExact, "import", "--strict", "-")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Converted 1 document into 1 ServiceLevelObjective and 0 ErrorBudgetPolicies: 0 differences, 2 notes (in the comments of the YAML output).\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	plain, _, err := run(t, openSLOExact, "import", "-")
	if err != nil {
		t.Fatal(err)
	}
	if strict != plain {
		t.Errorf("--strict wrote another output:\n%s", cmp.Diff(plain, strict))
	}
}

func TestImportFlags(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"k8s-ratio-30d.yaml", "custom-windows-7d.yaml"} {
		data, err := os.ReadFile(importerData("sloth", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("not read"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A directory, -n, --sloth-period, --policy-prefix, -o json.
	out, _, err := run(t, "", "import", "-f", dir, "-n", "ingest", "--sloth-period", "7d", "--policy-prefix", "data-", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		APIVersion, Kind string
		Items            []struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Spec     struct {
				Window    string
				PolicyRef *struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	var got []string
	for _, it := range list.Items {
		s := it.Kind + " " + it.Metadata.Namespace + "/" + it.Metadata.Name
		if it.Kind == "ServiceLevelObjective" {
			s += " " + it.Spec.Window + " " + it.Spec.PolicyRef.Name
		}
		got = append(got, s)
	}
	// custom-windows-7d.yaml sorts first; with -n ingest, the namespace is
	// Sloth's service there, so the SLO keeps Sloth's name.
	// The custom 7d windows apply to every Sloth SLO; requests-availability
	// has severities, so a policy of its own.
	want := []string{
		"ErrorBudgetPolicy /data-sloth-7d-windows",
		"ErrorBudgetPolicy /data-sloth-7d-windows-2",
		"ServiceLevelObjective ingest/events-accepted 7d data-sloth-7d-windows",
		"ServiceLevelObjective ingest/checkout-requests-availability 7d data-sloth-7d-windows-2",
		"ServiceLevelObjective ingest/checkout-payments-availability 7d data-sloth-7d-windows",
	}
	if list.APIVersion != "v1" || list.Kind != "List" {
		t.Errorf("-o json is a %s %s, want a v1 List", list.APIVersion, list.Kind)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}

func TestRulesOffline(t *testing.T) {
	slos := filepath.Join("testdata", "rules", "slos.yaml")
	out, stderr, err := run(t, "", "rules", "-f", slos)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "rules", "slos.rules.golden"), out)
	if want := `shop/checkout: policy "default" (the policy SLOs without a policyRef use)
shop/storefront-latency: policy "built-in" (its policyRef)
team-a/search: policy "team-a" of ErrorBudgetPolicyBinding "team-a"
`; stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}

	out, _, err = run(t, "", "rules", "checkout", "-f", slos, "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "rules", "checkout.prometheusrule.golden"), out)

	// Without the policy named "default" among the files: the built-in one, said to be an offline guess.
	noDefault := writeFile(t, "slo.yaml", `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: checkout
spec:
  target: "99.9"
  indicator:
    ratio:
      errors: http_requests_total{job="checkout",code=~"5.."}
      total: http_requests_total{job="checkout"}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
`)
	out, stderr, err = run(t, "", "rules", "-f", noDefault, "-n", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if want := "1 object of other kinds ignored\n" +
		`shop/checkout: the built-in policy: no ErrorBudgetPolicy "default" among the files (offline; a cluster's "default" would apply)` + "\n"; stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if !strings.Contains(out, "budgetgate_policy: built-in") || !strings.Contains(out, "sloth_service: shop") {
		t.Errorf("the rules are not the built-in policy's in namespace shop:\n%.2000s", out)
	}
}

func TestRulesErrors(t *testing.T) {
	slos := filepath.Join("testdata", "rules", "slos.yaml")
	missingPolicy := writeFile(t, "slo.yaml", `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: checkout
  namespace: shop
spec:
  target: "99.9"
  policyRef: {name: strict}
  indicator:
    ratio: {errors: 'e{code="500"}', total: e}
`)
	typo := writeFile(t, "typo.yaml", `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: checkout
spec:
  targt: "99.9"
`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"SLO not in the files", []string{"rules", "nope", "-f", slos}, `no ServiceLevelObjective named "nope" in the files given`},
		{"policy not in the files", []string{"rules", "-f", missingPolicy}, `ServiceLevelObjective shop/checkout: ErrorBudgetPolicy "strict" not found (offline: give the file that defines it with -f)`},
		{"unknown field", []string{"rules", "-f", typo}, `typo.yaml: document 1: ServiceLevelObjective: error unmarshaling JSON: while decoding JSON: json: unknown field "targt"`},
		{"-A with -f", []string{"rules", "-A", "-f", slos}, "-A reads the cluster; with -f, every SLO of the files is printed"},
		{"two SLOs named", []string{"rules", "a", "b"}, "accepts at most 1 arg(s), received 2"},
		{"no cluster", []string{"rules", "checkout"}, "no cluster to read: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) names one; give manifests with -f to work offline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("an error, yet stdout is not empty:\n%s", out)
			}
		})
	}
}
