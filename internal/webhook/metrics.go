package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var admissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "budgetgate_admission_decisions_total",
	Help: "Admission decisions on workloads and their revision history by kind, namespace, decision (Allow, Deny, Warn) and reason class.",
}, []string{"kind", "namespace", "decision", "reason"})

func init() {
	metrics.Registry.MustRegister(admissionDecisions)
}
