package main

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const apiserverText = `# TYPE apiserver_admission_webhook_admission_duration_seconds histogram
apiserver_admission_webhook_admission_duration_seconds_bucket{name="releases.budgetgate.dev",operation="UPDATE",rejected="false",type="validating",le="0.005"} 90
apiserver_admission_webhook_admission_duration_seconds_bucket{name="releases.budgetgate.dev",operation="UPDATE",rejected="false",type="validating",le="+Inf"} 100
apiserver_admission_webhook_admission_duration_seconds_sum{name="releases.budgetgate.dev",operation="UPDATE",rejected="false",type="validating"} 0.3
apiserver_admission_webhook_admission_duration_seconds_count{name="releases.budgetgate.dev",operation="UPDATE",rejected="false",type="validating"} 100
apiserver_admission_webhook_admission_duration_seconds_bucket{name="releases.budgetgate.dev",operation="UPDATE",rejected="true",type="validating",le="+Inf"} 50
apiserver_admission_webhook_admission_duration_seconds_sum{name="releases.budgetgate.dev",operation="UPDATE",rejected="true",type="validating"} 0.2
apiserver_admission_webhook_admission_duration_seconds_count{name="releases.budgetgate.dev",operation="UPDATE",rejected="true",type="validating"} 50
apiserver_admission_webhook_admission_duration_seconds_bucket{name="history.budgetgate.dev",operation="CREATE",rejected="false",type="validating",le="+Inf"} 7
apiserver_admission_webhook_admission_duration_seconds_sum{name="history.budgetgate.dev",operation="CREATE",rejected="false",type="validating"} 9
apiserver_admission_webhook_admission_duration_seconds_count{name="history.budgetgate.dev",operation="CREATE",rejected="false",type="validating"} 7
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="PATCH",version="v1",le="+Inf"} 150
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="PATCH",version="v1"} 1.2
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="PATCH",version="v1"} 150
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="status",verb="PATCH",version="v1",le="+Inf"} 3
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="status",verb="PATCH",version="v1"} 99
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="status",verb="PATCH",version="v1"} 3
# TYPE apiserver_admission_webhook_fail_open_count counter
apiserver_admission_webhook_fail_open_count{name="releases.budgetgate.dev",type="validating"} 2
apiserver_admission_webhook_fail_open_count{name="history.budgetgate.dev",type="validating"} 5
`

const managerText = `# TYPE controller_runtime_webhook_latency_seconds histogram
controller_runtime_webhook_latency_seconds_bucket{webhook="/validate-apps-v1-workloads",le="+Inf"} 150
controller_runtime_webhook_latency_seconds_sum{webhook="/validate-apps-v1-workloads"} 0.03
controller_runtime_webhook_latency_seconds_count{webhook="/validate-apps-v1-workloads"} 150
# TYPE controller_runtime_webhook_requests_total counter
controller_runtime_webhook_requests_total{code="200",webhook="/validate-apps-v1-workloads"} 150
controller_runtime_webhook_requests_total{code="500",webhook="/validate-apps-v1-workloads"} 1
controller_runtime_webhook_requests_total{code="200",webhook="/validate-apps-v1-history"} 70
# TYPE budgetgate_admission_decisions_total counter
budgetgate_admission_decisions_total{decision="Allow",kind="Deployment",namespace="bench-open",reason="not-frozen"} 100
budgetgate_admission_decisions_total{decision="Deny",kind="Deployment",namespace="bench-frozen",reason="template-change"} 50
budgetgate_admission_decisions_total{decision="Allow",kind="Deployment",namespace="other",reason="not-frozen"} 1
budgetgate_admission_decisions_total{decision="Allow",kind="StatefulSet",namespace="bench-open",reason="not-frozen"} 4
`

var approx = cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })

func TestExtract(t *testing.T) {
	fams, err := parseText(apiserverText)
	if err != nil {
		t.Fatal(err)
	}
	got := extract(fams, apiserverSeries)
	want := map[string]float64{
		// Only the main resource's PATCH, not /status.
		"patch.sum": 1.2, "patch.count": 150,
		// Both rejected and admitted calls of the release webhook only.
		"webhook.sum": 0.5, "webhook.count": 150,
		// Missing families read 0.
		"match.sum": 0, "match.count": 0,
		"list.sum": 0, "list.count": 0, "sar.sum": 0, "sar.count": 0,
		"failOpen": 2,
	}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("extract (-want +got):\n%s", diff)
	}

	mfams, err := parseText(managerText)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"handler.sum": 0.03, "handler.count": 150, "requests": 151}, extract(mfams, managerSeries), approx); diff != "" {
		t.Errorf("extract manager (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"Allow/not-frozen": 101, "Deny/template-change": 50}, decisions(mfams)); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
}

func TestServerView(t *testing.T) {
	before := map[string]float64{"patch.sum": 1, "patch.count": 100, "webhook.sum": 0.1, "webhook.count": 50, "failOpen": 2,
		"list.sum": 1, "list.count": 10}
	after := map[string]float64{"patch.sum": 2.5, "patch.count": 300, "webhook.sum": 0.7, "webhook.count": 250, "failOpen": 2,
		"list.sum": 1.4, "list.count": 110}
	d := delta(before, after)
	if diff := cmp.Diff(map[string]float64{"patch.sum": 1.5, "patch.count": 200, "webhook.sum": 0.6, "webhook.count": 200,
		"list.sum": 0.4, "list.count": 100}, d, approx); diff != "" {
		t.Errorf("delta (-want +got):\n%s", diff)
	}
	got := serverView(d, map[string]float64{"handler.sum": 0.04, "handler.count": 200, "requests": 200}, map[string]float64{"Allow/not-frozen": 200})
	want := ServerView{PatchMeanMs: 7.5, WebhookCalls: 200, WebhookMeanMs: 3, HandlerMeanMs: 0.2, HandlerRequests: 200,
		HistoryLists: 100, HistoryListMeanMs: 4,
		Decisions: map[string]float64{"Allow/not-frozen": 200}}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("serverView (-want +got):\n%s", diff)
	}
}
