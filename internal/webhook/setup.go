package webhook

import (
	"fmt"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// Setup registers the workload webhook and the validation of budgetgate's kinds
// on the manager's webhook server. Every replica serves them; they read the
// informer cache, so no leader is needed.
func Setup(mgr ctrl.Manager, clk clock.PassiveClock) error {
	if clk == nil {
		clk = clock.RealClock{}
	}
	mgr.GetWebhookServer().Register(WorkloadPath, &admission.Webhook{Handler: &WorkloadHandler{
		Cache:     mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Writer:    mgr.GetClient(),
		Recorder:  mgr.GetEventRecorder("budgetgate-webhook"),
		Clock:     clk,
	}})
	if err := ctrl.NewWebhookManagedBy(mgr, &slov1alpha1.ServiceLevelObjective{}).
		WithValidator(&SLOValidator{Cache: mgr.GetClient()}).Complete(); err != nil {
		return fmt.Errorf("setting up the ServiceLevelObjective webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &slov1alpha1.ErrorBudgetPolicy{}).
		WithValidator(&PolicyValidator{}).Complete(); err != nil {
		return fmt.Errorf("setting up the ErrorBudgetPolicy webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &slov1alpha1.FreezeException{}).
		WithValidator(&ExceptionValidator{Cache: mgr.GetClient(), Clock: clk}).Complete(); err != nil {
		return fmt.Errorf("setting up the FreezeException webhook: %w", err)
	}
	return nil
}
