package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/budgetgate/budgetgate/test/utils"
)

const (
	operatorNamespace = "budgetgate-system"
	operatorUser      = "system:serviceaccount:budgetgate-system:budgetgate-controller-manager"
)

// managerProcess is the budgetgate manager, run as a local process as the
// e2e suite runs it.
type managerProcess struct {
	cmd                               *exec.Cmd
	done                              chan struct{}
	metricsURL, readyURL, webhookBase string
	logPath                           string
	// webhooks are budgetgate's webhook configurations, pointing at this process.
	webhooks string
	started  time.Time
}

// startManager starts bin/manager as the operator's ServiceAccount, measuring
// in the fake Prometheus, serving its webhooks on a loopback port and its
// metrics over plain HTTP on another.
func (b *bench) startManager(ctx context.Context, promAddress string) (*managerProcess, error) {
	kubeconfig := filepath.Join(b.cfg.state, "operator.kubeconfig")
	if err := impersonatingKubeconfig(b.cfg.kubeconfig, kubeconfig, operatorUser,
		"system:serviceaccounts", "system:serviceaccounts:"+operatorNamespace, "system:authenticated"); err != nil {
		return nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		p, err := utils.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	webhookPort, metricsPort, probePort := ports[0], ports[1], ports[2]
	m := &managerProcess{
		metricsURL:  fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		readyURL:    fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort),
		webhookBase: fmt.Sprintf("https://127.0.0.1:%d", webhookPort),
		logPath:     filepath.Join(b.cfg.state, "manager.log"),
	}
	certDir := filepath.Join(b.cfg.state, "certs")
	log, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(b.cfg.manager,
		"--kubeconfig", kubeconfig,
		"--prometheus-address="+promAddress,
		fmt.Sprintf("--webhook-port=%d", webhookPort), "--webhook-cert-path", certDir,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort), "--metrics-secure=false",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
		"--leader-elect", "--leader-election-namespace", operatorNamespace)
	m.cmd.Env = append(os.Environ(), "POD_NAMESPACE="+operatorNamespace)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The webhook certificate must exist before the manager starts.
	if m.webhooks, err = b.renderWebhooks(ctx, m.webhookBase, certDir); err != nil {
		_ = log.Close()
		return nil, err
	}
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting %s: %w", b.cfg.manager, err)
	}
	m.done = make(chan struct{})
	go func() {
		_ = m.cmd.Wait()
		_ = log.Close()
		close(m.done)
	}()
	err = utils.Poll(ctx, 2*time.Minute, 500*time.Millisecond, "the manager to be ready", func(ctx context.Context) (bool, error) {
		select {
		case <-m.done:
			return false, fmt.Errorf("the manager exited; see %s", m.logPath)
		default:
		}
		code, err := httpGet(ctx, m.readyURL, io.Discard)
		return err == nil && code == http.StatusOK, err
	})
	if err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// renderWebhooks makes the webhook certificate (bin/local-webhook) and
// returns budgetgate's webhook configurations with URL clientConfigs that
// point at base.
func (b *bench) renderWebhooks(ctx context.Context, base, certDir string) (string, error) {
	cmd := exec.CommandContext(ctx, b.cfg.localWebhook, "--cert-dir", certDir, "--url", base,
		filepath.Join(b.cfg.root, "config", "webhook", "manifests.yaml"),
		filepath.Join(b.cfg.root, "config", "webhook", "workloads.yaml"))
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("local-webhook: %w", err)
	}
	return string(out), nil
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

// stop sends SIGTERM to the manager's process group, then SIGKILL after 15s.
func (m *managerProcess) stop() {
	if m == nil || m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// scrape reads the manager's metrics.
func (m *managerProcess) scrape(ctx context.Context) (metrics, error) {
	pr, pw := io.Pipe()
	go func() {
		code, err := httpGet(ctx, m.metricsURL, pw)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET %s: %d", m.metricsURL, code)
		}
		_ = pw.CloseWithError(err)
	}()
	return parseMetrics(pr)
}

func httpGet(ctx context.Context, url string, w io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, err = io.Copy(w, resp.Body)
	return resp.StatusCode, err
}

// procMemory is a process's memory as /proc/PID/status tells it.
type procMemory struct {
	RSS     int64 `json:"vmRSSBytes"`
	PeakRSS int64 `json:"vmHWMBytes"`
}

// parseProcStatus reads VmRSS and VmHWM (peak RSS) from /proc/PID/status,
// whose sizes are in kB.
func parseProcStatus(r io.Reader) (procMemory, error) {
	var pm procMemory
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return pm, fmt.Errorf("unexpected %s line: %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return pm, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			pm.RSS = kb * 1024
		} else {
			pm.PeakRSS = kb * 1024
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return pm, err
	}
	if found != 2 {
		return pm, fmt.Errorf("VmRSS or VmHWM missing")
	}
	return pm, nil
}

func readProcMemory(pid int) (procMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, err
	}
	defer func() { _ = f.Close() }()
	return parseProcStatus(f)
}

// parseLoadAverage reads the 1-minute load average from /proc/loadavg.
func parseLoadAverage(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, fmt.Errorf("unexpected /proc/loadavg: %q", s)
	}
	return strconv.ParseFloat(f[0], 64)
}

func readLoadAverage() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	return parseLoadAverage(string(data))
}
