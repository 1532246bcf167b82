package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/testbin"
	bgwebhook "github.com/budgetgate/budgetgate/internal/webhook"
)

// The cluster of these tests is a real kube-apiserver and etcd (envtest)
// with budgetgate's CRDs, the Prometheus Operator's PrometheusRule CRD, and
// budgetgate's validating webhooks served by a manager running only them
// (as test/badinput does): what import writes is checked by the API
// server's schema and CEL rules and by budgetgate's own admission, through
// kubectl apply --dry-run=server as a user would apply it.

var env struct {
	once       sync.Once
	err        error
	testEnv    *envtest.Environment
	cancel     context.CancelFunc
	client     client.Client
	kubeconfig string
	kubectl    string
	dir        string
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if env.testEnv != nil {
		env.cancel()
		if err := env.testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
		_ = os.RemoveAll(env.dir)
	}
	os.Exit(code)
}

// cluster starts the API server once, for the tests that need one.
func cluster(t *testing.T) {
	t.Helper()
	env.once.Do(func() { env.err = startCluster() })
	if env.err != nil {
		t.Fatal(env.err)
	}
}

func startCluster() error {
	assets, err := testbin.EnvtestAssets()
	if err != nil {
		return err
	}
	logf.SetLogger(zap.New(zap.WriteTo(discard{})))
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(slov1alpha1.AddToScheme(scheme))
	env.testEnv = &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join("..", "..", "config", "crd", "bases"),
			filepath.Join("..", "..", "test", "crds", "prometheus-operator"),
		},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join("..", "..", "config", "webhook")}},
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.testEnv.Start()
	if err != nil {
		return err
	}
	if env.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	w := &env.testEnv.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(webhook.Options{Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir}),
	})
	if err != nil {
		return err
	}
	if err := bgwebhook.Setup(mgr, bgwebhook.Options{}); err != nil {
		return err
	}
	var ctx context.Context
	ctx, env.cancel = context.WithCancel(context.Background())
	go func() { _ = mgr.Start(ctx) }()
	addr := net.JoinHostPort(w.LocalServingHost, fmt.Sprint(w.LocalServingPort))
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test dial
		if err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the webhook server did not come up: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if env.dir, err = os.MkdirTemp("", "kubectl-budgetgate-test"); err != nil {
		return err
	}
	env.kubeconfig = filepath.Join(env.dir, "kubeconfig")
	if err := os.WriteFile(env.kubeconfig, env.testEnv.KubeConfig, 0o600); err != nil {
		return err
	}
	env.kubectl = filepath.Join(assets, "kubectl")
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// kubectl runs the kubectl of bin/ (make envtest-binaries) against the
// test's API server; without it the test is skipped, unless
// BUDGETGATE_REQUIRE_KUBECTL is set (make test-envtest sets it).
func kubectl(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if _, err := os.Stat(env.kubectl); err != nil {
		if os.Getenv("BUDGETGATE_REQUIRE_KUBECTL") != "" {
			t.Fatalf("no kubectl at %s (make envtest-binaries gets it)", env.kubectl)
		}
		t.Skipf("no kubectl at %s (make envtest-binaries gets it)", env.kubectl)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(env.kubectl, append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

var warningLine = regexp.MustCompile(`(?m)^Warning: (.*)$`)

// warnings are the admission warnings kubectl printed, each cut to its start.
func warnings(stderr string) []string {
	var out []string
	for _, m := range warningLine.FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1])
	}
	return out
}

