package main

import (
	"strings"
	"testing"
)

func TestCheckLocal(t *testing.T) {
	for _, tc := range []struct {
		server      string
		allowRemote bool
		wantErr     string
	}{
		{server: "https://127.0.0.1:32771"},
		{server: "https://127.0.0.2:6443"}, // all of 127.0.0.0/8 is loopback
		{server: "https://[::1]:6443"},
		{server: "https://localhost:6443"},
		{server: "https://LocalHost"},
		{server: "https://10.0.0.1:6443", wantErr: "is not on this machine"},
		{server: "https://192.168.49.2:8443", wantErr: "is not on this machine"},
		{server: "https://cluster.example.com", wantErr: "is not on this machine"},
		{server: "https://localhost.example.com:6443", wantErr: "is not on this machine"},
		{server: "https://127.0.0.1.nip.io:6443", wantErr: "is not on this machine"},
		{server: "", wantErr: "cannot tell where"},
		{server: "127.0.0.1:6443", wantErr: "cannot tell where"}, // no scheme: no host to check
		{server: "https://cluster.example.com", allowRemote: true},
		{server: "", allowRemote: true},
	} {
		err := checkLocal(tc.server, tc.allowRemote)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("checkLocal(%q, %v) = %v, want nil", tc.server, tc.allowRemote, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("checkLocal(%q, %v) = %v, want an error containing %q", tc.server, tc.allowRemote, err, tc.wantErr)
		}
	}
}

func TestCheckLocalSaysHowToOverride(t *testing.T) {
	err := checkLocal("https://prod.example.com:443", false)
	if err == nil || !strings.Contains(err.Error(), "--allow-remote") || !strings.Contains(err.Error(), "https://prod.example.com:443") {
		t.Fatalf("got %v, want the server and --allow-remote named", err)
	}
}

func TestCheckKwok(t *testing.T) {
	fake := map[string]bool{"kwok-node-0": true, "kwok-node-1": true}
	for _, tc := range []struct {
		name, context string
		nodes         map[string]bool
		allowRemote   bool
		wantErr       string
	}{
		{name: "own kwok cluster", context: "kwok-budgetgate-scale", nodes: fake},
		{name: "no nodes yet", context: "kwok-budgetgate-scale"},
		{name: "the e2e suite's cluster", context: "kwok-budgetgate-e2e", nodes: fake, wantErr: `not "kwok-budgetgate-scale"`},
		{name: "kind", context: "kind-kind", nodes: map[string]bool{"kind-control-plane": false}, wantErr: "not the kwok cluster"},
		{name: "a real node", context: "kwok-budgetgate-scale", nodes: map[string]bool{"kwok-node-0": true, "node-real": false},
			wantErr: "node node-real is not a kwok fake node"},
		{name: "told", context: "prod", nodes: map[string]bool{"n": false}, allowRemote: true},
	} {
		err := checkKwok(tc.context, "budgetgate-scale", tc.nodes, tc.allowRemote)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: checkKwok = %v, want nil", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: checkKwok = %v, want an error containing %q", tc.name, err, tc.wantErr)
		case err != nil && !strings.Contains(err.Error(), "--allow-remote"):
			t.Errorf("%s: %v does not say how to override", tc.name, err)
		}
	}
}
