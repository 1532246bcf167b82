/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command netcheck is the client of the real-node cluster's smoke test
// (hack/real-node-up.sh): run in a pod, it proves that pods reach Services.
// The images of this project hold a single static binary and no shell or
// curl, so the check needs a binary of its own.
//
//	netcheck [--timeout 60s] [--count N] URL...
//
// For each URL it sends GET requests until N of them have answered 200 (all
// within --timeout), printing each answer, and exits 0; it exits 1 when a URL
// does not answer in time. HTTPS URLs are verified against --ca-file and sent
// the bearer token of --token-file; both default to the pod's service account
// files, so https://KUBERNETES_SERVICE_HOST/livez checks the in-cluster path
// to the API server, certificate name included.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "How long to keep trying each URL.")
	count := flag.Int("count", 3, "Successful answers wanted from each URL.")
	caFile := flag.String("ca-file", saDir+"/ca.crt", "CA bundle for https URLs.")
	tokenFile := flag.String("token-file", saDir+"/token", "Bearer token sent to https URLs (if the file exists).")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: netcheck [--timeout D] [--count N] URL...")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if pem, err := os.ReadFile(*caFile); err == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	token, _ := os.ReadFile(*tokenFile)
	for _, url := range flag.Args() {
		if err := check(client, url, strings.TrimSpace(string(token)), *count, *timeout); err != nil {
			fmt.Fprintf(os.Stderr, "netcheck: %s: %v\n", url, err)
			os.Exit(1)
		}
	}
}

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func check(client *http.Client, url, token string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := 0
	var last error
	for got < want {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" && strings.HasPrefix(url, "https:") {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				got++
				fmt.Printf("GET %s: %d %q\n", url, resp.StatusCode, strings.TrimSpace(string(body)))
				continue
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d answers within %s; last error: %v", got, want, timeout, last)
		case <-time.After(time.Second):
		}
	}
	return nil
}
