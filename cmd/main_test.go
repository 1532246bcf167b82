package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLeaderElectionFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    [3]time.Duration // lease, renew, retry
		wantErr string
	}{
		{args: nil, want: [3]time.Duration{leaseDuration, renewDeadline, retryPeriod}},
		{args: []string{"--leader-elect-lease-duration=30s", "--leader-elect-renew-deadline=20s", "--leader-elect-retry-period=4s"},
			want: [3]time.Duration{30 * time.Second, 20 * time.Second, 4 * time.Second}},
		{args: []string{"--leader-elect-lease-duration=5s"}, wantErr: "--leader-elect-lease-duration 5s: must be longer than --leader-elect-renew-deadline 7s"},
		{args: []string{"--leader-elect-renew-deadline=1s"}, wantErr: "--leader-elect-renew-deadline 1s: must be longer than --leader-elect-retry-period 1s"},
		{args: []string{"--leader-elect-retry-period=0s"}, wantErr: "--leader-elect-retry-period 0s: must be positive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, _, err := parseFlags(fs, tc.args)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]time.Duration{o.leaseDuration, o.renewDeadline, o.retryPeriod}; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// The defaults bound failover inside the 20s budgetgate promises
	// (leaseDuration + 2 × 2.2 × retryPeriod, see the constants).
	if bound := leaseDuration + time.Duration(2*2.2*float64(retryPeriod)); bound > 20*time.Second {
		t.Errorf("default failover bound %s > 20s", bound)
	}
}

func TestPrometheusConnectionFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	named := write("named.yaml", "connections: [{name: thanos, url: 'http://thanos:10902'}]")
	withDefault := write("default.yaml", "connections: [{name: default, url: 'http://mimir/prometheus'}]")
	broken := write("broken.yaml", "connections: [{name: thanos, url: 'http://thanos:10902', http_client_config: {bearer_tokn_file: /t}}]")
	for _, tc := range []struct {
		args    []string
		want    string // names, comma-separated
		wantErr string
	}{
		{args: nil, want: "default"},
		{args: []string{"--prometheus-address=http://prom:9090"}, want: "default"},
		{args: []string{"--prometheus-address=prom:9090"}, wantErr: `--prometheus-address: connection "default": url "prom:9090" is not an http(s) URL`},
		// The file alone: the flag's default address does not sneak in as "default".
		{args: []string{"--prometheus-connections=" + named}, want: "thanos"},
		{args: []string{"--prometheus-connections=" + named, "--prometheus-address=http://prom:9090"}, want: "default,thanos"},
		{args: []string{"--prometheus-connections=" + withDefault, "--prometheus-address=http://prom:9090"},
			wantErr: `--prometheus-address and --prometheus-connections both define the connection "default": keep one`},
		{args: []string{"--prometheus-connections=" + broken}, wantErr: "field bearer_tokn_file not found"},
		{args: []string{"--prometheus-connections=" + filepath.Join(dir, "missing.yaml")}, wantErr: "no such file"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, _, err := parseFlags(fs, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(o.connections.Names(), ","); got != tc.want {
				t.Errorf("connections %s, want %s", got, tc.want)
			}
		})
	}
}
