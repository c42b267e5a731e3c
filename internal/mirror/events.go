package mirror

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// maxTombstones bounds the deletions held in memory per kind while they
// cannot be written (a long PostgreSQL outage in a busy cluster). Past it a
// deletion is still found, by name or by the resync, as long as its object
// was mirrored once; only the final state of an object that was never
// mirrored is lost.
const maxTombstones = 10000

// tombstone is an object the watch saw deleted.
type tombstone struct {
	obj client.Object // its last state as the watch saw it
	at  time.Time     // when the deletion was seen
}

// tombstones holds the deletions of one kind until the reconciler has
// written them. Safe for concurrent use: the watch adds, workers remove.
type tombstones struct {
	mu    sync.Mutex
	max   int
	count int
	byKey map[types.NamespacedName][]tombstone
}

func newTombstones(limit int) *tombstones {
	return &tombstones{max: limit, byKey: map[types.NamespacedName][]tombstone{}}
}

// add records that obj was deleted at at; false if the limit is reached.
func (t *tombstones) add(obj client.Object, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	list := t.byKey[key]
	for i := range list {
		if list[i].obj.GetUID() == obj.GetUID() {
			list[i] = tombstone{obj: obj, at: at}
			return true
		}
	}
	if t.count >= t.max {
		return false
	}
	t.byKey[key] = append(list, tombstone{obj: obj, at: at})
	t.count++
	return true
}

// of returns the deletions recorded for key, oldest first.
func (t *tombstones) of(key types.NamespacedName) []tombstone {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]tombstone(nil), t.byKey[key]...)
}

// remove forgets the deletion of the object uid named key.
func (t *tombstones) remove(key types.NamespacedName, uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.byKey[key]
	for i := range list {
		if list[i].obj.GetUID() == uid {
			list = append(list[:i], list[i+1:]...)
			t.count--
			break
		}
	}
	if len(list) == 0 {
		delete(t.byKey, key)
	} else {
		t.byKey[key] = list
	}
}

// all returns every deletion held.
func (t *tombstones) all() []tombstone {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]tombstone, 0, t.count)
	for _, list := range t.byKey {
		out = append(out, list...)
	}
	return out
}

// handler queues the object of every event, recording a deletion before
// queueing it so the reconciler always finds it. (Two watches on the kind,
// one queueing and one recording, would race.)
func (t *tombstones) handler(clk clock.PassiveClock) handler.EventHandler {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj client.Object) {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !t.add(e.Object, clk.Now()) {
				log.FromContext(ctx).Info("Too many deletions waiting to be mirrored; this one is kept only if its object was mirrored before",
					"namespace", e.Object.GetNamespace(), "name", e.Object.GetName(), "uid", e.Object.GetUID())
			}
			enqueue(q, e.Object)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
	}
}

// requeuer is a source through which the resync queues objects again. A
// plain Add makes an object due at once, even one waiting out a long
// backoff after failed writes.
type requeuer struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

var _ source.Source = (*requeuer)(nil)

// Start is called by the controller with its queue.
func (r *requeuer) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.q = q
	return nil
}

// add queues reqs. Before the controller has started there is nothing to
// do: its first list queues every object anyway.
func (r *requeuer) add(reqs []reconcile.Request) {
	r.mu.Lock()
	q := r.q
	r.mu.Unlock()
	if q == nil {
		return
	}
	for _, req := range reqs {
		q.Add(req)
	}
}

// onCreate passes only creations: an Agent's owner and UID, which configs
// and runs copy, never change afterwards. (Deletions need nothing: the
// rows keep what they had.)
func onCreate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// onConfigOwnerChange passes config creations and the updates that may
// change what its runs copy from it: spec changes (mode, agent) and the
// owner annotation or label. Not status updates, which are frequent.
func onConfigOwnerChange() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				o.GetAnnotations()[OwnerKey] != n.GetAnnotations()[OwnerKey] ||
				o.GetLabels()[OwnerKey] != n.GetLabels()[OwnerKey]
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// configsOfAgent maps an Agent to the configs that name it.
func (m *mirror) configsOfAgent(ctx context.Context, agent client.Object) []reconcile.Request {
	var configs backappv1alpha1.BackupConfigList
	if err := m.cache.List(ctx, &configs, client.InNamespace(agent.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "Listing the configs of an agent failed; their owner catches up on their next change")
		return nil
	}
	var reqs []reconcile.Request
	for i := range configs.Items {
		c := &configs.Items[i]
		if c.Spec.AgentRef != nil && c.Spec.AgentRef.Name == agent.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(c)})
		}
	}
	return reqs
}

// runsOfConfig maps a BackupConfig to its runs.
func (m *mirror) runsOfConfig(ctx context.Context, config client.Object) []reconcile.Request {
	return m.runsWhere(ctx, config.GetNamespace(), func(r *backappv1alpha1.BackupRun) bool {
		return r.Spec.ConfigRef.Name == config.GetName()
	})
}

// runsOfAgent maps an Agent to the runs it claimed and the runs of the
// configs that name it.
func (m *mirror) runsOfAgent(ctx context.Context, agent client.Object) []reconcile.Request {
	configs := map[string]bool{}
	for _, req := range m.configsOfAgent(ctx, agent) {
		configs[req.Name] = true
	}
	return m.runsWhere(ctx, agent.GetNamespace(), func(r *backappv1alpha1.BackupRun) bool {
		return r.Status.ClaimedBy == agent.GetName() || configs[r.Spec.ConfigRef.Name]
	})
}

func (m *mirror) runsWhere(ctx context.Context, namespace string, match func(*backappv1alpha1.BackupRun) bool) []reconcile.Request {
	var runs backappv1alpha1.BackupRunList
	if err := m.cache.List(ctx, &runs, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "Listing runs failed; their owner catches up on their next change")
		return nil
	}
	var reqs []reconcile.Request
	for i := range runs.Items {
		if match(&runs.Items[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&runs.Items[i])})
		}
	}
	return reqs
}
