package main

import (
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// series picks the sum of some series of a metric family: a counter's or
// gauge's value, or a histogram's sum or count, over every series whose labels
// include Labels ("" matches an absent or empty label).
type series struct {
	Name   string
	Labels map[string]string
	// Part is "sum" or "count" for a histogram; empty for a counter or gauge.
	Part string
}

const (
	partSum, partCount = "sum", "count"
	labelWebhookName   = "name"
	labelResource      = "resource"
	labelVerb          = "verb"
	requestDuration    = "apiserver_request_duration_seconds"
	webhookDuration    = "apiserver_admission_webhook_admission_duration_seconds"
	matchDuration      = "apiserver_admission_match_condition_evaluation_seconds"
	workloadsPath      = "/validate-apps-v1-workloads"
)

// histogram adds KEY.sum and KEY.count of a histogram to m.
func histogram(m map[string]series, key, name string, labels map[string]string) {
	m[key+"."+partSum] = series{Name: name, Labels: labels, Part: partSum}
	m[key+"."+partCount] = series{Name: name, Labels: labels, Part: partCount}
}

// Metrics the report reads, by key.
var (
	apiserverSeries = func() map[string]series {
		m := map[string]series{
			// Requests the API server admitted because the webhook failed
			// (failurePolicy Ignore).
			"failOpen": {Name: "apiserver_admission_webhook_fail_open_count",
				Labels: map[string]string{labelWebhookName: releaseWebhook}},
		}
		// The API server's own time for the benchmark's PATCHes of Deployments.
		histogram(m, "patch", requestDuration,
			map[string]string{labelVerb: "PATCH", labelResource: "deployments", "subresource": ""})
		// The release webhook call as the API server times it: building and
		// encoding the AdmissionReview, the round trip, decoding the answer.
		histogram(m, "webhook", webhookDuration, map[string]string{labelWebhookName: releaseWebhook})
		// Evaluating the webhook's matchConditions (CEL).
		histogram(m, "match", matchDuration, map[string]string{labelWebhookName: releaseWebhook})
		// The deny path's calls back into the API server: the uncached list
		// of a Deployment's ReplicaSets (rollback check) and the
		// SubjectAccessReview of a claimed release class.
		histogram(m, "list", requestDuration, map[string]string{labelVerb: "LIST", labelResource: "replicasets"})
		histogram(m, "sar", requestDuration, map[string]string{labelVerb: "POST", labelResource: "subjectaccessreviews"})
		return m
	}()
	managerSeries = func() map[string]series {
		m := map[string]series{
			"requests": {Name: "controller_runtime_webhook_requests_total", Labels: map[string]string{"webhook": workloadsPath}},
		}
		// The release gate's handler as controller-runtime times it (decoding
		// the AdmissionReview, deciding, encoding the answer).
		histogram(m, "handler", "controller_runtime_webhook_latency_seconds", map[string]string{"webhook": workloadsPath})
		return m
	}()
)

// parseText parses the Prometheus text exposition format.
func parseText(text string) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(text))
}

// extract reads every series in want from families; a missing family reads 0.
func extract(families map[string]*dto.MetricFamily, want map[string]series) map[string]float64 {
	out := make(map[string]float64, len(want))
	for key, s := range want {
		out[key] = sumSeries(families[s.Name], s)
	}
	return out
}

func sumSeries(f *dto.MetricFamily, s series) float64 {
	if f == nil {
		return 0
	}
	var total float64
	for _, m := range f.GetMetric() {
		if !hasLabels(m, s.Labels) {
			continue
		}
		switch {
		case m.Histogram != nil && s.Part == partSum:
			total += m.Histogram.GetSampleSum()
		case m.Histogram != nil && s.Part == partCount:
			total += float64(m.Histogram.GetSampleCount())
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for name, value := range want {
		got := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				got = l.GetValue()
			}
		}
		if got != value {
			return false
		}
	}
	return true
}

