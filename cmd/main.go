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

// Command manager is the budgetgate operator: the SLO, policy and exception
// controllers under leader election, and the admission webhooks on every
// replica. main parses flags into options; run wires the manager.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crleaderelection "sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/certsync"
	"github.com/budgetgate/budgetgate/internal/certtrust"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/leader"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/version"
	bgwebhook "github.com/budgetgate/budgetgate/internal/webhook"
	"github.com/budgetgate/budgetgate/internal/workload"
	// +kubebuilder:scaffold:imports
)

// leaseName is the leader election Lease, in the operator's namespace.
const leaseName = "budgetgate.slo.budgetgate.dev"

// Leader election timings by default (--leader-elect-lease-duration,
// --leader-elect-renew-deadline, --leader-elect-retry-period), shorter than controller-runtime's defaults (15s,
// 10s, 2s). When the leader dies without stepping down, another replica takes
// the lease once leaseDuration has passed since it last saw the leader renew,
// at its next try; it sees a renewal, and tries again, within one retry
// period jittered by client-go's factor 1.2. So the SLOs are evaluated again
// at most leaseDuration + 2 × 2.2 × retryPeriod = 14.4s after the leader
// died, plus the start of the new leader's controllers: inside the 20s
// budgetgate promises (docs/reliability.md#failover-and-certificate-rotation),
// where the defaults allow 23.8s. The price: the leader renews every second,
// and every other replica reads the Lease every 1 to 2.2s.
const (
	leaseDuration = 10 * time.Second
	// renewDeadline is how long the leader keeps trying to renew before it
	// steps down. Its reconcilers stop writing as soon as that long has
	// passed since the last renewal (internal/leader): no other replica can
	// take the lease before leaseDuration, 3s later.
	renewDeadline = 7 * time.Second
	retryPeriod   = time.Second
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(slov1alpha1.AddToScheme(scheme))
	utilruntime.Must(monitoringv1.AddToScheme(scheme))
	// +kubebuilder:scaffold:scheme
}

