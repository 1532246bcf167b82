package webhook

import (
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

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
	}})
	srv.Register(HistoryPath, &admission.Webhook{Handler: &HistoryHandler{
		Cache:     mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder,
		Kinds:     opts.Kinds,
		Deadline:  opts.Deadline,
	}})
	srv.Register(SLOPath, &admission.Webhook{Handler: &SLOHandler{
		Cache: mgr.GetClient(), Writer: mgr.GetClient(), Recorder: recorder, Deadline: opts.Deadline,
	}})
	srv.Register(PolicyPath, &admission.Webhook{Handler: &PolicyHandler{Cache: mgr.GetClient(), Recorder: recorder}})
	srv.Register(ExceptionPath, &admission.Webhook{Handler: &ExceptionHandler{
		Cache: mgr.GetClient(), Writer: mgr.GetClient(), Clock: opts.Clock, Deadline: opts.Deadline,
	}})
	srv.Register(ExceptionMutatePath, &admission.Webhook{Handler: &ExceptionMutator{Clock: opts.Clock}})
	return nil
}
