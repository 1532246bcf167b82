package webhook_test

import (
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// The users of the trust model specs (docs/security.md). Every one of them is
// bound to the namespace's built-in edit role; some hold more.
const (
	dev       = "dev"       // edit only: the person the gate stops
	hotfixer  = "alice"     // edit + release-during-freeze
	lead      = "lead"      // edit + lift-freeze
	oncall    = "oncall"    // edit + freeze-exception-requester
	oncall2   = "oncall2"   // edit + freeze-exception-requester
	approver  = "approver"  // edit + freeze-exception-approver
	gitopsBot = "gitops"    // edit + release-during-freeze, like a GitOps service account
	sloEditor = "sloeditor" // edit + servicelevelobjective-editor-role, no custom verbs

	deploymentController  = "system:serviceaccount:kube-system:deployment-controller"
	statefulSetController = "system:serviceaccount:kube-system:statefulset-controller"
)

// shippedRoles installs every ClusterRole of config/rbac (once), under the
// names config/rbac gives them (without the budgetgate- prefix), and then
// aggregates the built-in roles: whatever a shipped role aggregates into view,
// edit or admin, the specs' users get, as in a cluster.
var shippedRoles = sync1(func() {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "rbac", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		Expect(err).NotTo(HaveOccurred())
		role := &rbacv1.ClusterRole{}
		Expect(yaml.Unmarshal(data, role)).To(Succeed())
		if role.Kind != "ClusterRole" {
			continue
		}
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, role))).To(Succeed())
		n++
	}
	Expect(n).To(BeNumerically(">=", 15), "ClusterRoles in config/rbac")
	aggregateBuiltinRoles()
})

func sync1(f func()) func() {
	done := false
	return func() {
		if !done {
			f()
			done = true
		}
	}
}

// aggregateBuiltinRoles does what kube-controller-manager's clusterrole
// aggregation controller does, which envtest does not run: it fills the
// built-in admin, edit and view roles with the rules of the roles their
// aggregationRule selects. Without it "edit" grants nothing here, and the
// attacks would fail for the wrong reason.
func aggregateBuiltinRoles() {
	// In order: view is aggregated into edit, edit into admin.
	for _, name := range []string{"view", "edit", "admin"} {
		all := &rbacv1.ClusterRoleList{}
		Expect(k8sClient.List(ctx, all)).To(Succeed())
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			role := &rbacv1.ClusterRole{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, role); err != nil {
				return err
			}
			if role.AggregationRule == nil {
				return nil
			}
			var rules []rbacv1.PolicyRule
			for _, sel := range role.AggregationRule.ClusterRoleSelectors {
				s, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					return err
				}
				for i := range all.Items {
					if all.Items[i].Name != name && s.Matches(labels.Set(all.Items[i].Labels)) {
						rules = append(rules, all.Items[i].Rules...)
					}
				}
			}
			role.Rules = rules
			return k8sClient.Update(ctx, role)
		})).To(Succeed())
	}
	// Sanity: edit may now create ReplicaSets, which is what makes forged history possible.
	edit := &rbacv1.ClusterRole{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "edit"}, edit)).To(Succeed())
	Expect(slices.ContainsFunc(edit.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.Resources, "replicasets") && slices.Contains(r.Verbs, "create")
	})).To(BeTrue(), "the built-in edit role does not grant creating ReplicaSets")
}