// options are the manager's flags.
type options struct {
	metricsAddr, metricsCertPath, metricsCertName, metricsCertKey string
	webhookCertPath, webhookCertName, webhookCertKey              string
	webhookPort                                                   int
	leaderElect                                                   bool
	leaseDuration, renewDeadline, retryPeriod                     time.Duration
	leaderElectionNamespace                                       string
	probeAddr, pprofAddr                                          string
	secureMetrics, enableHTTP2                                    bool
	prometheusAddress, prometheusConnections                      string
	connections                                                   *promconn.Set
	ruleLabels                                                    string
	queryTimeout, decisionDeadline                                time.Duration
	certRotation                                                  bool
	certSecret, webhookService, webhookNamePrefix                 string
	historyWriters                                                []string
	contact                                                       string
	zap                                                           zap.Options
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseFlags reads the manager's flags from args into fs, which must be
// flag.CommandLine in main: controller-runtime registers --kubeconfig there.
func parseFlags(fs *flag.FlagSet, args []string) (options, bool, error) {
	var o options
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; defaults to the namespace the manager runs in (needed out of cluster).")
	fs.BoolVar(&o.certRotation, "webhook-cert-rotation", true,
		"Generate and rotate the webhook serving certificate (stored in a Secret, CA injected into budgetgate's "+
			"webhook configurations). Ignored when --webhook-cert-path is set (e.g. certificates from cert-manager).")
	fs.StringVar(&o.certSecret, "webhook-cert-secret", "budgetgate-webhook-server-cert",
		"Secret in the operator's namespace that holds the rotated webhook certificate.")
	fs.StringVar(&o.webhookService, "webhook-service", "budgetgate-webhook-service",
		"Service in front of the webhook server; the rotated certificate is issued for its DNS name.")
	fs.StringVar(&o.webhookNamePrefix, "webhook-configuration-prefix", "budgetgate-",
		"Prefix of the names of budgetgate's webhook configurations (PREFIXvalidating-webhook-configuration, "+
			"PREFIXmutating-webhook-configuration, PREFIXworkload-release-gate), into which certificate rotation injects its CA.")
	fs.StringVar(&o.prometheusAddress, "prometheus-address", "http://localhost:9090",
		"Base URL of the Prometheus HTTP API of the connection named \"default\", without authentication, "+
			"which measures SLOs that name no connection. Not used with --prometheus-connections unless set explicitly.")
	fs.StringVar(&o.prometheusConnections, "prometheus-connections", "",
		"File of named Prometheus connections (URL, which namespaces may use it, and prometheus/common's "+
			"http_client_config: bearer token or basic auth files, TLS, headers such as X-Scope-OrgID, proxy); "+
			"SLOs pick one by name in spec.prometheus.connection. See docs/prometheus.md.")
	fs.StringVar(&o.ruleLabels, "prometheus-rule-labels", "",
		"Labels put on every PrometheusRule budgetgate writes for SLOs with alerting on, as k=v,k2=v2: those the "+
			"Prometheus selects rules by, e.g. release=kube-prometheus-stack for kube-prometheus-stack's default ruleSelector.")
	fs.DurationVar(&o.queryTimeout, "query-timeout", sli.DefaultTimeout,
		"Timeout of each Prometheus query. An evaluation of n windows may take one timeout per round of "+
			fmt.Sprint(sli.MaxConcurrentQueries)+" concurrent queries.")
	fs.DurationVar(&o.decisionDeadline, "decision-deadline", bgwebhook.DefaultDeadline,
		"Deadline of the lookups of one admission decision; past it the release is denied as unverified. "+
			"Keep it well inside the webhooks' timeoutSeconds (3s), past which the API server ignores the release gate.")
	fs.StringVar(&o.contact, "contact", "",
		"Where people whose release is denied get help and FreezeExceptions, e.g. a runbook URL or a chat channel: "+
			"the last line of every deny message. Empty: they are told to ask their platform team.")
	fs.Var((*stringList)(&o.historyWriters), "history-writer",
		"KIND=USER: also let USER write the revision history of KIND during a freeze (repeatable), for clusters whose "+
			"workload controllers run under other identities than kube-controller-manager's service accounts.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"The address the Go pprof endpoint (/debug/pprof/) binds to, e.g. 127.0.0.1:8082, for profiling "+
			"(make bench-admission); 0 disables it. It has no authentication: bind it to loopback only.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Enable leader election for controller manager. Enabling this will ensure there is only one active controller manager.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", leaseDuration,
		"How long the other replicas wait, after the leader last renewed, before they take its Lease. "+
			"Shorter fails over sooner; see --leader-elect-renew-deadline for the price.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", renewDeadline,
		"How long the leader keeps trying to renew its Lease before it stops writing and exits. "+
			"On an API server so loaded that renewals take longer, the leader gives up (make bench-scale saw it at "+
			"200 updates/s on 2 cores): raise it, with the lease duration, to trade failover time for staying leader.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", retryPeriod,
		"How often the leader renews and the other replicas try to take the Lease.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served securely via HTTPS. Use --metrics-secure=false to use HTTP instead.")
	fs.StringVar(&o.webhookCertPath, "webhook-cert-path", "", "The directory that contains the webhook certificate.")
	fs.StringVar(&o.webhookCertName, "webhook-cert-name", "tls.crt", "The name of the webhook certificate file.")
	fs.StringVar(&o.webhookCertKey, "webhook-cert-key", "tls.key", "The name of the webhook key file.")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "Port the webhook server listens on. Set -1 to disable the webhook server.")
	fs.StringVar(&o.metricsCertPath, "metrics-cert-path", "", "The directory that contains the metrics server certificate.")
	fs.StringVar(&o.metricsCertName, "metrics-cert-name", "tls.crt", "The name of the metrics server certificate file.")
	fs.StringVar(&o.metricsCertKey, "metrics-cert-key", "tls.key", "The name of the metrics server key file.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "If set, HTTP/2 will be enabled for the metrics and webhook servers")
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if err := checkLeaderElection(o.leaseDuration, o.renewDeadline, o.retryPeriod); err != nil {
		fmt.Fprintln(fs.Output(), err)
		return o, false, err
	}
	if *showVersion {
		return o, true, nil
	}
	conns, err := connections(o.prometheusConnections, o.prometheusAddress, isSet(fs, "prometheus-address"))
	if err != nil {
		fmt.Fprintln(fs.Output(), err)
		return o, false, err
	}
	o.connections = conns
	if _, err := labels.ConvertSelectorToLabelsMap(o.ruleLabels); err != nil {
		err = fmt.Errorf("--prometheus-rule-labels %q: %w; write k=v,k2=v2", o.ruleLabels, err)
		fmt.Fprintln(fs.Output(), err)
		return o, false, err
	}
	return o, false, nil
}

// connections are the Prometheus connections of --prometheus-connections,
// plus "default" from --prometheus-address when there is no file or the flag
// was set; a default in both is an error.
func connections(file, address string, addressSet bool) (*promconn.Set, error) {
	if file == "" {
		return promconn.FromAddress(address)
	}
	conns, err := promconn.Load(file)
	if err != nil {
		return nil, fmt.Errorf("--prometheus-connections: %w", err)
	}
	if addressSet {
		def, err := promconn.FromAddress(address)
		if err != nil {
			return nil, err
		}
		if err := conns.Merge(def); err != nil {
			return nil, fmt.Errorf("--prometheus-address and --prometheus-connections both define the connection %q: keep one", promconn.DefaultName)
		}
	}
	return conns, nil
}

// isSet says whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkLeaderElection refuses timings with which client-go's leader election
// cannot work: the leader must give up before the others may take the Lease,
// and try more than once before it gives up.
func checkLeaderElection(lease, renew, retry time.Duration) error {
	switch {
	case retry <= 0:
		return fmt.Errorf("--leader-elect-retry-period %s: must be positive", retry)
	case renew <= retry:
		return fmt.Errorf("--leader-elect-renew-deadline %s: must be longer than --leader-elect-retry-period %s", renew, retry)
	case lease <= renew:
		return fmt.Errorf("--leader-elect-lease-duration %s: must be longer than --leader-elect-renew-deadline %s", lease, renew)
	}
	return nil
}

func main() {
	opts, showVersion, err := parseFlags(flag.CommandLine, os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	if showVersion {
		fmt.Println(version.String("manager"))
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		setupLog.Error(err, "Manager stopped")
		os.Exit(1)
	}
}

// Certificate rotation injects the CA into budgetgate's own webhook configurations.
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch;update;patch

// run wires and runs the manager until ctx ends.
func run(ctx context.Context, o options) error {
	setupLog.Info("Starting budgetgate", "version", version.Version, "commit", version.Commit)
	for _, name := range o.connections.Names() {
		c, _ := o.connections.Get(name)
		setupLog.Info("Prometheus connection", "name", name, "url", c.URL, "namespaceSelector", c.NamespaceSelector)
	}
	// HTTP/2 stays off unless asked for: the HTTP/2 Stream Cancellation and
	// Rapid Reset CVEs (GHSA-qppj-fm5r-hxr3, GHSA-4374-p667-p6c8).
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	kinds := workload.Default()
	for _, w := range o.historyWriters {
		kind, user, ok := strings.Cut(w, "=")
		if !ok || user == "" {
			return fmt.Errorf("--history-writer %q: want KIND=USER, e.g. Deployment=system:serviceaccount:kube-system:deployment-controller", w)
		}
		if err := kinds.AddWriters(kind, user); err != nil {
			return fmt.Errorf("--history-writer %q: %w (gated kinds: %s)", w, err, strings.Join(kinds.Names(), ", "))
		}
	}

	webhookOptions := webhook.Options{TLSOpts: tlsOpts, Port: o.webhookPort}
	if o.webhookCertPath != "" {
		setupLog.Info("Serving webhooks with the given certificate", "webhook-cert-path", o.webhookCertPath)
		webhookOptions.CertDir, webhookOptions.CertName, webhookOptions.KeyName = o.webhookCertPath, o.webhookCertName, o.webhookCertKey
	} else {
		webhookOptions.CertDir = filepath.Join(os.TempDir(), "budgetgate-webhook-certs")
	}
	var webhookServer webhook.Server
	if o.webhookPort >= 0 {
		webhookServer = webhook.NewServer(webhookOptions)
	}
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" {
		namespace = "budgetgate-system"
	}
	metricsOptions := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		// Only authenticated and authorised clients may read the metrics (config/rbac/metrics_*).
		metricsOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if o.metricsCertPath != "" {
		metricsOptions.CertDir, metricsOptions.CertName, metricsOptions.KeyName = o.metricsCertPath, o.metricsCertName, o.metricsCertKey
	}

	cfg := ctrl.GetConfigOrDie()
	// The reconcilers write only while this replica holds the lease (see
	// internal/leader): the lock is controller-runtime's own, wrapped.
	var (
		lease *leader.Lease
		lock  resourcelock.Interface
		err   error
	)
	if o.leaderElect {
		if lease, err = leader.NewLease(cfg, crleaderelection.Options{LeaderElection: true, LeaderElectionID: leaseName,
			LeaderElectionNamespace: o.leaderElectionNamespace, RenewDeadline: o.renewDeadline}); err != nil {
			return fmt.Errorf("setting up leader election: %w", err)
		}
		lock = lease
		setupLog.Info("Running for the leader lease", "lease", lease.Describe(), "identity", lease.Identity())
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOptions,
		WebhookServer:          webhookServer,
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		LeaderElection:         o.leaderElect,
		LeaderElectionID:       leaseName,
		// The program ends as soon as the manager stops, so stepping down on
		// cancel is safe and hands over to the next replica at once.
		LeaderElectionReleaseOnCancel:       true,
		LeaderElectionNamespace:             o.leaderElectionNamespace,
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       durationOf(o.leaseDuration),
		RenewDeadline:                       durationOf(o.renewDeadline),
		RetryPeriod:                         durationOf(o.retryPeriod),
		// The operator caches only its own kinds (workloads are listed on demand),
		// and drops managedFields from what it caches.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			// Certificate rotation reads one Secret: watch only that one.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {
					Namespaces: map[string]cache.Config{namespace: {}},
					Field:      fields.OneTermEqualSelector("metadata.name", o.certSecret),
				},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	var fence func() error
	if lease != nil {
		lease.UseRecorder(mgr.GetEventRecorder("budgetgate"))
		fence = lease.Held
	}
	ruleLabels, err := labels.ConvertSelectorToLabelsMap(o.ruleLabels)
	if err != nil {
		return fmt.Errorf("--prometheus-rule-labels: %w", err)
	}
	if err := controller.Setup(ctx, mgr, controller.Config{
		Connections:  o.connections,
		RuleLabels:   ruleLabels,
		QueryTimeout: o.queryTimeout,
		Sources:      controller.PrometheusSources(sli.WithTimeout(o.queryTimeout)),
		Kinds:        kinds,
		Fence:        fence,
	}); err != nil {
		return fmt.Errorf("setting up controllers: %w", err)
	}
	if webhookServer != nil {
		if err := setupWebhooks(ctx, mgr, o, namespace, webhookOptions.CertDir, bgwebhook.Options{
			Kinds: kinds, Deadline: o.decisionDeadline, Connections: o.connections,
		}); err != nil {
			return err
		}
	}
	// +kubebuilder:scaffold:builder

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the health check: %w", err)
	}
	readyz := healthz.Ping
	if webhookServer != nil {
		// Ready once the webhook serves: the API server may call any replica.
		readyz = webhookServer.StartedChecker()
	}
	if err := mgr.AddReadyzCheck("readyz", readyz); err != nil {
		return fmt.Errorf("setting up the ready check: %w", err)
	}
	setupLog.Info("Starting manager")
	return mgr.Start(ctx)
}