// Every output of every import example is applied with kubectl apply
// --dry-run=server, as YAML (with its comments) and as JSON: before its
// policies exist (the SLOs are admitted with a warning that they do not,
// yet) and after, when the SLO webhook checks them against their policies
// (windows, rules that can fire) and may warn only about what import
// already said (a query indicator without queryEvents).
func TestImportRoundTrip(t *testing.T) {
	cluster(t)
	var files []string
	for _, dir := range []string{"sloth", "pyrra", "openslo"} {
		m, err := filepath.Glob(importerData(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 9 {
		t.Fatalf("only %d examples", len(files))
	}
	for _, in := range files {
		t.Run(strings.TrimSuffix(filepath.Base(filepath.Dir(in))+"/"+filepath.Base(in), ".yaml"), func(t *testing.T) {
			yamlOut, _, err := run(t, "", "import", in)
			if err != nil {
				t.Fatal(err)
			}
			jsonOut, _, err := run(t, "", "import", in, "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal([]byte(jsonOut), &list); err != nil {
				t.Fatal(err)
			}
			var policies []json.RawMessage
			var created, unchanged []string
			for _, raw := range list.Items {
				var o struct {
					Kind     string
					Metadata metav1.ObjectMeta
				}
				if err := json.Unmarshal(raw, &o); err != nil {
					t.Fatal(err)
				}
				switch o.Kind {
				case "ErrorBudgetPolicy":
					policies = append(policies, raw)
					created = append(created, "errorbudgetpolicy.slo.budgetgate.dev/"+o.Metadata.Name+" created (server dry run)")
					unchanged = append(unchanged, "errorbudgetpolicy.slo.budgetgate.dev/"+o.Metadata.Name+" unchanged (server dry run)")
				case "ServiceLevelObjective":
					if o.Metadata.Namespace != "" {
						ensureNamespace(t, o.Metadata.Namespace)
					}
					created = append(created, "servicelevelobjective.slo.budgetgate.dev/"+o.Metadata.Name+" created (server dry run)")
					unchanged = append(unchanged, "servicelevelobjective.slo.budgetgate.dev/"+o.Metadata.Name+" created (server dry run)")
				default:
					t.Fatalf("import wrote a %s", o.Kind)
				}
			}
			dir := t.TempDir()
			yamlFile, jsonFile := filepath.Join(dir, "out.yaml"), filepath.Join(dir, "out.json")
			if err := os.WriteFile(yamlFile, []byte(yamlOut), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(jsonFile, []byte(jsonOut), 0o600); err != nil {
				t.Fatal(err)
			}
			apply := func(file string, objects []string, allowed ...string) {
				t.Helper()
				out, stderr, err := kubectl(t, "apply", "--dry-run=server", "-f", file)
				if err != nil {
					t.Fatalf("kubectl apply --dry-run=server -f %s: %v\n%s%s\n%s", filepath.Base(file), err, out, stderr, readFile(t, file))
				}
				if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, objects) {
					t.Errorf("kubectl apply --dry-run=server -f %s printed\n%s\nwant\n%s", filepath.Base(file), out, strings.Join(objects, "\n"))
				}
				for _, w := range warnings(stderr) {
					if !slices.ContainsFunc(allowed, func(a string) bool { return strings.Contains(w, a) }) {
						t.Errorf("kubectl apply --dry-run=server -f %s: warning %q", filepath.Base(file), w)
					}
				}
			}
			// Allowed: what import said (a query indicator without
			// queryEvents, SLOs that select no workloads).
			allowed := []string{"has no queryEvents", "spec.workloadSelector is empty"}
			apply(yamlFile, created, append(allowed, "does not exist yet")...)

			if len(policies) > 0 {
				policiesFile := filepath.Join(dir, "policies.json")
				b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": policies})
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(policiesFile, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if out, stderr, err := kubectl(t, "apply", "-f", policiesFile); err != nil {
					t.Fatalf("kubectl apply of the policies: %v\n%s%s", err, out, stderr)
				}
				t.Cleanup(func() { _, _, _ = kubectl(t, "delete", "-f", policiesFile) })
			}
			// The webhook reads policies from its informer cache: wait until
			// it has them (no "does not exist yet" warning).
			deadline := time.Now().Add(15 * time.Second)
			for len(policies) > 0 {
				_, stderr, _ := kubectl(t, "apply", "--dry-run=server", "-f", yamlFile)
				if !strings.Contains(stderr, "does not exist yet") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the webhook does not see the policies:\n%s", stderr)
				}
				time.Sleep(200 * time.Millisecond)
			}
			apply(yamlFile, unchanged, allowed...)
			apply(jsonFile, unchanged, allowed...)
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rules reads the SLOs and their policies from the cluster and prints what
// it prints offline from the same manifests; a user who may not read what
// resolution needs gets the policy the SLO's status names.
func TestRulesLive(t *testing.T) {
	cluster(t)
	ctx := context.Background()
	slos := filepath.Join("testdata", "rules", "slos.yaml")
	if _, stderr, err := kubectl(t, "apply", "-f", slos); err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", slos, err, stderr)
	}
	t.Cleanup(func() {
		// Namespaces stay: without a namespace controller they would never
		// finish terminating.
		for _, o := range []client.Object{
			&slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"}},
			&slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "storefront-latency"}},
			&slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "search"}},
			&slov1alpha1.ErrorBudgetPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
			&slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
			&slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		} {
			_ = env.client.Delete(context.Background(), o)
		}
	})
	offline, offlineErr, err := run(t, "", "rules", "-f", slos)
	if err != nil {
		t.Fatal(err)
	}
	kc := "--kubeconfig=" + env.kubeconfig

	live, liveErr, err := run(t, "", "rules", "-A", kc)
	if err != nil {
		t.Fatal(err)
	}
	if live != offline {
		t.Errorf("rules -A differs from rules -f %s", slos)
	}
	if liveErr != offlineErr {
		t.Errorf("rules -A says\n%s\nrules -f says\n%s", liveErr, offlineErr)
	}

	// One SLO, as a PrometheusRule: the golden file of the offline test,
	// which the API server takes with the Prometheus Operator's CRD.
	pr, _, err := run(t, "", "rules", "checkout", "-n", "shop", "-o", "yaml", kc)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "rules", "checkout.prometheusrule.golden"), pr)
	prFile := filepath.Join(t.TempDir(), "pr.yaml")
	if err := os.WriteFile(prFile, []byte(pr), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := kubectl(t, "apply", "--dry-run=server", "-f", prFile); err != nil || out != "prometheusrule.monitoring.coreos.com/budgetgate-checkout created (server dry run)\n" {
		t.Errorf("kubectl apply --dry-run=server of the PrometheusRule: %v\n%s%s", err, out, stderr)
	}
	// The namespace's SLOs, as a List of PrometheusRules.
	list, _, err := run(t, "", "rules", "-n", "shop", "-o", "json", kc)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Kind  string
		Items []struct{ Metadata struct{ Name string } }
	}
	if err := json.Unmarshal([]byte(list), &l); err != nil {
		t.Fatal(err)
	}
	if l.Kind != "List" || len(l.Items) != 2 || l.Items[0].Metadata.Name != "budgetgate-checkout" || l.Items[1].Metadata.Name != "budgetgate-storefront-latency" {
		t.Errorf("rules -n shop -o json: %s", list)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rules", "nope", "-n", "shop"}, `ServiceLevelObjective "nope" not found in namespace shop`},
		{[]string{"rules", "-n", "kube-public"}, "no ServiceLevelObjectives in namespace kube-public"},
		{[]string{"rules", "checkout", "-A"}, "-A lists every SLO; name an SLO with -n NAMESPACE instead"},
	} {
		if _, _, err := run(t, "", append(tc.args, kc)...); err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}

	// A developer of team-a: may read SLOs in team-a and policies, not the
	// bindings and namespaces that resolution reads. Their SLO's status
	// names the policy the controller uses (no controller runs here, so
	// the test writes it).
	search := &slov1alpha1.ServiceLevelObjective{}
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "search"}, search); err != nil {
		t.Fatal(err)
	}
	search.Status.Policy = "team-a"
	if err := env.client.Status().Update(ctx, search); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "slo-reader"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{slov1alpha1.GroupVersion.Group}, Resources: []string{"servicelevelobjectives"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "dev"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "slo-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dev"}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "policy-reader"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{slov1alpha1.GroupVersion.Group}, Resources: []string{"errorbudgetpolicies"}, Verbs: []string{"get"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dev-policy-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "policy-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dev"}}},
	} {
		if err := env.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	dev, err := env.testEnv.AddUser(envtest.User{Name: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	devConfig, err := dev.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	devKubeconfig := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(devKubeconfig, devConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	asDev, devErr, err := run(t, "", "rules", "search", "-n", "team-a", "--kubeconfig", devKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	adminSearch, _, err := run(t, "", "rules", "search", "-n", "team-a", kc)
	if err != nil {
		t.Fatal(err)
	}
	if asDev != adminSearch {
		t.Errorf("rules as a developer differs from rules as an admin")
	}
	if want := `team-a/search: policy "team-a", as its status says (resolving it here was forbidden: listing ErrorBudgetPolicyBindings: errorbudgetpolicybindings.slo.budgetgate.dev is forbidden: User "dev" cannot list resource "errorbudgetpolicybindings" in API group "slo.budgetgate.dev" at the cluster scope)` + "\n"; devErr != want {
		t.Errorf("stderr as a developer:\n%s\nwant\n%s", devErr, want)
	}
}
