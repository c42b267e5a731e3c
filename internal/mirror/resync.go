package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	// pingTimeout bounds one check that PostgreSQL answers.
	pingTimeout = 5 * time.Second
	// resyncMinDelay and resyncMaxDelay bound the wait between attempts
	// while PostgreSQL is away: one ping every few seconds costs nothing,
	// and the rows catch up at most resyncMaxDelay after it is back.
	resyncMinDelay = 200 * time.Millisecond
	resyncMaxDelay = 5 * time.Second
	// apiListPageSize keeps each list of the API server small.
	apiListPageSize = 500
)

// resyncer runs the resync pass when the manager starts and after every
// PostgreSQL outage (see the package comment).
type resyncer struct {
	m *mirror
}

var (
	_ manager.Runnable               = (*resyncer)(nil)
	_ manager.LeaderElectionRunnable = (*resyncer)(nil)
)

// NeedLeaderElection is true: only the leader's mirror writes.
func (r *resyncer) NeedLeaderElection() bool { return true }

// Start resyncs, then waits for failed writes and, when one came from an
// outage, resyncs again once PostgreSQL is back. It returns when ctx ends.
func (r *resyncer) Start(ctx context.Context) error {
	r.untilResynced(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.m.suspect:
		}
		err := r.m.ping(ctx)
		switch {
		case err == nil:
			// One object's trouble, not an outage: its own retries handle it.
			continue
		case ctx.Err() != nil:
			// Stopping; the failed ping says nothing about PostgreSQL.
			continue
		}
		r.m.log.Info("PostgreSQL is unreachable; the mirror resyncs when it answers again", "error", err.Error())
		r.untilResynced(ctx)
	}
}

// untilResynced retries, with backoff, until PostgreSQL answers and a full
// resync pass succeeded, or ctx ends.
func (r *resyncer) untilResynced(ctx context.Context) {
	delay := resyncMinDelay
	for {
		err := r.m.ping(ctx)
		if err == nil {
			err = r.m.resync(ctx)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		r.m.log.Info("Mirror resync failed; retrying", "error", err.Error(), "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, resyncMaxDelay)
	}
}

func (m *mirror) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := m.st.Pool().Ping(ctx); err != nil {
		return fmt.Errorf("while pinging PostgreSQL: %w", err)
	}
	return nil
}

// resync marks the rows of objects the cluster no longer has deleted and
// queues every cached object for an upsert, kind by kind.
func (m *mirror) resync(ctx context.Context) error {
	var marked, queued int
	for _, k := range m.kinds() {
		n, q, err := m.resyncKind(ctx, k)
		if err != nil {
			return fmt.Errorf("while resyncing the %s mirror: %w", k.name, err)
		}
		marked, queued = marked+n, queued+q
	}
	m.log.Info("Resynced the mirror with the cluster", "markedDeleted", marked, "queued", queued)
	return nil
}

func (m *mirror) resyncKind(ctx context.Context, k *kind) (marked, queued int, err error) {
	// The rows first, the cluster after: an object whose row was live when
	// it was read and that the cluster lacks afterwards was deleted.
	live, err := m.liveRows(ctx, k)
	if err != nil {
		return 0, 0, err
	}
	list := k.newList()
	if err := m.cache.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, fmt.Errorf("while listing %ss from the cache: %w", k.name, err)
	}
	cached := map[string]bool{}
	var reqs []reconcile.Request
	if err := meta.EachListItem(list, func(o runtime.Object) error {
		obj := o.(client.Object)
		cached[string(obj.GetUID())] = true
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("while reading the cached %ss: %w", k.name, err)
	}
	// Deletions the watch saw are left to the reconciler, which writes the
	// final state and the time the deletion was seen.
	buried := map[string]bool{}
	for _, t := range k.tombstones.all() {
		buried[string(t.obj.GetUID())] = true
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(t.obj)})
	}

	missing := map[string][]string{} // namespace -> UIDs the cache lacks
	for _, row := range live {
		if !cached[row.uid] && !buried[row.uid] {
			missing[row.namespace] = append(missing[row.namespace], row.uid)
		}
	}
	now := m.clk.Now()
	for ns, uids := range missing {
		present, err := m.currentUIDs(ctx, k, ns)
		if apierrors.IsForbidden(err) {
			m.log.Info("Not allowed to list a namespace with mirrored rows; leaving its rows alone", "kind", k.name, "namespace", ns)
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		for _, uid := range uids {
			if present[uid] {
				continue // the cache has not caught up with it yet
			}
			if err := ignoreNotFound(k.markDeleted(ctx, uid, now)); err != nil {
				return 0, 0, err
			}
			marked++
		}
	}
	k.requeue.add(reqs)
	return marked, len(reqs), nil
}

// liveRow is a row not marked deleted.
type liveRow struct {
	uid, namespace string
}

// liveRows reads the live rows of kind k. The store has no query for this
// (nor for liveUIDsNamed); its Pool is there for packages that run their
// own queries on its tables.
func (m *mirror) liveRows(ctx context.Context, k *kind) ([]liveRow, error) {
	rows, err := m.st.Pool().Query(ctx, `SELECT uid::text, namespace FROM `+k.table+` WHERE `+k.deletedAt+` IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("while reading the live %s rows: %w", k.name, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (liveRow, error) {
		var r liveRow
		err := row.Scan(&r.uid, &r.namespace)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("while reading the live %s rows: %w", k.name, err)
	}
	return out, nil
}

// liveUIDsNamed returns the UIDs of the live rows of kind k named key: at
// most one, unless a row is being replaced.
func (m *mirror) liveUIDsNamed(ctx context.Context, k *kind, key types.NamespacedName) ([]string, error) {
	rows, err := m.st.Pool().Query(ctx, `SELECT uid::text FROM `+k.table+`
		WHERE namespace = $1 AND name = $2 AND `+k.deletedAt+` IS NULL`, key.Namespace, key.Name)
	if err != nil {
		return nil, fmt.Errorf("while reading the live %s rows named %s: %w", k.name, key, err)
	}
	uids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("while reading the live %s rows named %s: %w", k.name, key, err)
	}
	return uids, nil
}

// currentUID asks the API server for the UID of the object of kind k named
// key; "" if there is none.
func (m *mirror) currentUID(ctx context.Context, k *kind, key types.NamespacedName) (string, error) {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(k.gvk)
	err := m.api.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("while reading %s %s from the API server: %w", k.name, key, err)
	}
	return string(obj.UID), nil
}

// currentUIDs asks the API server for the UIDs of the objects of kind k in
// namespace; only their metadata is fetched.
func (m *mirror) currentUIDs(ctx context.Context, k *kind, namespace string) (map[string]bool, error) {
	uids := map[string]bool{}
	cont := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(k.gvk.GroupVersion().WithKind(k.gvk.Kind + "List"))
		if err := m.api.List(ctx, list, client.InNamespace(namespace), client.Limit(apiListPageSize), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("while listing %ss in namespace %s from the API server: %w", k.name, namespace, err)
		}
		for _, item := range list.Items {
			uids[string(item.UID)] = true
		}
		if cont = list.Continue; cont == "" {
			return uids, nil
		}
	}
}
