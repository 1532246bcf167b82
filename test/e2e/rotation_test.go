//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Rotation of the webhook certificate by the manager (open-policy-agent/
// cert-controller, with internal/certtrust and internal/certsync) while
// admission requests keep coming, in the story of e2e_test.go while the
// checkout SLO is frozen (so that the release gate's answer is a denial, and
// a request the webhook did not answer shows as admitted). Only where the
// operator's own pods run: on kwok the local webhook serves a static
// certificate from hack/local-webhook.

const (
	certSecret     = "budgetgate-webhook-server-cert"
	webhookService = "budgetgate-webhook-service." + operatorNamespace + ".svc"
	// lookahead is cert-controller's: a certificate that expires within it is renewed.
	lookahead = 90 * 24 * time.Hour
)

var webhookConfigurations = []string{
	"validatingwebhookconfiguration/budgetgate-workload-release-gate",
	"validatingwebhookconfiguration/budgetgate-validating-webhook-configuration",
	"mutatingwebhookconfiguration/budgetgate-mutating-webhook-configuration",
}

func skipWithoutRotation() {
	if c := os.Getenv("E2E_CLUSTER"); c != "real" && c != "kind" {
		Skip("certificate rotation runs where the operator's own pods run (E2E_CLUSTER=real); on kwok the local " +
			"manager processes serve a static certificate from hack/local-webhook (--webhook-cert-path)")
	}
}

// certSecretData is the Secret's data, or nil while it does not exist.
func certSecretData(g Gomega) map[string][]byte {
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", "secret", certSecret, "--ignore-not-found", "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	if strings.TrimSpace(out) == "" {
		return nil
	}
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	g.Expect(json.Unmarshal([]byte(out), &s)).To(Succeed())
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	return s.Data
}

func pemCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && b.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
}

// bundles returns the CAs in each caBundle of budgetgate's three configurations.
func bundles(g Gomega) map[string][]*x509.Certificate {
	out := map[string][]*x509.Certificate{}
	for _, cfg := range webhookConfigurations {
		raw, err := kubectl.Run("", "get", cfg, "-o", `jsonpath={range .webhooks[*]}{.name} {.clientConfig.caBundle}{"\n"}{end}`)
		g.Expect(err).NotTo(HaveOccurred())
		for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
			f := strings.Fields(line)
			g.Expect(f).To(HaveLen(2), "%s: a webhook without caBundle: %q", cfg, line)
			data, err := base64.StdEncoding.DecodeString(f[1])
			g.Expect(err).NotTo(HaveOccurred())
			out[cfg+" "+f[0]] = pemCerts(data)
		}
	}
	return out
}

