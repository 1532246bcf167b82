package main

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// gateConfig is the name of the webhook configuration holding the release
// gate and the history gate (config/webhook/workloads.yaml).
const gateConfig = "workload-release-gate"

// webhookConfigs are the webhook configurations hack/local-webhook renders.
type webhookConfigs struct {
	Validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	Mutating   []*admissionregistrationv1.MutatingWebhookConfiguration
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// parseConfigs reads the multi-document YAML hack/local-webhook writes.
func parseConfigs(data []byte) (webhookConfigs, error) {
	var out webhookConfigs
	for _, doc := range docSeparator.Split(string(data), -1) {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return out, err
		}
		switch meta.Kind {
		case "ValidatingWebhookConfiguration":
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), c); err != nil {
				return out, err
			}
			out.Validating = append(out.Validating, c)
		case "MutatingWebhookConfiguration":
			c := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), c); err != nil {
				return out, err
			}
			out.Mutating = append(out.Mutating, c)
		case "":
		default:
			return out, fmt.Errorf("unexpected %s in the webhook configurations", meta.Kind)
		}
	}
	return out, nil
}

// withReleaseGate returns the release gate's configuration as rendered, with
// the release webhook calling the webhook server on port (a manager
// variant), or, with port 0, without the release webhook. Everything else is
// kept as rendered: the history webhooks (which the benchmark does not
// measure: its Deployments are paused and write no history), and the release
// webhook's rules, matchConditions, failurePolicy, namespaceSelector and
// timeout, so that the benchmark measures the shipped configuration.
func withReleaseGate(base *admissionregistrationv1.ValidatingWebhookConfiguration,
	port int) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	out := base.DeepCopy()
	out.ResourceVersion = ""
	var hooks []admissionregistrationv1.ValidatingWebhook
	found := false
	for _, w := range out.Webhooks {
		if w.Name != releaseWebhook {
			hooks = append(hooks, w)
			continue
		}
		found = true
		if port == 0 {
			continue
		}
		if w.ClientConfig.URL == nil {
			return nil, fmt.Errorf("webhook %s has no URL clientConfig", w.Name)
		}
		u, err := url.Parse(*w.ClientConfig.URL)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", w.Name, err)
		}
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
		s := u.String()
		w.ClientConfig.URL = &s
		hooks = append(hooks, w)
	}
	if !found {
		return nil, fmt.Errorf("%s has no webhook %s", base.Name, releaseWebhook)
	}
	out.Webhooks = hooks
	return out, nil
}
