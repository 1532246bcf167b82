package gitops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

func script(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", ArgoCDHealthScript))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	since = metav1.NewTime(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	hold  = metav1.NewTime(time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC))
)

// slo is a ServiceLevelObjective at generation 2 whose status budgetgate wrote
// for that generation, changed by opts.
func slo(opts ...func(*slov1alpha1.ServiceLevelObjective)) *slov1alpha1.ServiceLevelObjective {
	s := &slov1alpha1.ServiceLevelObjective{
		TypeMeta:   metav1.TypeMeta{APIVersion: "slo.budgetgate.dev/v1alpha1", Kind: "ServiceLevelObjective"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout-availability", Generation: 2},
		Spec:       slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: "30d"},
	}
	s.Status.ObservedGeneration = 2
	for _, o := range opts {
		o(s)
	}
	return s
}

func cond(typ string, status metav1.ConditionStatus, reason, message string) func(*slov1alpha1.ServiceLevelObjective) {
	return func(s *slov1alpha1.ServiceLevelObjective) {
		s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: s.Generation, LastTransitionTime: since,
		})
	}
}

func budget(s *slov1alpha1.ServiceLevelObjective) {
	s.Status.ErrorBudget = &slov1alpha1.ErrorBudgetStatus{Remaining: "0.623", Consumed: "0.377", RemainingPercent: "62.3%"}
}

const (
	readyMsg  = `Evaluated against policy "default": SLI 99.9623%, budget 62.3% left`
	frozenMsg = "Releases frozen since 2026-05-01T10:00:00Z, until at least 2026-05-01T11:00:00Z: fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left"
	reason    = "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left"
)

func frozen(mode slov1alpha1.PolicyMode) func(*slov1alpha1.ServiceLevelObjective) {
	return func(s *slov1alpha1.ServiceLevelObjective) {
		s.Status.Freeze = slov1alpha1.FreezeStatus{Active: true, Mode: mode, Since: &since, HoldUntil: &hold, Rule: "fast-burn", Reason: reason}
	}
}

