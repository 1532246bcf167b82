package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/budgetgate/budgetgate/internal/leader"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// Config wires the controllers. main.go and the envtest suite both use Setup, so
// the suite runs exactly the manager that ships.
type Config struct {
	// Connections are the Prometheus connections SLOs may name
	// (--prometheus-connections).
	Connections *promconn.Set
	// PrometheusAddress, when Connections is nil, is the URL of the only
	// connection, "default", without authentication (--prometheus-address).
	PrometheusAddress string
	// QueryTimeout bounds each Prometheus query (sli.DefaultTimeout by default);
	// an evaluation gets one per round of concurrent queries.
	QueryTimeout time.Duration
	// Sources gives the SLI source of a Prometheus connection; PrometheusSources by default.
	Sources SourceFor
	// Clock is the time the budget engine sees; the real clock by default.
	Clock clock.PassiveClock
	// RequeueAfter maps an evaluation interval to the delay before the next one; ±5% jitter by default.
	RequeueAfter func(time.Duration) time.Duration
	// MaxConcurrentReconciles of the SLO controller (queries run in parallel up to this).
	MaxConcurrentReconciles int
	// Kinds are the gated workload kinds; workload.Default() by default.
	Kinds *workload.Registry
	// KindDiscoveryInterval is how often the manager looks whether the
	// optional gated kinds (Argo Rollouts) are served;
	// workload.DefaultDiscoveryInterval by default.
	KindDiscoveryInterval time.Duration
	// RuleLabels are put on every PrometheusRule the SLO controller writes
	// (--prometheus-rule-labels), e.g. release=kube-prometheus-stack.
	RuleLabels map[string]string
	// Fence, when set, is asked before every SLO evaluation and every write
	// and Event of the controllers, which are skipped or refused while it
	// fails. main.go passes the leader lease's Held (internal/leader): a
	// replica that may have lost its lease stops writing at once, not when its
	// manager exits a renew deadline later.
	Fence func() error
}

// Setup registers the field indexes and the three controllers with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config) error {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = sli.DefaultTimeout
	}
	if cfg.Kinds == nil {
		cfg.Kinds = workload.Default()
	}
	if cfg.Sources == nil {
		cfg.Sources = PrometheusSources()
	}
	if cfg.Connections == nil && cfg.PrometheusAddress != "" {
		conns, err := promconn.FromAddress(cfg.PrometheusAddress)
		if err != nil {
			return err
		}
		cfg.Connections = conns
	}
	if cfg.MaxConcurrentReconciles == 0 {
		cfg.MaxConcurrentReconciles = 8
	}
	if err := SetupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("setting up indexes: %w", err)
	}
	if err := setupKindDiscovery(ctx, mgr, cfg.Kinds, cfg.KindDiscoveryInterval); err != nil {
		return err
	}
	c, events := mgr.GetClient(), mgr.GetEventRecorder("budgetgate")
	if cfg.Fence != nil {
		c, events = leader.Fence(c, cfg.Fence), leader.FenceRecorder(events, cfg.Fence)
	}
	slo := &ServiceLevelObjectiveReconciler{
		Client:       c,
		APIReader:    mgr.GetAPIReader(),
		Recorder:     events,
		Clock:        cfg.Clock,
		Sources:      cfg.Sources,
		Connections:  cfg.Connections,
		QueryTimeout: cfg.QueryTimeout,
		RequeueAfter: cfg.RequeueAfter,
		Kinds:        cfg.Kinds,
		Fence:        cfg.Fence,
		RuleLabels:   cfg.RuleLabels,
	}
	if err := slo.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: cfg.MaxConcurrentReconciles}); err != nil {
		return fmt.Errorf("setting up the ServiceLevelObjective controller: %w", err)
	}
	if err := (&ErrorBudgetPolicyReconciler{Client: c}).SetupWithManager(mgr, controller.Options{}); err != nil {
		return fmt.Errorf("setting up the ErrorBudgetPolicy controller: %w", err)
	}
	if err := (&FreezeExceptionReconciler{Client: c, Clock: cfg.Clock}).SetupWithManager(mgr, controller.Options{}); err != nil {
		return fmt.Errorf("setting up the FreezeException controller: %w", err)
	}
	return nil
}

// PrometheusSources returns a SourceFor that keeps one Prometheus client per
// connection, with the connection's HTTP client configuration (credentials
// and certificates are files, read again as they change).
func PrometheusSources(opts ...sli.Option) SourceFor {
	var mu sync.Mutex
	sources := map[*promconn.Connection]sli.Source{}
	return func(conn *promconn.Connection) (sli.Source, error) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := sources[conn]; ok {
			return s, nil
		}
		s, err := conn.Source(opts...)
		if err != nil {
			return nil, err
		}
		sources[conn] = s
		return s, nil
	}
}
