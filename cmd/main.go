/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/sli"
	bgwebhook "github.com/budgetgate/budgetgate/internal/webhook"
	// +kubebuilder:scaffold:imports
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))

	utilruntime.Must(slov1alpha1.AddToScheme(scheme))
	// +kubebuilder:scaffold:scheme
}

// Certificate rotation injects the CA into budgetgate's own webhook configurations.
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;list;watch;update;patch

// nolint:gocyclo
func main() {
	var metricsAddr string
	var metricsCertPath, metricsCertName, metricsCertKey string
	var webhookCertPath, webhookCertName, webhookCertKey string
	var webhookPort int
	var enableLeaderElection bool
	var probeAddr string
	var secureMetrics bool
	var enableHTTP2 bool
	var tlsOpts []func(*tls.Config)
	var prometheusAddress string
	var queryTimeout time.Duration
	var certRotation bool
	var leaderElectionNamespace string
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; defaults to the namespace the manager runs in (needed out of cluster).")
	var certSecret, webhookService string
	flag.BoolVar(&certRotation, "webhook-cert-rotation", true,
		"Generate and rotate the webhook serving certificate (stored in a Secret, CA injected into budgetgate's "+
			"webhook configurations). Ignored when --webhook-cert-path is set (e.g. certificates from cert-manager).")
	flag.StringVar(&certSecret, "webhook-cert-secret", "budgetgate-webhook-server-cert",
		"Secret in the operator's namespace that holds the rotated webhook certificate.")
	flag.StringVar(&webhookService, "webhook-service", "budgetgate-webhook-service",
		"Service in front of the webhook server; the rotated certificate is issued for its DNS name.")
	flag.StringVar(&prometheusAddress, "prometheus-address", "http://localhost:9090",
		"Base URL of the Prometheus HTTP API that SLOs are measured in, unless an SLO sets spec.prometheus.address.")
	flag.DurationVar(&queryTimeout, "query-timeout", 10*time.Second, "Timeout of each Prometheus query.")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election for controller manager. "+
			"Enabling this will ensure there is only one active controller manager.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served securely via HTTPS. Use --metrics-secure=false to use HTTP instead.")
	flag.StringVar(&webhookCertPath, "webhook-cert-path", "", "The directory that contains the webhook certificate.")
	flag.StringVar(&webhookCertName, "webhook-cert-name", "tls.crt", "The name of the webhook certificate file.")
	flag.StringVar(&webhookCertKey, "webhook-cert-key", "tls.key", "The name of the webhook key file.")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port the webhook server listens on. "+
		"Defaults to 9443. Set -1 to disable the webhook server.")
	flag.StringVar(&metricsCertPath, "metrics-cert-path", "",
		"The directory that contains the metrics server certificate.")
	flag.StringVar(&metricsCertName, "metrics-cert-name", "tls.crt", "The name of the metrics server certificate file.")
	flag.StringVar(&metricsCertKey, "metrics-cert-key", "tls.key", "The name of the metrics server key file.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"If set, HTTP/2 will be enabled for the metrics and webhook servers")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	// if the enable-http2 flag is false (the default), http/2 should be disabled
	// due to its vulnerabilities. More specifically, disabling http/2 will
	// prevent from being vulnerable to the HTTP/2 Stream Cancellation and
	// Rapid Reset CVEs. For more information see:
	// - https://github.com/advisories/GHSA-qppj-fm5r-hxr3
	// - https://github.com/advisories/GHSA-4374-p667-p6c8
	disableHTTP2 := func(c *tls.Config) {
		setupLog.Info("Disabling HTTP/2")
		c.NextProtos = []string{"http/1.1"}
	}

	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, disableHTTP2)
	}

	// Initial webhook TLS options
	webhookTLSOpts := tlsOpts
	webhookServerOptions := webhook.Options{
		TLSOpts: webhookTLSOpts,
		Port:    webhookPort,
	}

	if len(webhookCertPath) > 0 {
		setupLog.Info("Initializing webhook certificate watcher using provided certificates",
			"webhook-cert-path", webhookCertPath, "webhook-cert-name", webhookCertName, "webhook-cert-key", webhookCertKey)

		webhookServerOptions.CertDir = webhookCertPath
		webhookServerOptions.CertName = webhookCertName
		webhookServerOptions.KeyName = webhookCertKey
	}

	if webhookServerOptions.CertDir == "" {
		webhookServerOptions.CertDir = filepath.Join(os.TempDir(), "budgetgate-webhook-certs")
	}
	var webhookServer webhook.Server
	if webhookPort >= 0 {
		webhookServer = webhook.NewServer(webhookServerOptions)
	}
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" {
		namespace = "budgetgate-system"
	}

	// Metrics endpoint is enabled in 'config/default/kustomization.yaml'. The Metrics options configure the server.
	// More info:
	// - https://pkg.go.dev/sigs.k8s.io/controller-runtime@v0.25.0/pkg/metrics/server
	// - https://book.kubebuilder.io/reference/metrics.html
	metricsServerOptions := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}

	if secureMetrics {
		// FilterProvider is used to protect the metrics endpoint with authn/authz.
		// These configurations ensure that only authorized users and service accounts
		// can access the metrics endpoint. The RBAC are configured in 'config/rbac/kustomization.yaml'. More info:
		// https://pkg.go.dev/sigs.k8s.io/controller-runtime@v0.25.0/pkg/metrics/filters#WithAuthenticationAndAuthorization
		metricsServerOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	// If the certificate is not specified, controller-runtime will automatically
	// generate self-signed certificates for the metrics server. While convenient for development and testing,
	// this setup is not recommended for production.
	//
	// TODO(user): If you enable certManager, uncomment the following lines:
	// - [METRICS-WITH-CERTS] at config/default/kustomization.yaml to generate and use certificates
	// managed by cert-manager for the metrics server.
	// - [PROMETHEUS-WITH-CERTS] at config/prometheus/kustomization.yaml for TLS certification.
	if len(metricsCertPath) > 0 {
		setupLog.Info("Initializing metrics certificate watcher using provided certificates",
			"metrics-cert-path", metricsCertPath, "metrics-cert-name", metricsCertName, "metrics-cert-key", metricsCertKey)

		metricsServerOptions.CertDir = metricsCertPath
		metricsServerOptions.CertName = metricsCertName
		metricsServerOptions.KeyName = metricsCertKey
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsServerOptions,
		WebhookServer:          webhookServer,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         enableLeaderElection,
		LeaderElectionID:       "budgetgate.slo.budgetgate.dev",
		// The program ends as soon as the manager stops, so stepping down on
		// cancel is safe and hands over to the next replica at once.
		LeaderElectionReleaseOnCancel: true,
		LeaderElectionNamespace:       leaderElectionNamespace,
		// The operator caches only its own kinds (workloads are listed on demand
		// with an SLO's selector), and drops managedFields from what it caches.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			// Certificate rotation reads one Secret: watch only that one.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {
					Namespaces: map[string]cache.Config{namespace: {}},
					Field:      fields.OneTermEqualSelector("metadata.name", certSecret),
				},
			},
		},
	})
	if err != nil {
		setupLog.Error(err, "Failed to start manager")
		os.Exit(1)
	}

	ctx := ctrl.SetupSignalHandler()
	if err := controller.Setup(ctx, mgr, controller.Config{
		PrometheusAddress: prometheusAddress,
		QueryTimeout:      queryTimeout,
		Sources:           controller.PrometheusSources(sli.WithTimeout(queryTimeout)),
	}); err != nil {
		setupLog.Error(err, "Failed to set up controllers")
		os.Exit(1)
	}
	if webhookServer != nil {
		certsReady := make(chan struct{})
		if certRotation && webhookCertPath == "" {
			setupLog.Info("Rotating the webhook certificate", "secret", namespace+"/"+certSecret)
			if err := rotator.AddRotator(mgr, &rotator.CertRotator{
				SecretKey:      types.NamespacedName{Namespace: namespace, Name: certSecret},
				CertDir:        webhookServerOptions.CertDir,
				CAName:         "budgetgate-ca",
				CAOrganization: "budgetgate",
				DNSName:        fmt.Sprintf("%s.%s.svc", webhookService, namespace),
				ExtraDNSNames:  []string{fmt.Sprintf("%s.%s.svc.cluster.local", webhookService, namespace)},
				IsReady:        certsReady,
				Webhooks: []rotator.WebhookInfo{
					{Name: "budgetgate-validating-webhook-configuration", Type: rotator.Validating},
					{Name: "budgetgate-workload-release-gate", Type: rotator.Validating},
				},
				// Every replica serves the webhook, so every replica needs the certificate.
				RequireLeaderElection: false,
			}); err != nil {
				setupLog.Error(err, "Failed to set up certificate rotation")
				os.Exit(1)
			}
		} else {
			close(certsReady)
		}
		go func() {
			// The webhook server reads its certificate when it starts: register
			// (and so start) it only once the certificate exists.
			<-certsReady
			if err := bgwebhook.Setup(mgr, nil); err != nil {
				setupLog.Error(err, "Failed to set up webhooks")
				os.Exit(1)
			}
			setupLog.Info("Serving webhooks")
		}()
	}
	// +kubebuilder:scaffold:builder

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up health check")
		os.Exit(1)
	}
	readyz := healthz.Ping
	if webhookServer != nil {
		// Ready once the webhook serves: the API server may call any replica.
		readyz = webhookServer.StartedChecker()
	}
	if err := mgr.AddReadyzCheck("readyz", readyz); err != nil {
		setupLog.Error(err, "Failed to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager")
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "Failed to run manager")
		os.Exit(1)
	}
}
