package freeze

import (
	"context"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
)

// A rollback passes a freeze because it restores a revision that was released
// before. That holds only if nobody but the workload's own controller could
// have written the revision: a user with the namespace's edit role may create
// ReplicaSets and ControllerRevisions, so without a gate they could forge a
// "previous revision" of any template, with a controller reference to the
// workload, and then "roll back" to it. DecideHistory is that gate.

// ClassHistory is the class of decisions on revision history (a metric label).
const ClassHistory Class = "history"

// OwnerRef is the controller reference of a revision: the workload it belongs to.
type OwnerRef struct {
	Kind, Name string
	UID        string
}

// HistoryRequest is a CREATE or UPDATE of a ReplicaSet or ControllerRevision
// that is, or becomes, controlled by a workload.
type HistoryRequest struct {
	Operation Operation
	// Kind of the history object (ReplicaSet, ControllerRevision), its namespace and name.
	Kind, Namespace, Name string
	User                  authenticationv1.UserInfo
	// OldController and NewController are the controller references before and
	// after; OldController is nil on CREATE or when there was none.
	OldController, NewController *OwnerRef
	// Created is the object's creation time (zero on CREATE).
	Created time.Time
	// ContentChanged: the revision's content (a ReplicaSet's template, a
	// ControllerRevision's data) differs from the old object's.
	ContentChanged bool
	// Contact, as in Request: the last line of a deny message.
	Contact string
}

// HistoryLookups is implemented by the webhook.
type HistoryLookups interface {
	// Owner returns the workload that ref names in namespace, or nil when there
	// is none with that UID or its kind is not gated.
	Owner(ctx context.Context, namespace string, ref OwnerRef) (*Workload, error)
	// MayWriteHistory reports whether user is one of the controllers that write
	// the history of kind.
	MayWriteHistory(kind string, user authenticationv1.UserInfo) bool
}

// DecideHistory decides a write of revision history. Rules:
//
//  1. No controller reference after the change, or the same controller and
//     the same content: Allow (nothing enters a workload's history).
//  2. The controlling workload does not exist, is not gated, or no frozen SLO
//     selects it: Allow, not-frozen.
//  3. The workload's own controller creating a revision, or changing one it
//     already controls: Allow. Adopting or re-pointing a revision created
//     during the freeze: Deny, even for the controller (a revision written for
//     another workload must not become this one's rollback target).
//  4. Anyone else: Deny (Warn when only DryRun SLOs select the workload).
//
// A failed owner lookup denies (the API server retries controllers; people
// see why). The decision never calls Authorized: who writes history is an
// identity, not a permission anyone could be granted by mistake.
func DecideHistory(ctx context.Context, req HistoryRequest, frozen []FrozenSLO, lookups HistoryLookups) Result {
	if ctx == nil {
		ctx = context.Background()
	}
	obj := req.Kind + " " + req.Namespace + "/" + req.Name
	if (req.Operation != Create && req.Operation != Update) || req.NewController == nil {
		return Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: " + obj + " is nobody's revision history"}
	}
	sameOwner := req.OldController != nil && req.OldController.UID == req.NewController.UID
	if req.Operation == Update && sameOwner && !req.ContentChanged {
		return Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: revision " + obj + " unchanged"}
	}
	if lookups == nil {
		return historyDeny(req, obj, nil, "no lookups are available to find its workload")
	}
	owner, err := lookups.Owner(ctx, req.Namespace, *req.NewController)
	if err != nil {
		return historyDeny(req, obj, nil, "could not read "+req.NewController.Kind+" "+req.Namespace+"/"+req.NewController.Name+": "+lookupError(err))
	}
	if owner == nil {
		return Result{Decision: Allow, Class: ClassNotFrozen, Message: "budgetgate: " + obj + " belongs to no gated workload"}
	}
	selecting := selectingSLOs(frozen, owner, nil)
	if len(selecting) == 0 {
		return Result{Decision: Allow, Class: ClassNotFrozen, Message: "budgetgate: no frozen SLO selects " + workloadName(owner)}
	}
	freezeStart := time.Time{}
	for _, s := range selecting {
		if !s.Since.IsZero() && (freezeStart.IsZero() || s.Since.Before(freezeStart)) {
			freezeStart = s.Since
		}
	}
	if lookups.MayWriteHistory(owner.Kind, req.User) {
		adopting := req.Operation == Update && !sameOwner
		if !adopting || (!req.Created.IsZero() && req.Created.Before(freezeStart)) {
			return Result{Decision: Allow, Class: ClassHistory, SLOs: sloNames(selecting),
				Message: "budgetgate: " + workloadName(owner) + "'s controller wrote its revision " + obj}
		}
		return historyDecision(req, obj, owner, selecting,
			"it was created at "+rfc3339(req.Created)+", during the freeze, and may not be adopted as a revision of "+workloadName(owner)+
				" until the freeze lifts")
	}
	return historyDecision(req, obj, owner, selecting,
		"during a freeze only "+workloadName(owner)+"'s own controller may add to or change its revision history, "+
			"so that a rollback can only restore what was released before")
}

// historyDecision denies (or, when only DryRun SLOs select owner, warns about)
// a history write, saying why.
func historyDecision(req HistoryRequest, obj string, owner *Workload, selecting []*FrozenSLO, why string) Result {
	res := Result{Class: ClassHistory, SLOs: sloNames(selecting)}
	lines := []string{
		"budgetgate: " + quote(req.User.Username, maxUserRunes) + " may not write " + obj + " as revision history of " +
			workloadName(owner) + ", whose releases are frozen by " + sloList(res.SLOs) + ": " + why + ".",
		SeeFreezeLine(owner.Namespace, res.SLOs...),
		HelpLine(req.Contact, owner.Namespace),
	}
	if len(enforcing(selecting)) == 0 {
		res.Decision, res.Class = Warn, ClassDryRun
		lines[0] = "DryRun: would deny: " + lines[0]
		res.Message = strings.Join(lines, "\n")
		res.Warnings = []string{warning(strings.Join(lines, warningSeparator))}
		return res
	}
	res.Decision, res.Message = Deny, strings.Join(lines, "\n")
	return res
}

// historyDeny denies a history write whose workload could not be checked.
func historyDeny(req HistoryRequest, obj string, selecting []*FrozenSLO, why string) Result {
	ref := req.NewController
	return Result{Decision: Deny, Class: ClassHistory, SLOs: sloNames(selecting),
		Message: "budgetgate: could not verify that " + obj + " may be written as revision history of " + ref.Kind + " " +
			req.Namespace + "/" + ref.Name + ": " + strings.TrimSuffix(why, ".") + ". Retry in a moment.\n" + HelpLine(req.Contact, req.Namespace)}
}