// servedCert is the certificate a manager pod's webhook server presents, to
// each replica on its own (not through the Service): on the real node the
// suite reaches pod IPs directly; elsewhere through a port-forward.
func servedCert(pod string) (*x509.Certificate, error) {
	addr := ""
	if os.Getenv("E2E_CLUSTER") == "real" {
		ip, err := kubectl.Run("", "-n", operatorNamespace, "get", "pod", pod, "-o", "jsonpath={.status.podIP}")
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(ip) == "" {
			return nil, fmt.Errorf("pod %s has no IP", pod)
		}
		addr = net.JoinHostPort(strings.TrimSpace(ip), "9443")
	} else {
		local, stop, err := portForward(pod, 9443)
		if err != nil {
			return nil, err
		}
		defer stop()
		addr = local
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: webhookService, InsecureSkipVerify: true}) //nolint:gosec // the test compares what is served
	if err != nil {
		return nil, fmt.Errorf("TLS to %s at %s: %w", pod, addr, err)
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// portForward forwards a local port to a port of a pod of the operator and
// returns the local address and a function that ends the forwarding.
func portForward(pod string, port int) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, kubectl.Path, "--kubeconfig", kubectl.Kubeconfig, "-n", operatorNamespace,
		"port-forward", "pod/"+pod, fmt.Sprintf(":%d", port))
	stop := func() {
		cancel()
		_ = cmd.Wait()
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return "", nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return "", nil, err
	}
	local := ""
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+)`)
	for local == "" && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			local = m[1]
		}
	}
	if local == "" {
		stop()
		return "", nil, fmt.Errorf("port-forward to %s: %s", pod, stderr.String())
	}
	go func() {
		for sc.Scan() { // drain
		}
	}()
	return local, stop, nil
}

// managerPods are the manager's pods: name → "containerID restartCount".
func managerPods(g Gomega) map[string]string {
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", "pods", "-l", inClusterManagerPods, "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	var pods podList
	g.Expect(json.Unmarshal([]byte(out), &pods)).To(Succeed())
	m := map[string]string{}
	for _, p := range pods.Items {
		c, ok := p.manager()
		g.Expect(ok).To(BeTrue())
		m[p.Metadata.Name] = fmt.Sprintf("%s %d", c.ContainerID, c.RestartCount)
	}
	return m
}

// issued returns a PEM certificate for name with key, valid until notAfter,
// signed by caCert's caKey (self-signed, as a CA, when caCert is nil), and
// the key in PEM.
func issued(name string, notAfter time.Time, key crypto.Signer, caCert *x509.Certificate, caKey crypto.Signer) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	GinkgoHelper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name, Organization: []string{"e2e"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{name}}
	parent, signer := tmpl, key
	if caCert == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		parent, signer = caCert, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	Expect(err).NotTo(HaveOccurred())
	cert, err = x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	switch k := key.(type) {
	case *rsa.PrivateKey: // as cert-controller writes its CA key
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		keyDER, err := x509.MarshalECPrivateKey(k)
		Expect(err).NotTo(HaveOccurred())
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, cert
}

func ecKey() crypto.Signer {
	GinkgoHelper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	return k
}

// patchCertSecret replaces keys of the certificate Secret's data.
func patchCertSecret(data map[string][]byte) {
	GinkgoHelper()
	patch, err := json.Marshal(map[string]any{"data": data})
	Expect(err).NotTo(HaveOccurred())
	_, err = kubectl.Run("", "-n", operatorNamespace, "patch", "secret", certSecret, "--type=merge", "-p", string(patch))
	Expect(err).NotTo(HaveOccurred())
}

// rotation is what a rotation spec expects once the manager has re-issued.
type rotation struct {
	// newCA: the CA must change; otherwise it must stay.
	newCA bool
	// notCA is a CA that must not be the one in use (one the test wrote).
	notCA *x509.Certificate
}

// rotate runs trigger while an admission probe runs, waits until the manager
// has re-issued the certificate, injected its CA into every webhook of the
// three configurations and every replica serves it, and checks that no
// admission request failed and no replica restarted.
func rotate(name string, want rotation, trigger func(before map[string][]byte)) {
	skipWithoutRotation()
	Expect(environ.RestoreReplicas()).To(Succeed())
	var before map[string][]byte
	var podsBefore map[string]string
	Eventually(func(g Gomega) {
		before = certSecretData(g)
		g.Expect(before).NotTo(BeNil())
		podsBefore = managerPods(g)
		g.Expect(podsBefore).To(HaveLen(2))
	}).Should(Succeed())
	caBefore := pemCerts(before["ca.crt"])[0]
	leafBefore := pemCerts(before["tls.crt"])[0]

	probe := startAdmissionProbe()
	started := time.Now()
	trigger(before)

	var ca, leaf *x509.Certificate
	var trusted map[string][]*x509.Certificate
	served := map[string]string{}
	// When each step was first seen done, from the trigger.
	var reissued, injected time.Duration
	seen := func(step *time.Duration) {
		if *step == 0 {
			*step = time.Since(started)
		}
	}
	Eventually(func(g Gomega) {
		data := certSecretData(g)
		g.Expect(data).NotTo(BeNil(), "the Secret is gone")
		cas, leaves := pemCerts(data["ca.crt"]), pemCerts(data["tls.crt"])
		g.Expect(cas).NotTo(BeEmpty(), "no CA issued yet")
		g.Expect(leaves).NotTo(BeEmpty(), "no certificate issued yet")
		ca, leaf = cas[0], leaves[0]
		g.Expect(leaf.Equal(leafBefore)).To(BeFalse(), "not re-issued yet")
		g.Expect(leaf.NotAfter).To(BeTemporally(">", time.Now().Add(lookahead)), "the certificate in the Secret is near expiry")
		g.Expect(ca.Equal(caBefore)).To(Equal(!want.newCA), "CA changed: %v, want %v", !ca.Equal(caBefore), want.newCA)
		if want.notCA != nil {
			g.Expect(ca.Equal(want.notCA)).To(BeFalse(), "the CA the test wrote is in use")
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: webhookService})
		g.Expect(err).NotTo(HaveOccurred())
		seen(&reissued)
		trusted = bundles(g)
		for _, cfg := range webhookConfigurations {
			found := false
			for hook := range trusted {
				found = found || strings.HasPrefix(hook, cfg+" ")
			}
			g.Expect(found).To(BeTrue(), "%s has no webhook", cfg)
		}
		for hook, cas := range trusted {
			found := false
			for _, c := range cas {
				found = found || c.Equal(ca)
			}
			g.Expect(found).To(BeTrue(), "%s does not trust the new CA yet", hook)
		}
		seen(&injected)
		for pod := range podsBefore {
			c, err := servedCert(pod)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.Equal(leaf)).To(BeTrue(), "pod %s still serves the certificate issued %s", pod, c.NotBefore)
			fp := sha256.Sum256(c.Raw)
			served[pod] = fmt.Sprintf("sha256 %x… until %s", fp[:6], c.NotAfter.Format(time.DateOnly))
		}
	}, 3*time.Minute, time.Second).Should(Succeed())
	converged := time.Since(started)
	// Keep asking a little past the swap.
	time.Sleep(5 * time.Second)
	sent, failed, summary := probe.finish()

	var podsAfter map[string]string
	Eventually(func(g Gomega) { podsAfter = managerPods(g) }).Should(Succeed())
	least, most := -1, 0
	for _, cas := range trusted {
		if least < 0 || len(cas) < least {
			least = len(cas)
		}
		most = max(most, len(cas))
	}
	measured("rotation "+name, "after the trigger: re-issued in the Secret %.1fs, its CA trusted by all %d webhooks of the 3 "+
		"configurations %.1fs (bundles of %d to %d CAs), served by every replica %.1fs (seen at 1s polls); CA changed: %v; "+
		"served: %v; pods (containerID restarts) before %v after %v; "+
		"%d dry-run admission requests during the rotation, %d not answered by the webhook:%s",
		reissued.Seconds(), len(trusted), injected.Seconds(), least, most, converged.Seconds(), !ca.Equal(caBefore),
		served, podsBefore, podsAfter, sent, failed, summary)
	Expect(failed).To(BeZero(), "admission requests that failed during the rotation:%s", summary)
	Expect(podsAfter).To(Equal(podsBefore), "a replica restarted (or was replaced) to pick up the certificate")
}

func specRotateDeletedSecret() {
	rotate("deleted Secret", rotation{newCA: true}, func(map[string][]byte) {
		By("deleting the Secret " + certSecret)
		_, err := kubectl.Run("", "-n", operatorNamespace, "delete", "secret", certSecret)
		Expect(err).NotTo(HaveOccurred())
	})
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", "secret", certSecret,
		"-o", `jsonpath={.metadata.annotations.budgetgate\.dev/recreated-at}`)
	Expect(err).NotTo(HaveOccurred())
	Expect(out).NotTo(BeEmpty(), "the Secret was not created again by the manager")
}

func specRotateServerCert() {
	rotate("serving certificate near expiry", rotation{newCA: false}, func(before map[string][]byte) {
		By("writing a serving certificate that expires in 30 days, signed by the CA in use")
		caBlock, _ := pem.Decode(before["ca.crt"])
		ca, err := x509.ParseCertificate(caBlock.Bytes)
		Expect(err).NotTo(HaveOccurred())
		keyBlock, _ := pem.Decode(before["ca.key"])
		Expect(keyBlock).NotTo(BeNil())
		caKey, err := x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
		Expect(err).NotTo(HaveOccurred())
		certPEM, keyPEM, _ := issued(webhookService, time.Now().Add(30*24*time.Hour), ecKey(), ca, caKey)
		patchCertSecret(map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM})
	})
}

func specRotateCA() {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	caPEM, caKeyPEM, ca := issued("budgetgate-ca", time.Now().Add(30*24*time.Hour), caKey, nil, nil)
	rotate("CA near expiry", rotation{newCA: true, notCA: ca}, func(map[string][]byte) {
		By("writing a CA that expires in 30 days (a fresh one: the API server does not trust it), and a serving certificate of it")
		certPEM, keyPEM, _ := issued(webhookService, time.Now().Add(30*24*time.Hour), ecKey(), ca, caKey)
		patchCertSecret(map[string][]byte{"ca.crt": caPEM, "ca.key": caKeyPEM, "tls.crt": certPEM, "tls.key": keyPEM})
	})
}
