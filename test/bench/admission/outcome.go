package main

import (
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// releaseWebhook is the name of the release gate's webhook.
const releaseWebhook = "releases.budgetgate.dev"

// deniedPrefix starts the API server's message when the release gate denies.
const deniedPrefix = `admission webhook "` + releaseWebhook + `" denied the request`

// exemptWarning is in the warning the release gate returns when it admits an
// exempt release class (freeze.Decide's message).
const exemptWarning = `as release class "hotfix"`

// outcome classifies one answer against what the phase expects.
type outcome string

const (
	// outcomeOK: the answer the gate should give.
	outcomeOK outcome = "ok"
	// outcomeFailOpen: admitted although the release gate should have denied
	// it (deny phase), or admitted without the gate's decision (exempt phase:
	// no exemption warning), e.g. because the API server could not reach the
	// webhook in time and ignored it (failurePolicy Ignore).
	outcomeFailOpen outcome = "fail-open"
	// outcomeUnexpectedDeny: the release gate denied what it should admit.
	outcomeUnexpectedDeny outcome = "unexpected-deny"
	// outcomeError: any other failure (timeout, conflict, server error).
	outcomeError outcome = "error"
)

// expectation is what a phase's requests should get.
type expectation int

const (
	expectAllow  expectation = iota // admitted
	expectDeny                      // denied by the release gate
	expectExempt                    // admitted by the release gate as an exempt class, with its warning
)

// classify turns a request's error and warnings into an outcome, with the
// error's message when the outcome is not ok.
func classify(want expectation, err error, warnings []string) (outcome, string) {
	deniedByGate := err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), deniedPrefix)
	switch {
	case err != nil && deniedByGate && want == expectDeny:
		return outcomeOK, ""
	case err != nil && deniedByGate:
		return outcomeUnexpectedDeny, err.Error()
	case err != nil:
		return outcomeError, err.Error()
	case want == expectDeny:
		return outcomeFailOpen, "admitted a release the gate should deny"
	case want == expectExempt && !containsAny(warnings, exemptWarning):
		return outcomeFailOpen, "admitted without the release gate's exemption warning"
	}
	return outcomeOK, ""
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// counts tallies outcomes.
type counts struct {
	OK             int `json:"ok"`
	FailOpen       int `json:"failOpen"`
	UnexpectedDeny int `json:"unexpectedDeny"`
	Errors         int `json:"errors"`
}

func (c *counts) add(o outcome) {
	switch o {
	case outcomeOK:
		c.OK++
	case outcomeFailOpen:
		c.FailOpen++
	case outcomeUnexpectedDeny:
		c.UnexpectedDeny++
	default:
		c.Errors++
	}
}

func (c *counts) merge(o counts) {
	c.OK += o.OK
	c.FailOpen += o.FailOpen
	c.UnexpectedDeny += o.UnexpectedDeny
	c.Errors += o.Errors
}
