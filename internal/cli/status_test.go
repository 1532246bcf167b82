package cli_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/cli"
)

var statusNow = time.Date(2026, 12, 3, 11, 41, 0, 0, time.UTC)

// statusSLOs are four SLOs as the controller writes their status: healthy,
// frozen by a fast burn, frozen in DryRun with little budget, and not yet
// evaluated.
func statusSLOs() []*slov1alpha1.ServiceLevelObjective {
	ts := func(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }
	rules := func(fastValue string, fastFiring bool, budget string, budgetFiring bool) []slov1alpha1.RuleStatus {
		return []slov1alpha1.RuleStatus{
			{Name: "fast-burn", Action: slov1alpha1.ActionFreeze, Firing: fastFiring, Value: slov1alpha1.Decimal(fastValue), Threshold: "14.4",
				Message: "burn rate " + fastValue + "x over 1h"},
			{Name: "budget-exhausted", Action: slov1alpha1.ActionFreeze, Firing: budgetFiring, Value: slov1alpha1.Decimal(budget), Threshold: "0",
				Message: "budget " + budget + " left"},
		}
	}
	mk := func(ns, name string, st slov1alpha1.ServiceLevelObjectiveStatus) *slov1alpha1.ServiceLevelObjective {
		return &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Status: st}
	}
	return []*slov1alpha1.ServiceLevelObjective{
		mk("payments", "api-latency", slov1alpha1.ServiceLevelObjectiveStatus{
			Policy: "built-in", GatedWorkloads: 2, LastEvaluationTime: ts(statusNow.Add(-20 * time.Second)),
			ErrorBudget: &slov1alpha1.ErrorBudgetStatus{Remaining: "0.873", ExhaustedIn: "never", ForecastWindow: "1h"},
			Rules:       rules("0", false, "0.873", false),
		}),
		mk("shop", "checkout-availability", slov1alpha1.ServiceLevelObjectiveStatus{
			Policy: "default", GatedWorkloads: 3, LastEvaluationTime: ts(statusNow.Add(-5 * time.Second)),
			ErrorBudget: &slov1alpha1.ErrorBudgetStatus{Remaining: "0.623", ExhaustedIn: "1d5h42m", ExhaustsAt: ts(statusNow.Add(29*time.Hour + 42*time.Minute)), ForecastWindow: "1h"},
			Rules:       rules("15.1", true, "0.623", false),
			Freeze: slov1alpha1.FreezeStatus{Active: true, Mode: slov1alpha1.ModeEnforce, Since: ts(statusNow.Add(-41 * time.Minute)),
				HoldUntil: ts(statusNow.Add(19 * time.Minute)), Rule: "fast-burn", Reason: "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x"},
		}),
		mk("shop", "search-latency", slov1alpha1.ServiceLevelObjectiveStatus{
			Policy: "audit", GatedWorkloads: 1,
			ErrorBudget: &slov1alpha1.ErrorBudgetStatus{Remaining: "-0.125", ExhaustedIn: "exhausted", ForecastWindow: "1h"},
			Rules:       rules("2.3", false, "-0.125", true),
			Freeze: slov1alpha1.FreezeStatus{Active: true, Mode: slov1alpha1.ModeDryRun, Since: ts(statusNow.Add(-3*24*time.Hour - 4*time.Hour)),
				HoldUntil: ts(statusNow.Add(-time.Hour)), Rule: "budget-exhausted"},
		}),
		mk("shop", "new-service", slov1alpha1.ServiceLevelObjectiveStatus{}),
	}
}

func TestStatusTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		style cli.StatusStyle
	}{
		{"all-namespaces", cli.StatusStyle{AllNamespaces: true}},
		{"color", cli.StatusStyle{Color: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := cli.RenderStatus(&buf, statusSLOs(), statusNow, tc.style); err != nil {
				t.Fatal(err)
			}
			golden(t, "testdata/status/"+tc.name+".golden", buf.String())
			if !tc.style.Color && strings.Contains(buf.String(), "\x1b[") {
				t.Error("colour without --color")
			}
		})
	}
}

func TestStatusStructured(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		var buf bytes.Buffer
		sums := cli.Summaries(statusSLOs(), statusNow)
		if err := cli.WriteStructured(&buf, format, sums); err != nil {
			t.Fatal(err)
		}
		golden(t, "testdata/status/summaries."+format+".golden", buf.String())
	}
}
