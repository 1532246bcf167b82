package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:24FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:24FB 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:24FB 0100007F:D2F2 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:D2F0 0100007F:24FB 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
   4: 0100007F:24FB 0100007F:D2F4 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0
   5: 0100007F:0050 0100007F:D2F6 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0 20 4 30 10 -1
`

func TestServerConns(t *testing.T) {
	// Port 9467 = 0x24FB: the listener (0A), the client side of a connection
	// (local port D2F0) and one in TIME_WAIT (06) do not count.
	got := serverConns(procNetTCP, 9467)
	if diff := cmp.Diff([]string{"0100007F:D2F0", "0100007F:D2F2"}, got); diff != "" {
		t.Errorf("serverConns (-want +got):\n%s", diff)
	}
	// Port 80 = 0x0050: padded to four hex digits.
	if got := serverConns(procNetTCP, 80); len(got) != 1 {
		t.Errorf("serverConns(80) = %v, want one connection", got)
	}
	if got := serverConns(procNetTCP, 1); len(got) != 0 {
		t.Errorf("serverConns(1) = %v, want none", got)
	}
}

func TestConnUse(t *testing.T) {
	before := map[string]bool{"a": true, "b": true, "c": true}
	after := map[string]bool{"b": true, "c": true, "d": true, "e": true}
	if got := connUse(before, after); got != (ConnUse{Open: 4, New: 2}) {
		t.Errorf("connUse = %+v, want 4 open, 2 new", got)
	}
}
