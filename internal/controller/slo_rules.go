package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/rules"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=prometheusrules,verbs=get;list;watch;create;update;patch;delete

// prometheusRuleGVK is the Prometheus Operator's PrometheusRule.
var prometheusRuleGVK = schema.GroupVersionKind{Group: monitoringv1.SchemeGroupVersion.Group, Version: "v1", Kind: monitoringv1.PrometheusRuleKind}

// PrometheusRuleName is the name of the PrometheusRule of an SLO.
func PrometheusRuleName(slo string) string { return rules.PrometheusRuleName(slo) }

// startRuleWatch returns a function that starts, once, the watch through
// which a PrometheusRule that someone changed or deleted re-queues its SLO.
// It is called when the cluster is seen to serve PrometheusRules: at the
// first evaluation with alerting on, or later when the CRD is installed.
func startRuleWatch(mgr ctrl.Manager, c controller.Controller) func() error {
	var (
		mu      sync.Mutex
		started bool
	)
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		if started {
			return nil
		}
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(prometheusRuleGVK)
		err := c.Watch(source.Kind(mgr.GetCache(), client.Object(obj),
			handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &slov1alpha1.ServiceLevelObjective{}, handler.OnlyControllerOwner()),
			predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})))
		started = err == nil
		return err
	}
}

// syncRules writes, updates or deletes the SLO's PrometheusRule as its
// alerting says, and reports in status and the RulesWritten condition. It
// does not fail the evaluation: rules are the SLO's pages, the freeze does
// not depend on them.
func (r *ServiceLevelObjectiveReconciler) syncRules(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective, p policy.Policy) {
	log := ctrl.LoggerFrom(ctx)
	if !policy.AlertingEnabled(slo, p) {
		if slo.Status.PrometheusRule != nil {
			if err := r.deleteRules(ctx, slo); err != nil {
				setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed,
					fmt.Sprintf("alerting is off, and PrometheusRule %s could not be deleted: %v", slo.Status.PrometheusRule.Name, err))
				return
			}
		}
		slo.Status.PrometheusRule = nil
		apimeta.RemoveStatusCondition(&slo.Status.Conditions, slov1alpha1.ConditionRulesWritten)
		return
	}
	if _, err := r.RESTMapper().RESTMapping(prometheusRuleGVK.GroupKind(), prometheusRuleGVK.Version); err != nil {
		if apimeta.IsNoMatchError(err) {
			slo.Status.PrometheusRule = nil
			setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonPrometheusRuleCRDMissing,
				"alerting is on, but this cluster does not serve monitoring.coreos.com/v1 PrometheusRules (the Prometheus Operator's CRD): "+
					"the rules are not written; install the CRD, or load the rules as a file (kubectl budgetgate rules "+slo.Name+" -n "+slo.Namespace+")")
			return
		}
		setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed, "looking up the PrometheusRule kind: "+err.Error())
		return
	}
	if r.startRuleWatch != nil {
		if err := r.startRuleWatch(); err != nil {
			log.Error(err, "Cannot watch PrometheusRules: a changed one is written again only when its SLO's rules change")
		}
	}
	groups, err := rules.Generate(slo, p, rules.OptionsFor(slo, p))
	if err != nil {
		setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed, err.Error())
		return
	}
	want := rules.PrometheusRule(slo, groups, r.RuleLabels)
	if err := controllerutil.SetControllerReference(slo, want, r.Scheme()); err != nil {
		setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed, err.Error())
		return
	}
	hash, err := specHash(want)
	if err != nil {
		setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed, err.Error())
		return
	}
	recording, alerts := countRules(groups)
	rec, err := rules.RecordedQuery(slo, p, rules.Options{})
	if err != nil {
		setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed, err.Error())
		return
	}
	st := slo.Status.PrometheusRule
	if st == nil || st.Hash != hash || st.Name != want.Name || r.ruleChanged(ctx, want, st.Generation) {
		// Server-side apply, forced: budgetgate owns every field of the
		// rule, and takes back any that someone else changed.
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
		if err == nil {
			obj := &unstructured.Unstructured{Object: u}
			err = r.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldManager), client.ForceOwnership)
			want.Generation = obj.GetGeneration()
		}
		if err != nil {
			setRulesCondition(slo, metav1.ConditionFalse, slov1alpha1.ReasonRulesFailed,
				fmt.Sprintf("writing PrometheusRule %s: %v", want.Name, err))
			return
		}
		log.Info("Wrote the SLO's PrometheusRule", "prometheusRule", klog.KObj(want), "recordingRules", recording, "alerts", alerts)
		prev := st
		st = &slov1alpha1.PrometheusRuleStatus{Name: want.Name, Hash: hash, Generation: want.Generation}
		// The recordings keep their history while their expressions stay.
		if prev != nil && prev.RecordingHash == rec.Hash && prev.RecordingSince != nil {
			st.RecordingHash, st.RecordingSince = prev.RecordingHash, prev.RecordingSince
		}
	}
	if st.RecordingHash != rec.Hash || st.RecordingSince == nil {
		st.RecordingHash, st.RecordingSince = rec.Hash, &metav1.Time{Time: r.Clock.Now()}
	}
	st.RecordingRules, st.Alerts = recording, alerts
	slo.Status.PrometheusRule = st
	setRulesCondition(slo, metav1.ConditionTrue, slov1alpha1.ReasonRulesWritten,
		fmt.Sprintf("PrometheusRule %s holds %d recording rules and %d alerts", want.Name, recording, alerts))
}

