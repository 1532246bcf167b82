// Package leader fences the writes of budgetgate's reconcilers with their
// leader lease.
//
// controller-runtime stops a manager that fails to renew its lease, but only
// after the renew deadline (7s, cmd/main.go) has passed, and nothing stops its
// reconcilers in the meantime. A leader that was paused past the lease
// duration (a stopped process, a frozen VM, a long GC or I/O stall) therefore
// resumes as if it still led: measured on kwok (with controller-runtime's
// default timings, a 10s renew deadline), a manager resumed 12s after the
// other replica had taken the lease evaluated an SLO and wrote its status at
// once, then went on for another 10s before it exited. Two writers of one
// freeze state is what leader election exists to prevent.
//
// Lease wraps the manager's resource lock and remembers when this replica
// last wrote its own lease record successfully. Held reports whether that
// was within the renew deadline: no other replica can have taken the lease
// before the lease duration (10s) has passed since then, as every candidate
// counts the duration from the moment it saw that record. Fence puts Held in
// front of every write of a client, so the reconcilers stop writing as soon
// as the lease may be someone else's, not when the manager finally exits.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	crleaderelection "sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// ErrNotLeader is wrapped by every error of Held.
var ErrNotLeader = errors.New("this replica does not hold the leader lease")

// Lease is a resourcelock.Interface that knows whether this replica may still
// act as the leader. Give it to the manager as
// LeaderElectionResourceLockInterface.
type Lease struct {
	resourcelock.Interface
	// validFor is how long after sending its last successful renewal this
	// replica counts itself the holder: the renew deadline.
	validFor time.Duration
	now      func() time.Time
	events   lazyRecorder

	mu sync.Mutex
	// renewed is when the last successful write of this replica's own record
	// was sent (with the monotonic clock reading of time.Now, so a paused
	// process sees the pause); zero while it does not hold the lease.
	renewed time.Time
}

// NewLease makes the lock controller-runtime's manager would make from opts
// (its leaderelection.NewResourceLock: a Lease object, identity
// hostname_UUID, the namespace from opts or the pod's, a client timeout of
// half the renew deadline) and wraps it. opts.RenewDeadline must be the
// manager's renew deadline: it is how long a renewal stays good.
func NewLease(cfg *rest.Config, opts crleaderelection.Options) (*Lease, error) {
	if opts.RenewDeadline <= 0 {
		return nil, errors.New("leader: RenewDeadline must be set")
	}
	l := &Lease{validFor: opts.RenewDeadline, now: time.Now}
	lock, err := crleaderelection.NewResourceLock(cfg, recorders{&l.events}, opts)
	if err != nil {
		return nil, err
	}
	l.Interface = lock
	return l, nil
}

// UseRecorder sends the lock's own Events ("<identity> became leader" on the
// Lease) through r. Until it is called they are dropped.
func (l *Lease) UseRecorder(r recorder.EventRecorder) { l.events.r.Store(&r) }

// Create creates the lease record, remembering a success for this replica.
func (l *Lease) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := l.now()
	err := l.Interface.Create(ctx, ler)
	l.wrote(ler, sent, err)
	return err
}

// Update writes the lease record: a renewal, an acquisition, or the release
// (an empty holder) when the manager stops.
func (l *Lease) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := l.now()
	err := l.Interface.Update(ctx, ler)
	l.wrote(ler, sent, err)
	return err
}

// Get reads the lease record; one held by another replica ends this
// replica's hold at once.
func (l *Lease) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil && rec != nil && rec.HolderIdentity != l.Identity() {
		l.mu.Lock()
		l.renewed = time.Time{}
		l.mu.Unlock()
	}
	return rec, raw, err
}

// wrote records the outcome of a write. A failed write changes nothing: the
// last good renewal keeps counting down.
func (l *Lease) wrote(ler resourcelock.LeaderElectionRecord, sent time.Time, err error) {
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ler.HolderIdentity == l.Identity() {
		l.renewed = sent
	} else {
		l.renewed = time.Time{}
	}
}

// Held returns nil while this replica holds the lease: it wrote its own
// record successfully less than the renew deadline ago. Otherwise it returns
// an error wrapping ErrNotLeader that says why.
func (l *Lease) Held() error {
	l.mu.Lock()
	renewed := l.renewed
	l.mu.Unlock()
	if renewed.IsZero() {
		return fmt.Errorf("%w %s", ErrNotLeader, l.Describe())
	}
	if age := l.now().Sub(renewed); age >= l.validFor {
		return fmt.Errorf("%w %s any more: last renewed %s ago, past the renew deadline of %s",
			ErrNotLeader, l.Describe(), age.Round(100*time.Millisecond), l.validFor)
	}
	return nil
}

// recorders gives controller-runtime's lock constructor the lazy recorder.
type recorders struct{ r *lazyRecorder }

func (p recorders) GetEventRecorderFor(string) record.EventRecorder { return p.r }
func (p recorders) GetEventRecorder(string) recorder.EventRecorder  { return nil }

// lazyRecorder is the old-API recorder the lock wants, sending through the
// manager's events-API recorder once there is one.
type lazyRecorder struct {
	r atomic.Pointer[recorder.EventRecorder]
}

func (l *lazyRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	l.Eventf(obj, eventtype, reason, "%s", message)
}

func (l *lazyRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	if r := l.r.Load(); r != nil {
		(*r).Eventf(obj, nil, eventtype, reason, "LeaderElection", messageFmt, args...)
	}
}

func (l *lazyRecorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, eventtype, reason, messageFmt string, args ...any) {
	l.Eventf(obj, eventtype, reason, messageFmt, args...)
}
