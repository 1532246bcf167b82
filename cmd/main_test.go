package main

import (
	"flag"
	"io"
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
