package importer_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/budgetgate/budgetgate/internal/importer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Inputs are testdata/<format>/<name>.yaml; the expected output, comments
// and all, is testdata/<format>/<name>.golden. Files under testdata/errors
// are not golden tests (see TestImportErrors).
func inputs(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"sloth", "pyrra", "openslo"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) < 3 {
			t.Fatalf("testdata/%s has %d examples; every format needs several", dir, len(m))
		}
		files = append(files, m...)
	}
	return files
}

func TestImportGolden(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(strings.TrimSuffix(in, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res, err := importer.Import([]importer.Input{{Name: filepath.Base(in), Data: data}}, importer.Options{})
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			got, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./internal/importer -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; go test ./internal/importer -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}
