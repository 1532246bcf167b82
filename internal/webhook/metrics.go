package webhook

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"

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

// CertificateExpiry is a collector of the expiry of the certificates the
// webhook server serves from dir (tls.crt, and ca.crt where present),
// read at every scrape: budgetgate_webhook_certificate_expiry_timestamp_seconds
// {certificate="serving"|"ca"}. It works the same whether the built-in
// rotation or cert-manager writes the files. A file that cannot be read or
// parsed is left out (and its alert's absent() fires).
type CertificateExpiry struct{ Dir string }

var certificateExpiryDesc = prometheus.NewDesc("budgetgate_webhook_certificate_expiry_timestamp_seconds",
	"When the webhook's serving certificate (certificate=\"serving\") and its CA (certificate=\"ca\") expire, in seconds since the epoch.",
	[]string{"certificate"}, nil)

// Describe implements prometheus.Collector.
func (c CertificateExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- certificateExpiryDesc }

// Collect implements prometheus.Collector.
func (c CertificateExpiry) Collect(ch chan<- prometheus.Metric) {
	for file, name := range map[string]string{"tls.crt": "serving", "ca.crt": "ca"} {
		data, err := os.ReadFile(filepath.Join(c.Dir, file))
		if err != nil {
			continue
		}
		block, _ := pem.Decode(data)
		if block == nil {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(certificateExpiryDesc, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), name)
	}
}
