package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVariant(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want variant
		err  bool
	}{
		{in: "http1=bin/bench/manager", want: variant{Name: "http1", Path: "bin/bench/manager"}},
		{in: "h2=bin/bench/manager --enable-http2  --zap-log-level=error",
			want: variant{Name: "h2", Path: "bin/bench/manager", Args: []string{"--enable-http2", "--zap-log-level=error"}}},
		{in: "bin/bench/manager", err: true},
		{in: "H2=bin/m", err: true},
		{in: "h2=", err: true},
		{in: "=bin/m", err: true},
	} {
		got, err := parseVariant(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("parseVariant(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.err && diff != "" {
			t.Errorf("parseVariant(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	var l variantList
	if err := l.Set("a=x"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("a=y"); err == nil {
		t.Error("the same variant name was accepted twice")
	}
}

func TestOptionsCheck(t *testing.T) {
	ok := options{Kubeconfig: "k", Rate: 200, Workers: 8, Updates: 2000, Warmup: 200, Rounds: 3, Deployments: 32}
	if err := ok.check(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	bad := ok
	bad.Deployments = 8
	bad.Rate = 0
	bad.Kubeconfig = ""
	err := bad.check()
	for _, want := range []string{"--rate must be positive", "--deployments (8) must be more than --workers (8)", "--kubeconfig is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check() = %v, want it to say %q", err, want)
		}
	}
}
