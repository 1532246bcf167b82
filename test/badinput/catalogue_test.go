package badinput_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// A catalogue file is YAML documents separated by "---" lines. Each document
// starts with comment lines "# key: value" that say what it is:
//
//	setup    an object the entry needs first (a policy, an SLO); applied and
//	         awaited in budgetgate's cache before the bad manifest
//	kind     the bad manifest's kind
//	field    the field that is wrong; the message must name it
//	wrong    what is wrong, in words (docs/reliability.md lists it)
//	error    the exact error the API server returns for the bad manifest
//	warning  instead of error: the bad manifest is admitted, and this exact
//	         warning reaches the client
//	kubectl  (repeatable) the exact output of `kubectl apply -f FILE`, where
//	         FILE is the entry's file name holding the bad manifest alone
//	good     the manifest the message says to write; it must be admitted
//	         without any warning
//
// Files are Go templates, rendered once per run: {{in "48h"}} is the time
// 48h from now (RFC 3339, whole seconds, UTC), {{repeat "a" 300}} repeats a
// string.
type entry struct {
	file                             string
	kind, field, wrong, err, warning string
	kubectl                          []string
	setup                            []*unstructured.Unstructured
	bad, good                        *unstructured.Unstructured
	badYAML                          string
}

var headerKeys = []string{"setup", "kind", "field", "wrong", "error", "warning", "kubectl", "good"}

func catalogueFiles() []string {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		panic(err)
	}
	return files
}

func render(file string) string {
	raw, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now().UTC().Truncate(time.Second)
	tmpl, err := template.New(file).Option("missingkey=error").Funcs(template.FuncMap{
		"in": func(d string) (string, error) {
			v, err := time.ParseDuration(d)
			return now.Add(v).Format(time.RFC3339), err
		},
		"repeat": func(s string, n int) string { return strings.Repeat(s, n) },
	}).Parse(string(raw))
	Expect(err).NotTo(HaveOccurred(), file)
	var out bytes.Buffer
	Expect(tmpl.Execute(&out, nil)).To(Succeed(), file)
	return out.String()
}

func parse(file string) entry {
	e := entry{file: file}
	for i, doc := range strings.Split(render(file), "\n---\n") {
		header := map[string][]string{}
		for line := range strings.Lines(doc) {
			line = strings.TrimRight(line, "\n")
			if !strings.HasPrefix(line, "# ") {
				break
			}
			key, value, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
			if !ok {
				key, value = strings.TrimSuffix(strings.TrimPrefix(line, "# "), ":"), ""
			}
			Expect(headerKeys).To(ContainElement(key), "%s, document %d: unknown header %q", file, i, line)
			header[key] = append(header[key], value)
		}
		obj := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed(), "%s, document %d", file, i)
		one := func(key string) string {
			Expect(len(header[key])).To(BeNumerically("<=", 1), "%s: more than one %q", file, key)
			if len(header[key]) == 0 {
				return ""
			}
			return header[key][0]
		}
		switch {
		case header["setup"] != nil:
			e.setup = append(e.setup, obj)
		case header["good"] != nil:
			Expect(e.good).To(BeNil(), "%s: more than one good manifest", file)
			e.good = obj
		default:
			Expect(e.bad).To(BeNil(), "%s: more than one bad manifest (mark the others setup or good)", file)
			e.bad, e.badYAML = obj, doc
			e.kind, e.field, e.wrong, e.err, e.warning = one("kind"), one("field"), one("wrong"), one("error"), one("warning")
			e.kubectl = header["kubectl"]
		}
	}
	Expect(e.bad).NotTo(BeNil(), "%s: no bad manifest", file)
	Expect(e.good).NotTo(BeNil(), "%s: no good manifest", file)
	Expect(e.kind).To(Equal(e.bad.GetKind()), "%s: header kind", file)
	Expect(e.good.GetKind()).To(Equal(e.bad.GetKind()), "%s: the good manifest is of another kind", file)
	Expect(e.field).NotTo(BeEmpty(), "%s: no field", file)
	Expect(e.wrong).NotTo(BeEmpty(), "%s: no wrong", file)
	Expect([]string{e.err, e.warning}).To(ContainElement(BeEmpty()), "%s: both error and warning", file)
	Expect([]string{e.err, e.warning}).To(ContainElement(Not(BeEmpty())), "%s: neither error nor warning", file)
	return e
}

// warnings collects the warnings a client receives.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

func warningClient() (client.Client, *warnings) {
	c := rest.CopyConfig(cfg)
	w := &warnings{}
	c.WarningHandler = w
	cl, err := client.New(c, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl, w
}

// create creates obj as kubectl apply creates a new object: with strict
// field validation. It returns the warnings the client received.
func create(obj *unstructured.Unstructured) ([]string, error) {
	c, w := warningClient()
	ensureNamespace(obj.GetNamespace())
	err := c.Create(ctx, obj.DeepCopy(), client.FieldValidation(metav1.FieldValidationStrict))
	return w.all(), err
}

var namespaces = map[string]bool{}

func ensureNamespace(ns string) {
	if ns == "" || namespaces[ns] {
		return
	}
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
	namespaces[ns] = true
}

func remove(obj *unstructured.Unstructured) {
	GinkgoHelper()
	Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, obj.DeepCopy()))).To(Succeed())
	Eventually(func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(obj.GroupVersionKind())
		return cache.Get(ctx, client.ObjectKeyFromObject(obj), u)
	}).Should(Satisfy(apierrors.IsNotFound), "%s %s is still in the cache", obj.GetKind(), obj.GetName())
}