// ruleChanged says whether the live PrometheusRule is missing or at another
// generation than the one budgetgate wrote (someone changed it).
func (r *ServiceLevelObjectiveReconciler) ruleChanged(ctx context.Context, want *monitoringv1.PrometheusRule, generation int64) bool {
	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(prometheusRuleGVK)
	// From the cache: the watch keeps the metadata of PrometheusRules.
	if err := r.Get(ctx, client.ObjectKeyFromObject(want), live); err != nil {
		return true
	}
	return live.Generation != generation
}

func (r *ServiceLevelObjectiveReconciler) deleteRules(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) error {
	name := PrometheusRuleName(slo.Name)
	if slo.Status.PrometheusRule != nil {
		name = slo.Status.PrometheusRule.Name
	}
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: slo.Namespace, Name: name}}
	obj.SetGroupVersionKind(prometheusRuleGVK)
	err := r.Delete(ctx, obj)
	if err == nil || kerrors.IsNotFound(err) || apimeta.IsNoMatchError(err) {
		return nil
	}
	return err
}

func setRulesCondition(slo *slov1alpha1.ServiceLevelObjective, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&slo.Status.Conditions, metav1.Condition{
		Type: slov1alpha1.ConditionRulesWritten, Status: status, Reason: reason, Message: msg, ObservedGeneration: slo.Generation,
	})
}

func specHash(pr *monitoringv1.PrometheusRule) (string, error) {
	b, err := json.Marshal(struct {
		Labels map[string]string
		Spec   monitoringv1.PrometheusRuleSpec
	}{pr.Labels, pr.Spec})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

func countRules(groups []monitoringv1.RuleGroup) (recording, alerts int32) {
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts++
			} else {
				recording++
			}
		}
	}
	return recording, alerts
}

// measureRecorded reads, in one query, every window the SLO's recorded
// series can answer for, and returns those results and the windows left to
// measure raw. It records in out which windows came from where, and why
// any went raw.
func (r *ServiceLevelObjectiveReconciler) measureRecorded(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective, in inputs,
	windows []time.Duration, src sli.Source, out *measurement) (map[time.Duration]sli.Result, []time.Duration) {
	results := map[time.Duration]sli.Result{}
	raw := func(why string) (map[time.Duration]sli.Result, []time.Duration) {
		out.raw, out.rawWhy = windows, why
		return results, windows
	}
	st := slo.Status.PrometheusRule
	if st == nil || !apimeta.IsStatusConditionTrue(slo.Status.Conditions, slov1alpha1.ConditionRulesWritten) {
		return raw("alerting is off or its rules are not written: every window is measured raw")
	}
	recSrc, ok := src.(sli.RecordedSource)
	if !ok {
		return raw("the source cannot read recorded series")
	}
	rec, err := rules.RecordedQuery(slo, in.policy, rules.Options{})
	if err != nil || rec.Hash != st.RecordingHash || st.RecordingSince == nil {
		return raw("the recording rules are being rewritten")
	}
	got, err := recSrc.MeasureRecorded(ctx, rec.Query)
	out.queries++
	if err != nil {
		if errors.Is(err, sli.ErrAmbiguousRecorded) {
			return raw("the recorded series cannot be trusted, every window is measured raw: " + err.Error() +
				" (another rule records series under this SLO's sloth_* labels)")
		}
		return raw("reading the recorded series failed, every window is measured raw: " + err.Error())
	}
	since := r.Clock.Now().Sub(st.RecordingSince.Time)
	var missing, young []string
	for _, w := range windows {
		res, found := got[w]
		switch {
		case rec.NeedsHistory && w == rec.HistoryWindow && since < w:
			young = append(young, model.Duration(w).String())
			out.raw = append(out.raw, w)
		case !found:
			missing = append(missing, model.Duration(w).String())
			out.raw = append(out.raw, w)
		default:
			results[w] = res
			out.recorded = append(out.recorded, w)
		}
	}
	var why []string
	if len(young) > 0 {
		why = append(why, fmt.Sprintf("the recording rules have run for %s, less than the %s the SLO window's recorded ratio sums (recording since %s)",
			model.Duration(since.Truncate(time.Second)), strings.Join(young, ", "), st.RecordingSince.UTC().Format(time.RFC3339)))
	}
	if len(missing) > 0 {
		why = append(why, "no recorded series yet for "+strings.Join(missing, ", ")+
			" (Prometheus has not loaded or evaluated the PrometheusRule: check that its ruleSelector matches --prometheus-rule-labels)")
	}
	out.rawWhy = strings.Join(why, "; ")
	return results, out.raw
}

// sliSource is the status of where an evaluation read its windows.
func sliSource(m measurement) *slov1alpha1.SLISourceStatus {
	names := func(ws []time.Duration) []string {
		ws = slices.Sorted(slices.Values(ws))
		out := make([]string, 0, len(ws))
		for _, w := range ws {
			out = append(out, model.Duration(w).String())
		}
		return out
	}
	st := &slov1alpha1.SLISourceStatus{Queries: int32(m.queries), Recorded: names(m.recorded), Raw: names(m.raw)}
	if len(m.raw) > 0 {
		st.Message = m.rawWhy
	}
	return st
}
