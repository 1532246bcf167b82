package leader

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// Fence returns c with held called before every write (create, update,
// patch, apply, delete, of objects and of their subresources): a write is
// refused with held's error. Reads pass. The check and the request are not
// atomic, so a replica paused right between them can still write once; the
// fence closes the renew deadline's window, not that instant.
func Fence(c client.Client, held func() error) client.Client {
	return &fencedClient{Client: c, held: held}
}

type fencedClient struct {
	client.Client
	held func() error
}

func (f *fencedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.Client.Create(ctx, obj, opts...)
}

func (f *fencedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.Client.Update(ctx, obj, opts...)
}

func (f *fencedClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.Client.Patch(ctx, obj, patch, opts...)
}

func (f *fencedClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.Client.Apply(ctx, obj, opts...)
}

func (f *fencedClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.Client.Delete(ctx, obj, opts...)
}

func (f *fencedClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.Client.DeleteAllOf(ctx, obj, opts...)
}

func (f *fencedClient) Status() client.SubResourceWriter {
	return &fencedWriter{w: f.Client.Status(), held: f.held}
}

func (f *fencedClient) SubResource(subResource string) client.SubResourceClient {
	c := f.Client.SubResource(subResource)
	return fencedSubResource{SubResourceReader: c, fencedWriter: &fencedWriter{w: c, held: f.held}}
}

type fencedSubResource struct {
	client.SubResourceReader
	*fencedWriter
}

// fencedWriter fences the writes of a subresource, status included.
type fencedWriter struct {
	w    client.SubResourceWriter
	held func() error
}

func (f *fencedWriter) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.w.Create(ctx, obj, sub, opts...)
}

func (f *fencedWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.w.Update(ctx, obj, opts...)
}

func (f *fencedWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.w.Patch(ctx, obj, patch, opts...)
}

func (f *fencedWriter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	if err := f.held(); err != nil {
		return err
	}
	return f.w.Apply(ctx, obj, opts...)
}

// FenceRecorder returns r dropping every Event while held fails: a replica
// that lost the lease does not announce a freeze it cannot write.
func FenceRecorder(r recorder.EventRecorder, held func() error) recorder.EventRecorder {
	return &fencedRecorder{r: r, held: held}
}

type fencedRecorder struct {
	r    recorder.EventRecorder
	held func() error
}

func (f *fencedRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if f.held() == nil {
		f.r.Eventf(regarding, related, eventtype, reason, action, note, args...)
	}
}

func (f *fencedRecorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string,
	eventtype, reason, action, note string, args ...any) {
	if f.held() == nil {
		f.r.AnnotatedEventf(regarding, related, annotations, eventtype, reason, action, note, args...)
	}
}
