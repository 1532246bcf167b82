package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/budgetgate/budgetgate/internal/importer"
)

// readInputs reads files as kubectl -f does: "-" is stdin, a directory is
// its *.yaml, *.yml and *.json files (not its subdirectories).
func readInputs(paths []string, stdin io.Reader) ([]importer.Input, error) {
	var out []importer.Input
	var errs []error
	stdinRead := false
	for _, p := range paths {
		if p == "-" {
			if stdinRead {
				errs = append(errs, errors.New("- (stdin) is given twice"))
				continue
			}
			stdinRead = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				errs = append(errs, fmt.Errorf("reading stdin: %w", err))
				continue
			}
			out = append(out, importer.Input{Name: "-", Data: data})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files := []string{p}
		if fi.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			files = nil
			for _, e := range entries {
				ext := strings.ToLower(filepath.Ext(e.Name()))
				if !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			if len(files) == 0 {
				errs = append(errs, fmt.Errorf("%s: no .yaml, .yml or .json file in the directory", p))
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, importer.Input{Name: f, Data: data})
		}
	}
	return out, errors.Join(errs...)
}
