// Package prometheustest runs a real Prometheus server for tests: it finds the
// prometheus and promtool binaries, backfills synthetic history into a TSDB
// with promtool, and starts a server on a free local port that stops when the
// test ends.
//
// The binaries come from $PROMETHEUS_BIN and $PROMTOOL_BIN, else from
// bin/prometheus/ at the module root (hack/prometheus.sh puts them there;
// internal/testbin knows where).
// Without them tests skip, unless BUDGETGATE_REQUIRE_PROMETHEUS=1 makes
// them fail.
package prometheustest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/budgetgate/budgetgate/internal/testbin"
)

// Environment variables read by Find and Require.
const (
	EnvPrometheus = "PROMETHEUS_BIN"
	EnvPromtool   = "PROMTOOL_BIN"
	EnvRequire    = "BUDGETGATE_REQUIRE_PROMETHEUS"
)

// Binaries are the paths of the prometheus and promtool executables.
type Binaries struct {
	Prometheus string
	Promtool   string
}

// Find locates the binaries: $PROMETHEUS_BIN and $PROMTOOL_BIN, else
// prometheus and promtool in bin/prometheus at the module root, where
// hack/prometheus.sh puts them at hack/versions.env's PROMETHEUS_VERSION
// (internal/testbin).
func Find() (Binaries, error) {
	dir, dirErr := testbin.PrometheusDir()
	b := Binaries{Prometheus: os.Getenv(EnvPrometheus), Promtool: os.Getenv(EnvPromtool)}
	if b.Prometheus == "" && dirErr == nil {
		b.Prometheus = filepath.Join(dir, "prometheus")
	}
	if b.Promtool == "" && dirErr == nil {
		b.Promtool = filepath.Join(dir, "promtool")
	}
	var errs []error
	for _, p := range []string{b.Prometheus, b.Promtool} {
		if p == "" {
			errs = append(errs, dirErr)
		} else if fi, err := os.Stat(p); err != nil {
			errs = append(errs, err)
		} else if fi.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("%s is not executable", p))
		}
	}
	return b, errors.Join(errs...)
}

// Require returns the binaries, or skips the test when they are missing;
// with BUDGETGATE_REQUIRE_PROMETHEUS=1 it fails the test instead.
func Require(t testing.TB) Binaries {
	t.Helper()
	b, err := Find()
	if err == nil {
		return b
	}
	msg := fmt.Sprintf("prometheus binaries not found (run hack/prometheus.sh bin/prometheus or set %s and %s): %v",
		EnvPrometheus, EnvPromtool, err)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return b
}

// Sample is one point of a series.
type Sample struct {
	T time.Time
	V float64
}

// Series is the history of one series. Metric is written as is, e.g.
// `http_requests_total{job="checkout",code="200"}`.
type Series struct {
	Metric  string
	Samples []Sample
}

// Family is an OpenMetrics metric family: the name in its TYPE line (without
// _total or _bucket), its type (counter, gauge, histogram, unknown) and its
// series, each with samples in increasing time.
type Family struct {
	Name   string
	Type   string
	Series []Series
}

// WriteOpenMetrics writes families in the OpenMetrics text format, with
// timestamps, terminated by "# EOF".
func WriteOpenMetrics(w io.Writer, families ...Family) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for _, f := range families {
		if _, err := fmt.Fprintf(bw, "# TYPE %s %s\n", f.Name, f.Type); err != nil {
			return err
		}
		for _, s := range f.Series {
			for _, p := range s.Samples {
				line = append(line[:0], s.Metric...)
				line = append(line, ' ')
				line = strconv.AppendFloat(line, p.V, 'f', -1, 64)
				line = append(line, ' ')
				line = strconv.AppendFloat(line, float64(p.T.UnixMilli())/1000, 'f', -1, 64)
				line = append(line, '\n')
				if _, err := bw.Write(line); err != nil {
					return err
				}
			}
		}
	}
	if _, err := bw.WriteString("# EOF\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// Backfill writes families into TSDB blocks under dataDir with
// `promtool tsdb create-blocks-from openmetrics`, in blocks of up to 486h so
// that a month of history takes a few passes over the file, not hundreds.
func (b Binaries) Backfill(t testing.TB, dataDir string, families ...Family) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "history.om.txt")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(WriteOpenMetrics(f, families...), f.Close()); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBlocks(file, dataDir); err != nil {
		t.Fatal(err)
	}
}

// CreateBlocks writes the OpenMetrics file into TSDB blocks under dataDir
// with `promtool tsdb create-blocks-from openmetrics`, as Backfill does, for
// programs that write their own (large) file: the benches.
func (b Binaries) CreateBlocks(file, dataDir string) error {
	cmd := exec.Command(b.Promtool, "tsdb", "create-blocks-from", "--quiet",
		"--max-block-duration=744h", "openmetrics", file, dataDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

// Options configure Start.
type Options struct {
	// DataDir is the TSDB directory, e.g. filled by Backfill; empty: a new
	// temporary directory.
	DataDir string
	// Config is the prometheus.yml; empty: no scrape targets.
	Config string
	// Retention is --storage.tsdb.retention.time; zero: 60d.
	Retention string
	// Args are extra flags.
	Args []string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the base URL of the HTTP API, e.g. http://127.0.0.1:41234.
	URL string
	// DataDir is the TSDB directory.
	DataDir string
	// Log is the file that holds the server's output.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs prometheus until the end of the test and waits until it is
// ready. Its log is printed if the test fails.
func (b Binaries) Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := b.Run(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", s.tail())
		}
	})
	return s
}

// Run starts prometheus for a program that is not a test (the benches),
// with its configuration and log in dir, and returns once it is ready. It
// runs until Stop.
func (b Binaries) Run(dir string, opts Options) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(dir, "data")
	}
	if opts.Config == "" {
		opts.Config = "global:\n  scrape_interval: 15s\n"
	}
	if opts.Retention == "" {
		opts.Retention = "60d"
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(opts.Config), 0o644); err != nil {
		return nil, err
	}

	var last error
	for range 3 { // another process may take the free port before us
		s, err := b.start(dir, config, opts)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, fmt.Errorf("prometheus did not start: %w", last)
}

func (b Binaries) start(dir, config string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logFile, err := os.CreateTemp(dir, "prometheus-*.log")
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child process holds its own descriptor
	args := append([]string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + opts.DataDir,
		"--storage.tsdb.retention.time=" + opts.Retention,
		"--web.listen-address=" + addr,
	}, opts.Args...)
	s := &Server{
		URL:     "http://" + addr,
		DataDir: opts.DataDir,
		Log:     logFile.Name(),
		cmd:     exec.Command(b.Prometheus, args...),
		done:    make(chan struct{}),
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	if err := s.waitReady(time.Minute); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, s.tail())
	}
	return s, nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("prometheus exited: %v", s.cmd.ProcessState)
		default:
		}
		if resp, err := client.Get(s.URL + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("prometheus not ready after %v", timeout)
}

// Pid is the process id of the server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Reload makes the server read its configuration and rule files again
// (SIGHUP).
func (s *Server) Reload() error { return s.cmd.Process.Signal(syscall.SIGHUP) }

// Stop asks prometheus to shut down and kills it after 10s; Start's servers
// stop by themselves at the end of the test.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// tail returns the end of the server log.
func (s *Server) tail() string {
	out, _ := os.ReadFile(s.Log)
	if len(out) > 8<<10 {
		out = out[len(out)-8<<10:]
	}
	return string(out)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
