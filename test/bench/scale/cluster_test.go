package main

import (
	"slices"
	"strings"
	"testing"
)

const manifests = `apiVersion: v1
kind: Namespace
metadata:
  name: budgetgate-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicelevelobjectives.slo.budgetgate.dev
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: budgetgate-controller-manager
  namespace: budgetgate-system
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: budgetgate-workload-release-gate
`

// install applies only the kinds it asks for: the manager runs as a local
// process, so its Deployment must not be applied.
func TestDocumentsOfKinds(t *testing.T) {
	got, err := documentsOfKinds([]byte(manifests), "Namespace", "CustomResourceDefinition")
	if err != nil {
		t.Fatal(err)
	}
	names, err := documentNames([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"budgetgate-system", "servicelevelobjectives.slo.budgetgate.dev"}; !slices.Equal(names, want) {
		t.Errorf("documents kept: %v, want %v", names, want)
	}
	if strings.Contains(got, "Deployment") {
		t.Errorf("the Deployment was kept:\n%s", got)
	}
	if _, err := documentsOfKinds([]byte("kind: [\n"), "Namespace"); err == nil {
		t.Error("a document that does not parse: want an error")
	}
}

// teardown deletes the webhook configurations by these names.
func TestDocumentNames(t *testing.T) {
	names, err := documentNames([]byte(manifests + "---\n# only a comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"budgetgate-system", "servicelevelobjectives.slo.budgetgate.dev", "budgetgate-controller-manager",
		"budgetgate-workload-release-gate"}
	if !slices.Equal(names, want) {
		t.Errorf("documentNames = %v, want %v", names, want)
	}
}
