package main

import (
	"os"
	"strconv"
	"strings"
)

// tcpEstablished is the ESTABLISHED state in /proc/net/tcp.
const tcpEstablished = "01"

// serverConns lists the established connections whose local port is port
// (connections a server on this machine accepted), from the contents of
// /proc/net/tcp or /proc/net/tcp6, each as its remote address. Connections
// from the API server to a webhook server show how many the API server keeps
// (one for HTTP/2, up to one per concurrent call for HTTP/1.1) and, compared
// between two instants, whether it opened new ones (each a TLS handshake).
func serverConns(table string, port int) []string {
	want := strings.ToUpper(strconv.FormatInt(int64(port), 16))
	for len(want) < 4 {
		want = "0" + want
	}
	var out []string
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 || f[3] != tcpEstablished {
			continue
		}
		_, local, ok := strings.Cut(f[1], ":")
		if ok && local == want {
			out = append(out, f[2])
		}
	}
	return out
}

// connSet reads the established connections to port on this machine.
func connSet(port int) map[string]bool {
	set := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range serverConns(string(data), port) {
			set[c] = true
		}
	}
	return set
}

// ConnUse is what a phase did to the connections into the webhook server.
type ConnUse struct {
	// Open is how many were established at the end of the phase.
	Open int `json:"open"`
	// New is how many of them were not there at its start: each a new TCP
	// connection and TLS handshake during the phase.
	New int `json:"new"`
}

func connUse(before, after map[string]bool) ConnUse {
	u := ConnUse{Open: len(after)}
	for c := range after {
		if !before[c] {
			u.New++
		}
	}
	return u
}
