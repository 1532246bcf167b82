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
// Command dashboard writes budgetgate's Grafana dashboard, built by
// internal/dashboard, into config/grafana: the JSON to import into Grafana
// and a ConfigMap for Grafana's dashboard sidecar; and the JSON again into
// the Helm chart (charts/budgetgate/files).
//
//	go run ./hack/dashboard            (make dashboards)
//
// Run it from the module root, or pass -root. hack/verify-generated.sh (make
// verify) runs it in a scratch copy and fails when the committed files differ.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/budgetgate/budgetgate/internal/dashboard"
)

func main() {
	root := flag.String("root", ".", "module root to write config/grafana under")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	files, err := dashboard.Files()
	if err != nil {
		return err
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		out := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, files[path], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", out)
		// The Helm chart ships a byte copy of the JSON (it cannot read files
		// outside the chart); test/chart checks that they match.
		if filepath.Base(path) == "budgetgate-dashboard.json" {
			chart := filepath.Join(root, "charts", "budgetgate", "files", "budgetgate-dashboard.json")
			if err := os.WriteFile(chart, files[path], 0o644); err != nil {
				return err
			}
			fmt.Println("wrote", chart)
		}
	}
	return nil
}
