package leader

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// fakeLock is a lease record in memory whose writes can be made to fail.
type fakeLock struct {
	rec  resourcelock.LeaderElectionRecord
	fail error
}

func (f *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r := f.rec
	return &r, []byte(r.HolderIdentity), f.fail
}
func (f *fakeLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	if f.fail == nil {
		f.rec = r
	}
	return f.fail
}
func (f *fakeLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	if f.fail == nil {
		f.rec = r
	}
	return f.fail
}
func (f *fakeLock) RecordEvent(string) {}
func (f *fakeLock) Identity() string   { return "me" }
func (f *fakeLock) Describe() string   { return "budgetgate-system/budgetgate.slo.budgetgate.dev" }

func TestLeaseHeld(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lock := &fakeLock{}
	l := &Lease{Interface: lock, validFor: 10 * time.Second, now: func() time.Time { return now }}
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}
	held := func(want bool, step string) {
		t.Helper()
		err := l.Held()
		if (err == nil) != want {
			t.Fatalf("%s: Held() = %v, want held %v", step, err, want)
		}
		if err != nil && !errors.Is(err, ErrNotLeader) {
			t.Fatalf("%s: %v does not wrap ErrNotLeader", step, err)
		}
	}

	held(false, "never acquired")
	if err := l.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	held(true, "acquired")
	now = now.Add(9 * time.Second)
	held(true, "9s after acquiring")
	if err := l.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Second)
	held(true, "9s after a renewal")

	// Renewals fail (the API server is unreachable): the last good one counts.
	lock.fail = errors.New("connection refused")
	_ = l.Update(ctx, mine)
	now = now.Add(time.Second)
	held(false, "10s after the last good renewal")
	if got := l.Held().Error(); !strings.Contains(got, "last renewed 10s ago, past the renew deadline of 10s") {
		t.Errorf("Held() = %q, want the age and the deadline", got)
	}
	lock.fail = nil
	if err := l.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	held(true, "renewed again")

	// Another replica took the lease (this one was paused): reading the record ends the hold at once.
	lock.rec = resourcelock.LeaderElectionRecord{HolderIdentity: "other"}
	if _, _, err := l.Get(ctx); err != nil {
		t.Fatal(err)
	}
	held(false, "the record names another holder")

	// Released on shutdown: an empty holder.
	if err := l.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	held(true, "acquired again")
	if err := l.Update(ctx, resourcelock.LeaderElectionRecord{}); err != nil {
		t.Fatal(err)
	}
	held(false, "released")
}

// events counts the Events it is given.
type events struct{ n int }

func (e *events) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {
	e.n++
}
func (e *events) AnnotatedEventf(runtime.Object, runtime.Object, map[string]string, string, string, string, string, ...any) {
	e.n++
}

func TestFence(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	c := fake.NewClientBuilder().WithObjects(cm, pod).WithStatusSubresource(&corev1.Pod{}).Build()
	var holdErr error
	f := Fence(c, func() error { return holdErr })
	rec := &events{}
	r := FenceRecorder(rec, func() error { return holdErr })

	write := map[string]func() error{
		"create": func() error {
			return f.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new-" + time.Now().Format("150405.000000000")}})
		},
		"update": func() error {
			got := &corev1.ConfigMap{}
			if err := f.Get(ctx, client.ObjectKeyFromObject(cm), got); err != nil {
				return err
			}
			return f.Update(ctx, got)
		},
		"patch": func() error {
			return f.Patch(ctx, cm.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"data":{"a":"b"}}`)))
		},
		"status patch": func() error {
			return f.Status().Patch(ctx, pod.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"status":{"message":"x"}}`)))
		},
		"subresource update": func() error {
			got := &corev1.Pod{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil {
				return err
			}
			return f.SubResource("status").Update(ctx, got)
		},
		"delete": func() error {
			return client.IgnoreNotFound(f.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gone"}}))
		},
	}
	for name, w := range write {
		holdErr = nil
		if err := w(); err != nil {
			t.Errorf("%s while held: %v", name, err)
		}
		holdErr = ErrNotLeader
		if err := w(); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s after losing the lease: %v, want ErrNotLeader", name, err)
		}
	}
	// Reads pass either way.
	if err := f.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); err != nil {
		t.Errorf("get after losing the lease: %v", err)
	}
	holdErr = nil
	r.Eventf(cm, nil, "Normal", "R", "A", "held")
	holdErr = ErrNotLeader
	r.Eventf(cm, nil, "Normal", "R", "A", "lost")
	r.AnnotatedEventf(cm, nil, nil, "Normal", "R", "A", "lost")
	if rec.n != 1 {
		t.Errorf("recorded %d Events, want 1 (the one while held)", rec.n)
	}
}