// The health check, run as Argo CD runs it, on the SLOs budgetgate writes:
// what an Application's resource tree shows for each state.
func TestArgoCDHealthOfSLOs(t *testing.T) {
	for _, tc := range []struct {
		name string
		slo  *slov1alpha1.ServiceLevelObjective
		want Health
	}{{
		name: "created, not evaluated yet (no status)",
		slo: func() *slov1alpha1.ServiceLevelObjective {
			s := slo()
			s.Status = slov1alpha1.ServiceLevelObjectiveStatus{}
			return s
		}(),
		want: Health{"Progressing", "Waiting for budgetgate to evaluate the SLO"},
	}, {
		name: "changed, its status still for the previous generation",
		slo: slo(budget, cond("Ready", metav1.ConditionTrue, "Evaluated", readyMsg), func(s *slov1alpha1.ServiceLevelObjective) {
			s.Status.ObservedGeneration = 1
		}),
		want: Health{"Progressing", "Waiting for budgetgate to evaluate the SLO"},
	}, {
		name: "evaluated, no data yet",
		slo: slo(cond("Ready", metav1.ConditionTrue, "Evaluated", `Evaluated against policy "default"`),
			cond("DataAvailable", metav1.ConditionFalse, "NoData", "Prometheus returned no data for any window (no series, NaN or infinite values, or fewer events than the policy's minEvents)"),
			cond("Frozen", metav1.ConditionFalse, "WithinBudget", "No Freeze rule fires")),
		want: Health{"Progressing", "No data yet: Prometheus returned no data for any window (no series, NaN or infinite values, or fewer events than the policy's minEvents)"},
	}, {
		name: "ready and not frozen",
		slo: slo(budget, cond("Ready", metav1.ConditionTrue, "Evaluated", readyMsg),
			cond("DataAvailable", metav1.ConditionTrue, "AllWindowsPresent", "All 9 windows measured"),
			cond("Frozen", metav1.ConditionFalse, "WithinBudget", "No Freeze rule fires")),
		want: Health{"Healthy", readyMsg},
	}, {
		name: "ready, some windows without data: the budget is known",
		slo: slo(budget, cond("Ready", metav1.ConditionTrue, "Evaluated", readyMsg),
			cond("DataAvailable", metav1.ConditionFalse, "PartialData", "No data over 5m"),
			cond("Frozen", metav1.ConditionFalse, "WithinBudget", "No Freeze rule fires")),
		want: Health{"Healthy", readyMsg},
	}, {
		name: "frozen (Enforce): releases are denied",
		slo: slo(budget, frozen(slov1alpha1.ModeEnforce), cond("Ready", metav1.ConditionTrue, "Evaluated", readyMsg),
			cond("DataAvailable", metav1.ConditionTrue, "AllWindowsPresent", "All 9 windows measured"),
			cond("Frozen", metav1.ConditionTrue, "BudgetBurning", frozenMsg)),
		want: Health{"Degraded", frozenMsg},
	}, {
		name: "frozen under a DryRun policy: releases pass with a warning",
		slo: slo(budget, frozen(slov1alpha1.ModeDryRun), cond("Ready", metav1.ConditionTrue, "Evaluated", readyMsg),
			cond("Frozen", metav1.ConditionTrue, "DryRun", "DryRun: releases are admitted with a warning. "+frozenMsg)),
		want: Health{"Degraded", "DryRun: releases are admitted with a warning. " + frozenMsg},
	}, {
		name: "frozen, and now unevaluable: the freeze holds, and says so",
		slo: slo(budget, frozen(slov1alpha1.ModeEnforce),
			cond("Ready", metav1.ConditionFalse, "PolicyNotFound", `ErrorBudgetPolicy "strict" not found`),
			cond("Frozen", metav1.ConditionTrue, "BudgetBurning", frozenMsg)),
		want: Health{"Degraded", frozenMsg},
	}, {
		name: "frozen, without conditions (written by an older budgetgate)",
		slo:  slo(frozen(slov1alpha1.ModeEnforce)),
		want: Health{"Degraded", "Releases frozen: " + reason},
	}, {
		name: "cannot be evaluated",
		slo:  slo(cond("Ready", metav1.ConditionFalse, "PolicyNotFound", `ErrorBudgetPolicy "strict" not found`)),
		want: Health{"Degraded", `PolicyNotFound: ErrorBudgetPolicy "strict" not found`},
	}, {
		name: "Prometheus does not answer",
		slo: slo(cond("Ready", metav1.ConditionFalse, "QueryFailed", "No window could be measured: connection refused"),
			cond("DataAvailable", metav1.ConditionFalse, "QueryFailed", "3 consecutive evaluations failed: connection refused")),
		want: Health{"Degraded", "QueryFailed: No window could be measured: connection refused"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := ObjectOf(tc.slo)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RunArgoCDHealth(script(t), obj)
			if err != nil {
				t.Fatalf("the health check failed: %v", err)
			}
			if got != tc.want {
				t.Errorf("health = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The ConfigMap patch ships the same script, under the key Argo CD reads.
func TestArgoCDConfigMapHoldsTheScript(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "gitops", "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(raw, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Name != "argocd-cm" || cm.Namespace != "argocd" {
		t.Errorf("ConfigMap %s/%s, want argocd/argocd-cm", cm.Namespace, cm.Name)
	}
	if got, want := cm.Data[ArgoCDHealthKey], script(t); got != want {
		t.Errorf("argocd-cm.yaml's %s differs from %s; copy the script into it", ArgoCDHealthKey, ArgoCDHealthScript)
	}
	if len(cm.Data) != 1 {
		t.Errorf("argocd-cm.yaml sets %d keys, want only %s", len(cm.Data), ArgoCDHealthKey)
	}
}

// The harness is as strict as Argo CD: scripts from argocd-cm run without
// Lua's string library, so a check that used it would fail there.
func TestHarnessLacksTheStringLibraryAsArgoCD(t *testing.T) {
	if _, err := RunArgoCDHealth(`return {status = string.upper("healthy")}`, map[string]any{}); err == nil {
		t.Error("string.upper worked: the harness opens more than Argo CD does")
	}
	if strings.Contains(script(t), "string.") {
		t.Errorf("%s uses the string library", ArgoCDHealthScript)
	}
	if _, err := RunArgoCDHealth(`return {status = "Fine"}`, map[string]any{}); err == nil {
		t.Error("an invalid health status was accepted")
	}
}
