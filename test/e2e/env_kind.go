//go:build e2e

package e2e

// setupKind prepares the environment on a kind cluster (E2E_CLUSTER=kind).
func setupKind() environment {
	panic("E2E_CLUSTER=kind: not implemented yet")
}
