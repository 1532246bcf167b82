package freeze

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
)

const deploymentController = "system:serviceaccount:kube-system:deployment-controller"

type fakeHistoryLookups struct {
	owner *Workload
	err   error
	calls int
}

func (f *fakeHistoryLookups) Owner(_ context.Context, ns string, ref OwnerRef) (*Workload, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if f.owner == nil || ref.Name != f.owner.Name || ref.UID != "uid-checkout" || ns != f.owner.Namespace {
		return nil, nil
	}
	return f.owner, nil
}

func (f *fakeHistoryLookups) MayWriteHistory(kind string, u authenticationv1.UserInfo) bool {
	return kind == "Deployment" && u.Username == deploymentController
}

// forgedDry is the DryRun warning about a forged revision.
const forgedDry = `DryRun: would deny: budgetgate: "mallory" may not write ReplicaSet shop/checkout-forged as revision history of Deployment shop/checkout, ` +
	`whose releases are frozen by SLO shop/checkout-errors: during a freeze only Deployment shop/checkout's own controller may add to or change its revision history, ` +
	"so that a rollback can only restore what was released before.\n" + tailDry

func TestDecideHistory(t *testing.T) {
	checkoutRef := &OwnerRef{Kind: "Deployment", Name: "checkout", UID: "uid-checkout"}
	otherRef := &OwnerRef{Kind: "Deployment", Name: "cart", UID: "uid-cart"}
	controller := authenticationv1.UserInfo{Username: deploymentController}
	owner := deploy(checkout, tpl("v1"))
	forged := `budgetgate: "mallory" may not write ReplicaSet shop/checkout-forged as revision history of Deployment shop/checkout, whose releases are frozen by SLO shop/checkout-availability: during a freeze only Deployment shop/checkout's own controller may add to or change its revision history, so that a rollback can only restore what was released before.` +
		"\n" + tailAvail
	tests := []struct {
		name   string
		req    HistoryRequest
		frozen []FrozenSLO
		lk     *fakeHistoryLookups
		want   Result
	}{{
		name:   "forged ReplicaSet: mallory creates one controlled by the frozen Deployment",
		req:    HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-forged", User: mallory, NewController: checkoutRef},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Deny, Class: ClassHistory, SLOs: []string{"shop/checkout-availability"}, Message: forged},
	}, {
		name:   "forged revision by rewriting an old ReplicaSet's template",
		req:    HistoryRequest{Operation: Update, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-forged", User: mallory, OldController: checkoutRef, NewController: checkoutRef, ContentChanged: true, Created: since.Add(-time.Hour)},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Deny, Class: ClassHistory, SLOs: []string{"shop/checkout-availability"}, Message: forged},
	}, {
		name:   "forged revision by re-pointing another workload's ReplicaSet",
		req:    HistoryRequest{Operation: Update, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-forged", User: mallory, OldController: otherRef, NewController: checkoutRef, Created: since.Add(time.Minute)},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Deny, Class: ClassHistory, SLOs: []string{"shop/checkout-availability"}, Message: forged},
	}, {
		name:   "the Deployment controller creates a ReplicaSet (a rollback, a restart, a hotfix)",
		req:    HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-7d9", User: controller, NewController: checkoutRef},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Allow, Class: ClassHistory, SLOs: []string{"shop/checkout-availability"}, Message: "budgetgate: Deployment shop/checkout's controller wrote its revision ReplicaSet shop/checkout-7d9"},
	}, {
		name:   "the controller adopts an orphan written during the freeze (a deleted twin's): denied",
		req:    HistoryRequest{Operation: Update, Kind: "ReplicaSet", Namespace: "shop", Name: "twin-5c4", User: controller, NewController: checkoutRef, Created: since.Add(time.Minute)},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want: Result{Decision: Deny, Class: ClassHistory, SLOs: []string{"shop/checkout-availability"},
			Message: `budgetgate: "system:serviceaccount:kube-system:deployment-controller" may not write ReplicaSet shop/twin-5c4 as revision history of Deployment shop/checkout, whose releases are frozen by SLO shop/checkout-availability: it was created at 2026-05-01T10:01:00Z, during the freeze, and may not be adopted as a revision of Deployment shop/checkout until the freeze lifts.` +
				"\n" + tailAvail},
	}, {
		name:   "the controller re-adopts its own revision from before the freeze",
		req:    HistoryRequest{Operation: Update, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-5d4", User: controller, NewController: checkoutRef, Created: since.Add(-24 * time.Hour)},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Allow, Class: ClassHistory, SLOs: []string{"shop/checkout-availability"}, Message: "budgetgate: Deployment shop/checkout's controller wrote its revision ReplicaSet shop/checkout-5d4"},
	}, {
		name: "an orphan ReplicaSet is nobody's history",
		req:  HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "mine", User: mallory},
		lk:   &fakeHistoryLookups{owner: owner},
		want: Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: ReplicaSet shop/mine is nobody's revision history"},
	}, {
		name:   "scaling a ReplicaSet leaves the history unchanged",
		req:    HistoryRequest{Operation: Update, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-5d4", User: mallory, OldController: checkoutRef, NewController: checkoutRef},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: revision ReplicaSet shop/checkout-5d4 unchanged"},
	}, {
		name:   "a controller reference to a UID that is not the workload's",
		req:    HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "x", User: mallory, NewController: &OwnerRef{Kind: "Deployment", Name: "checkout", UID: "made-up"}},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{owner: owner},
		want:   Result{Decision: Allow, Class: ClassNotFrozen, Message: "budgetgate: ReplicaSet shop/x belongs to no gated workload"},
	}, {
		name: "the workload is not frozen",
		req:  HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "x", User: mallory, NewController: checkoutRef},
		lk:   &fakeHistoryLookups{owner: owner},
		want: Result{Decision: Allow, Class: ClassNotFrozen, Message: "budgetgate: no frozen SLO selects Deployment shop/checkout"},
	}, {
		name:   "DryRun: warn",
		req:    HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-forged", User: mallory, NewController: checkoutRef},
		frozen: []FrozenSLO{sloDry},
		lk:     &fakeHistoryLookups{owner: owner},
		want: Result{Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors"},
			Message:  forgedDry,
			Warnings: oneLine(forgedDry)},
	}, {
		name:   "the owner cannot be read: deny, even the controller (it retries)",
		req:    HistoryRequest{Operation: Create, Kind: "ReplicaSet", Namespace: "shop", Name: "checkout-7d9", User: controller, NewController: checkoutRef},
		frozen: []FrozenSLO{sloAvail},
		lk:     &fakeHistoryLookups{err: context.DeadlineExceeded},
		want: Result{Decision: Deny, Class: ClassHistory, SLOs: []string{},
			Message: "budgetgate: could not verify that ReplicaSet shop/checkout-7d9 may be written as revision history of Deployment shop/checkout: could not read Deployment shop/checkout: budgetgate's deadline for this decision passed before the API server answered. Retry in a moment.\n" + help},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecideHistory(context.Background(), tt.req, tt.frozen, tt.lk)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecideHistory (-want +got):\n%s", diff)
			}
		})
	}
}