// decisions reads budgetgate_admission_decisions_total of kind Deployment by
// "decision/reason".
func decisions(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range families["budgetgate_admission_decisions_total"].GetMetric() {
		var kind, decision, reason string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "kind":
				kind = l.GetValue()
			case "decision":
				decision = l.GetValue()
			case "reason":
				reason = l.GetValue()
			}
		}
		if kind == "Deployment" {
			out[decision+"/"+reason] += m.GetCounter().GetValue()
		}
	}
	return out
}

// delta is after - before, key by key (keys of after).
func delta(before, after map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(after))
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// ServerView is what the API server's and the manager's own metrics say
// about a phase's measured requests (deltas over the phase).
type ServerView struct {
	// PatchMeanMs is the API server's mean time for a Deployment PATCH.
	PatchMeanMs float64 `json:"apiserverPatchMeanMs"`
	// WebhookCalls and WebhookMeanMs: release webhook calls and their mean
	// time as the API server measures them.
	WebhookCalls  float64 `json:"webhookCalls"`
	WebhookMeanMs float64 `json:"webhookCallMeanMs"`
	// MatchMeanMs is the mean time of evaluating its matchConditions.
	MatchMeanMs float64 `json:"matchConditionMeanMs"`
	// HistoryLists and HistoryListMeanMs: the API server's ReplicaSet LISTs
	// (the release gate's rollback check) and their mean server time.
	HistoryLists      float64 `json:"historyLists"`
	HistoryListMeanMs float64 `json:"historyListMeanMs"`
	// SARs and SARMeanMs: SubjectAccessReviews (claimed release classes).
	SARs      float64 `json:"subjectAccessReviews"`
	SARMeanMs float64 `json:"subjectAccessReviewMeanMs"`
	// HandlerMeanMs is the manager's mean time in the handler
	// (controller-runtime's webhook latency).
	HandlerMeanMs float64 `json:"handlerMeanMs"`
	// HandlerRequests is how many release gate requests the manager served.
	HandlerRequests float64 `json:"handlerRequests"`
	// FailOpen counts requests the API server admitted because the release
	// webhook failed.
	FailOpen float64 `json:"apiserverFailOpen"`
	// Decisions counts the release gate's decisions ("Allow/not-frozen", ...).
	Decisions map[string]float64 `json:"decisions,omitempty"`
}

func serverView(api, mgr, dec map[string]float64) ServerView {
	mean := func(sum, count string, m map[string]float64) float64 {
		if m[count] == 0 {
			return 0
		}
		return m[sum] / m[count] * 1000
	}
	return ServerView{
		PatchMeanMs:       mean("patch.sum", "patch.count", api),
		WebhookCalls:      api["webhook.count"],
		WebhookMeanMs:     mean("webhook.sum", "webhook.count", api),
		MatchMeanMs:       mean("match.sum", "match.count", api),
		HistoryLists:      api["list.count"],
		HistoryListMeanMs: mean("list.sum", "list.count", api),
		SARs:              api["sar.count"],
		SARMeanMs:         mean("sar.sum", "sar.count", api),
		HandlerMeanMs:     mean("handler.sum", "handler.count", mgr),
		HandlerRequests:   mgr["requests"],
		FailOpen:          api["failOpen"],
		Decisions:         dec,
	}
}

func (v ServerView) String() string {
	s := fmt.Sprintf("apiserver PATCH %.2f ms, webhook call %.2f ms (%g calls), handler %.2f ms",
		v.PatchMeanMs, v.WebhookMeanMs, v.WebhookCalls, v.HandlerMeanMs)
	if v.HistoryLists > 0 {
		s += fmt.Sprintf(", ReplicaSet LIST %.2f ms (%g)", v.HistoryListMeanMs, v.HistoryLists)
	}
	if v.SARs > 0 {
		s += fmt.Sprintf(", SubjectAccessReview %.2f ms (%g)", v.SARMeanMs, v.SARs)
	}
	return s
}
