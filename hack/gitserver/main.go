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

// Command gitserver serves the git repositories under a directory over
// git's smart HTTP protocol, read-only, for the GitOps check
// (hack/gitops-check.sh): Flux's source-controller and Argo CD's repo server
// clone from it. Both speak only the smart protocol (go-git and git's
// http-backend), so a static file server will not do; this runs
// `git http-backend` as a CGI program behind net/http/cgi.
//
//	gitserver --root DIR --listen 127.0.0.1:PORT
//
// A repository DIR/NAME.git is then http://127.0.0.1:PORT/NAME.git. Pushes
// are refused (http.receivepack is off); the check commits to the bare
// repository directly. Every request is logged to stderr.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	root := flag.String("root", "", "directory holding the bare repositories (NAME.git)")
	listen := flag.String("listen", "127.0.0.1:8090", "address to serve on")
	flag.Parse()
	if *root == "" {
		log.Fatal("gitserver: --root is required")
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		log.Fatalf("gitserver: %v", err)
	}
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		log.Fatalf("gitserver: git --exec-path: %v (is git installed?)", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		log.Fatalf("gitserver: %v", err)
	}
	h := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + abs,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=http.receivepack",
			"GIT_CONFIG_VALUE_0=false",
		},
		InheritEnv: []string{"PATH", "HOME"},
	}
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &status{ResponseWriter: w, code: http.StatusOK}
			h.ServeHTTP(rec, r)
			log.Printf("%s %s %s %d %s", r.RemoteAddr, r.Method, r.URL.RequestURI(), rec.code, time.Since(start).Round(time.Millisecond))
		}),
	}
	log.Printf("gitserver: serving the repositories of %s on http://%s/", abs, *listen)
	log.Fatal(srv.ListenAndServe())
}

// status records the response code for the request log.
type status struct {
	http.ResponseWriter
	code int
}

func (s *status) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