// bindUsers binds every user of the trust model in ns: all to edit, and each to
// its extra role.
func bindUsers(ns string) {
	shippedRoles()
	bind := func(user, role string) {
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "trust-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}},
		})).To(Succeed())
	}
	for _, u := range []string{dev, hotfixer, lead, oncall, oncall2, approver, gitopsBot, sloEditor} {
		bind(u, "edit")
	}
	bind(oncall2, "freeze-exception-requester")
	bind(hotfixer, "release-during-freeze")
	bind(gitopsBot, "release-during-freeze")
	bind(lead, "lift-freeze")
	bind(lead, "servicelevelobjective-editor-role")
	bind(sloEditor, "servicelevelobjective-editor-role")
	bind(oncall, "freeze-exception-requester")
	bind(approver, "freeze-exception-approver")
	// RBAC takes effect once the API server's authorizer has seen the bindings.
	Eventually(func(g Gomega) {
		for _, u := range []string{dev, hotfixer, lead, oncall, approver, gitopsBot, sloEditor} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: u, Groups: []string{"system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Group: "apps", Resource: "deployments"},
			}}
			g.Expect(k8sClient.Create(ctx, sar)).To(Succeed())
			g.Expect(sar.Status.Allowed).To(BeTrue(), "%s may not update deployments yet", u)
		}
	}).Should(Succeed())
}

// impersonating returns a rest config for user (a ServiceAccount's groups for
// system:serviceaccount: users).
func impersonating(user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	if user == "" {
		return c // the envtest admin
	}
	groups := []string{"system:authenticated"}
	if ns, _, ok := cutServiceAccount(user); ok {
		groups = append(groups, "system:serviceaccounts", "system:serviceaccounts:"+ns)
	}
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

func cutServiceAccount(user string) (ns, name string, ok bool) {
	const prefix = "system:serviceaccount:"
	if len(user) <= len(prefix) || user[:len(prefix)] != prefix {
		return "", "", false
	}
	rest := user[len(prefix):]
	for i := range rest {
		if rest[i] == ':' {
			return rest[:i], rest[i+1:], true
		}
	}
	return "", "", false
}

// crAs is a controller-runtime client acting as user, collecting warnings.
func crAs(user string) (client.Client, *warnings) {
	c := impersonating(user)
	w := &warnings{}
	c.WarningHandler = w
	cl, err := client.New(c, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl, w
}

// csAs is a clientset acting as user (ServiceAccounts included), collecting warnings.
func csAs(user string) (*kubernetes.Clientset, *warnings) {
	c := impersonating(user)
	w := &warnings{}
	c.WarningHandler = w
	cs, err := kubernetes.NewForConfig(c)
	Expect(err).NotTo(HaveOccurred())
	return cs, w
}

// replicaSetOf is a ReplicaSet holding template t for Deployment d, controlled
// by it when controlled is set (what the Deployment controller writes).
func replicaSetOf(d *appsv1.Deployment, name string, t corev1.PodTemplateSpec, controlled bool) *appsv1.ReplicaSet {
	t = *t.DeepCopy()
	lbls := map[string]string{}
	for k, v := range d.Spec.Selector.MatchLabels {
		lbls[k] = v
	}
	lbls["pod-template-hash"] = name
	t.Labels = map[string]string{}
	for k, v := range lbls {
		t.Labels[k] = v
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name + "-" + name, Labels: lbls},
		Spec:       appsv1.ReplicaSetSpec{Replicas: new(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: t},
	}
	if controlled {
		rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: new(true)}}
	}
	return rs
}

// getDeployment reads a Deployment as admin.
func getDeployment(ns, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	return d
}

// updateDeployment applies mutate to the Deployment as cs's user, retrying
// conflicts (the controller marks frozen workloads meanwhile).
func updateDeployment(cs *kubernetes.Clientset, ns, name string, mutate func(*appsv1.Deployment)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(d)
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
}

// forbiddenMessage asserts err is a denial and returns its message without the
// API server's prefix.
func forbiddenMessage(err error) string {
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
	return err.Error()
}

// waitCached waits until the webhooks' cache shows cond for the exception.
func waitException(key client.ObjectKey, cond func(*slov1alpha1.FreezeException) bool) {
	Eventually(func(g Gomega) {
		got := &slov1alpha1.FreezeException{}
		g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
		g.Expect(cond(got)).To(BeTrue(), "exception %s: %+v", key, got.Status)
	}).Should(Succeed())
	// The webhook reads the manager's cache, a moment behind the API server.
	time.Sleep(300 * time.Millisecond)
}
