package webhook

import (
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// Options configure the webhooks.
type Options struct {
	// Clock is the time decisions see; the real clock by default.
	Clock clock.PassiveClock
	// Kinds are the gated kinds; workload.Default() by default.
	Kinds *workload.Registry
	// Deadline bounds the lookups of one admission decision; DefaultDeadline by default.
	Deadline time.Duration
	// Contact is where the platform takes questions and requests for
	// exceptions, e.g. a runbook URL: the last line of every deny message
	// (the manager's --contact). Empty: "your platform team".
	Contact string
	// Connections are the Prometheus connections SLOs may name; an SLO that
	// names another, or one its namespace may not use, is rejected. Nil: not
	// checked (the controller still refuses to evaluate it).
	Connections *promconn.Set
}

// Setup registers every admission webhook on the manager's webhook server:
// the release gate, the history gate, and the admission of budgetgate's own
// kinds. Every replica serves them; they read the informer cache, so no leader
// is needed.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Kinds == nil {
		opts.Kinds = workload.Default()
	}
	recorder := mgr.GetEventRecorder("budgetgate-webhook")
	srv := mgr.GetWebhookServer()
	srv.Register(WorkloadPath, &admission.Webhook{Handler: &WorkloadHandler{
		Cache:     mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Writer:    mgr.GetClient(),
		Recorder:  recorder,
		Clock:     opts.Clock,
		Kinds:     opts.Kinds,
		Deadline:  opts.Deadline,
		Contact:   opts.Contact,
	}})
	srv.Register(HistoryPath, &admission.Webhook{Handler: &HistoryHandler{
		Cache:     mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder,
		Kinds:     opts.Kinds,
		Deadline:  opts.Deadline,
		Contact:   opts.Contact,
	}})
	srv.Register(SLOPath, &admission.Webhook{Handler: &SLOHandler{
		Cache: mgr.GetClient(), Writer: mgr.GetClient(), Recorder: recorder, Deadline: opts.Deadline, Contact: opts.Contact,
		Connections: opts.Connections,
	}})
	srv.Register(PolicyPath, &admission.Webhook{Handler: &PolicyHandler{Cache: mgr.GetClient(), Recorder: recorder}})
	srv.Register(BindingPath, &admission.Webhook{Handler: &BindingHandler{Cache: mgr.GetClient(), Recorder: recorder}})
	srv.Register(ExceptionPath, &admission.Webhook{Handler: &ExceptionHandler{
		Cache: mgr.GetClient(), Writer: mgr.GetClient(), Clock: opts.Clock, Deadline: opts.Deadline,
	}})
	srv.Register(ExceptionMutatePath, &admission.Webhook{Handler: &ExceptionMutator{Clock: opts.Clock}})
	return nil
}