// inCache waits until budgetgate's cache, which its webhooks read, holds obj.
func inCache(obj *unstructured.Unstructured) {
	GinkgoHelper()
	Eventually(func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(obj.GroupVersionKind())
		return cache.Get(ctx, client.ObjectKeyFromObject(obj), u)
	}).Should(Succeed())
}

var _ = Describe("Bad input", func() {
	files := catalogueFiles()
	entries := make([]TableEntry, 0, len(files))
	for _, f := range files {
		entries = append(entries, Entry(f, f))
	}

	It("has at least 30 entries, 5 or more per kind", func() {
		perKind := map[string]int{}
		for _, f := range catalogueFiles() {
			perKind[parse(f).kind]++
		}
		GinkgoWriter.Printf("catalogue: %v\n", perKind)
		Expect(len(catalogueFiles())).To(BeNumerically(">=", 30))
		for _, kind := range []string{"ServiceLevelObjective", "ErrorBudgetPolicy", "FreezeException"} {
			Expect(perKind[kind]).To(BeNumerically(">=", 5), kind)
		}
	})

	It("is listed, every entry of it, in docs/reliability.md", func() {
		doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "reliability.md"))
		Expect(err).NotTo(HaveOccurred())
		_, section, ok := strings.Cut(string(doc), "\n## Bad input\n")
		Expect(ok).To(BeTrue(), "docs/reliability.md has no section Bad input")
		section, _, _ = strings.Cut(section, "\n## ")
		for _, f := range catalogueFiles() {
			Expect(section).To(ContainSubstring("`"+strings.TrimSuffix(f, ".yaml")+"`"), f)
		}
	})

	DescribeTable("is answered with a message that names the field and says what to write, and that fix is admitted",
		func(file string) {
			e := parse(file)
			for _, obj := range e.setup {
				_, err := create(obj)
				Expect(err).NotTo(HaveOccurred(), "setup %s %s", obj.GetKind(), obj.GetName())
				DeferCleanup(remove, obj)
				inCache(obj)
			}

			By("the bad manifest")
			seen, err := create(e.bad)
			if e.err != "" {
				Expect(err).To(HaveOccurred(), "admitted, with warnings %q", seen)
				Expect(err.Error()).To(Equal(e.err))
				Expect(err.Error()).To(ContainSubstring(e.field))
			} else {
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(remove, e.bad)
				Expect(seen).To(ContainElement(e.warning))
				Expect(e.warning).To(ContainSubstring(e.field))
				remove(e.bad)
			}

			By("the manifest the message asks for")
			seen, err = create(e.good)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(remove, e.good)
			Expect(seen).To(BeEmpty())
		},
		entries,
	)

	// kubectl asks for strict field validation; other clients (client-go's
	// default, many GitOps tools) get the API server's default, Warn: the
	// unknown field is dropped with a warning, and what it was meant to set
	// is missing.
	It("warns about an unknown field without strict validation, and the field it was meant to be is missing", func() {
		e := parse("slo-unknown-field.yaml")
		ensureNamespace(e.bad.GetNamespace())
		c, w := warningClient()
		err := c.Create(ctx, e.bad.DeepCopy())
		Expect(w.all()).To(ConsistOf(`unknown field "spec.targt"`))
		Expect(err).To(MatchError(`ServiceLevelObjective.slo.budgetgate.dev "checkout-availability" is invalid: ` +
			`[spec.target: Required value, <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; ` +
			`correct the existing errors to complete validation]`))
	})

	Describe("through kubectl apply", func() {
		It("prints the messages the catalogue shows", func() {
			kubectl := filepath.Join(envtestBinaryDir(), "kubectl")
			if _, err := os.Stat(kubectl); err != nil {
				if os.Getenv("BUDGETGATE_REQUIRE_KUBECTL") != "" {
					Fail(fmt.Sprintf("no kubectl at %s (make envtest-binaries gets it)", kubectl))
				}
				Skip("no kubectl at " + kubectl + " (make envtest-binaries gets it)")
			}
			n := 0
			for _, f := range catalogueFiles() {
				e := parse(f)
				if e.kubectl == nil {
					continue
				}
				n++
				for _, obj := range e.setup {
					_, err := create(obj)
					Expect(err).NotTo(HaveOccurred())
					inCache(obj)
				}
				dir := GinkgoT().TempDir()
				Expect(os.WriteFile(filepath.Join(dir, f), []byte(e.badYAML), 0o600)).To(Succeed())
				cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "apply", "-f", f)
				cmd.Dir = dir
				out, _ := cmd.CombinedOutput()
				if e.warning != "" {
					remove(e.bad)
				}
				for _, obj := range slices.Backward(e.setup) {
					remove(obj)
				}
				Expect(strings.TrimRight(string(out), "\n")).To(Equal(strings.Join(e.kubectl, "\n")), f)
			}
			Expect(n).To(BeNumerically(">=", 5))
		})
	})
})
