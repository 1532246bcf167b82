package main

import (
	"errors"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func statusErr(code int32, reason metav1.StatusReason, msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}}
}

func TestClassify(t *testing.T) {
	gateDenied := statusErr(http.StatusForbidden, metav1.StatusReasonForbidden,
		`admission webhook "releases.budgetgate.dev" denied the request: budgetgate: Deployment bench-frozen/bench-001 may not release a new pod template`)
	rbacDenied := statusErr(http.StatusForbidden, metav1.StatusReasonForbidden,
		`deployments.apps "bench-001" is forbidden: User "bench-hotfixer" cannot patch resource "deployments"`)
	otherWebhook := statusErr(http.StatusForbidden, metav1.StatusReasonForbidden,
		`admission webhook "history.budgetgate.dev" denied the request: no`)
	timeout := statusErr(http.StatusGatewayTimeout, metav1.StatusReasonTimeout, "Timeout: request did not complete within requested timeout")
	exempt := `budgetgate: Deployment bench-frozen/bench-001 released during the freeze of bench-frozen/bench as release class "hotfix" by "bench-hotfixer", who may release-during-freeze`
	for _, tc := range []struct {
		name     string
		want     expectation
		err      error
		warnings []string
		outcome  outcome
		msg      string
	}{
		{"allow admitted", expectAllow, nil, nil, outcomeOK, ""},
		{"allow denied by the gate", expectAllow, gateDenied, nil, outcomeUnexpectedDeny, gateDenied.Error()},
		{"allow timed out", expectAllow, timeout, nil, outcomeError, timeout.Error()},
		{"allow, transport error", expectAllow, errors.New("connection refused"), nil, outcomeError, "connection refused"},
		{"deny denied by the gate", expectDeny, gateDenied, nil, outcomeOK, ""},
		{"deny admitted: fail-open", expectDeny, nil, nil, outcomeFailOpen, "admitted a release the gate should deny"},
		{"deny forbidden by RBAC, not the gate", expectDeny, rbacDenied, nil, outcomeError, rbacDenied.Error()},
		{"deny by another webhook", expectDeny, otherWebhook, nil, outcomeError, otherWebhook.Error()},
		{"exempt admitted with the gate's warning", expectExempt, nil, []string{"something else", exempt}, outcomeOK, ""},
		{"exempt admitted without it: fail-open", expectExempt, nil, nil, outcomeFailOpen, "admitted without the release gate's exemption warning"},
		{"exempt admitted with another warning", expectExempt, nil, []string{"DryRun: would deny: ..."}, outcomeFailOpen,
			"admitted without the release gate's exemption warning"},
		{"exempt denied by the gate", expectExempt, gateDenied, nil, outcomeUnexpectedDeny, gateDenied.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, msg := classify(tc.want, tc.err, tc.warnings)
			if o != tc.outcome || msg != tc.msg {
				t.Errorf("classify = (%s, %q), want (%s, %q)", o, msg, tc.outcome, tc.msg)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	var c counts
	for _, o := range []outcome{outcomeOK, outcomeOK, outcomeFailOpen, outcomeUnexpectedDeny, outcomeError, outcome("weird")} {
		c.add(o)
	}
	c.merge(counts{OK: 1, FailOpen: 2, UnexpectedDeny: 3, Errors: 4})
	if want := (counts{OK: 3, FailOpen: 3, UnexpectedDeny: 4, Errors: 6}); c != want {
		t.Errorf("counts = %+v, want %+v", c, want)
	}
}