// setupWebhooks registers the webhooks once the serving certificate exists:
// rotated by the manager itself unless --webhook-cert-path gives one.
func setupWebhooks(ctx context.Context, mgr ctrl.Manager, o options, namespace, certDir string, wopts bgwebhook.Options) error {
	if err := ctrlmetrics.Registry.Register(bgwebhook.CertificateExpiry{Dir: certDir}); err != nil {
		return fmt.Errorf("registering the certificate expiry metric: %w", err)
	}
	certsReady := make(chan struct{})
	if o.certRotation && o.webhookCertPath == "" {
		setupLog.Info("Rotating the webhook certificate", "secret", namespace+"/"+o.certSecret)
		secret := types.NamespacedName{Namespace: namespace, Name: o.certSecret}
		validating, mutating, gate := o.webhookNamePrefix+"validating-webhook-configuration",
			o.webhookNamePrefix+"mutating-webhook-configuration", o.webhookNamePrefix+"workload-release-gate"
		// The API server keeps trusting every replica through a rotation, and a
		// deleted Secret comes back (see internal/certtrust).
		trust := &certtrust.Trust{
			Secret:   secret,
			Webhooks: []certtrust.Webhook{{Name: validating}, {Name: mutating, Mutating: true}, {Name: gate}},
			Reader:   mgr.GetAPIReader(),
			Client:   mgr.GetClient(),
			Overlap:  10 * time.Minute,
		}
		// The rotation cannot start without its Secret.
		if err := trust.Ensure(ctx); err != nil {
			return err
		}
		if err := mgr.Add(trust); err != nil {
			return fmt.Errorf("setting up the certificate Secret keeper: %w", err)
		}
		if err := rotator.AddRotator(trust.Manager(mgr), &rotator.CertRotator{
			SecretKey:      secret,
			CertDir:        certDir,
			CAName:         "budgetgate-ca",
			CAOrganization: "budgetgate",
			DNSName:        fmt.Sprintf("%s.%s.svc", o.webhookService, namespace),
			ExtraDNSNames:  []string{fmt.Sprintf("%s.%s.svc.cluster.local", o.webhookService, namespace)},
			IsReady:        certsReady,
			Webhooks: []rotator.WebhookInfo{
				{Name: validating, Type: rotator.Validating},
				{Name: mutating, Type: rotator.Mutating},
				{Name: gate, Type: rotator.Validating},
			},
			// Every replica serves the webhook, so every replica needs the certificate.
			RequireLeaderElection: false,
		}); err != nil {
			return fmt.Errorf("setting up certificate rotation: %w", err)
		}
		// The rotation writes the Secret and waits for the files; every replica
		// writes them from the Secret (see internal/certsync).
		if err := mgr.Add(&certsync.Syncer{
			Reader:  mgr.GetClient(),
			Secret:  secret,
			Dir:     certDir,
			Trusted: trust.Trusted,
		}); err != nil {
			return fmt.Errorf("setting up the certificate files: %w", err)
		}
	} else {
		close(certsReady)
	}
	wopts.Contact = o.contact
	go func() {
		// The webhook server reads its certificate when it starts: register
		// (and so start) it only once the certificate exists.
		<-certsReady
		if err := bgwebhook.Setup(mgr, wopts); err != nil {
			setupLog.Error(err, "Failed to set up webhooks")
			os.Exit(1)
		}
		setupLog.Info("Serving webhooks")
	}()
	return nil
}

func durationOf(d time.Duration) *time.Duration { return &d }
