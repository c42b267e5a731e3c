package mirror

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/store"
)

const (
	// retryBaseDelay and retryMaxDelay bound the per-object backoff after
	// a failed write. The cap is far below controller-runtime's 1000 s
	// because a mirror write fails mostly while PostgreSQL is away, and
	// the rows should catch up soon after it is back (the resync after an
	// outage catches up at once; the cap covers failures a ping does not
	// see).
	retryBaseDelay = 50 * time.Millisecond
	retryMaxDelay  = time.Minute
)

// Setup adds the mirror to mgr: a reconciler per kind (Agent,
// BackupConfig, BackupRun) that upserts the object into st or marks its
// row deleted, and a runnable that resyncs the rows with the cluster when
// the manager starts and after every PostgreSQL outage (see the package
// comment). clk stamps every row with when its object was read.
//
// Everything it adds runs only on the elected leader, like the other
// controllers: two replicas mirroring at once would be harmless (the
// upserts are idempotent and ordered) but wasteful.
func Setup(mgr ctrl.Manager, st *store.Store, clk clock.PassiveClock) error {
	_, err := setup(mgr, st, clk, defaultOptions())
	return err
}

// options are what tests may change; Setup uses defaultOptions.
type options struct {
	// newRetryLimiter makes a controller's per-object backoff after a
	// failed write (one per controller: it counts failures by name).
	newRetryLimiter func() workqueue.TypedRateLimiter[reconcile.Request]
}

func defaultOptions() options {
	return options{newRetryLimiter: func() workqueue.TypedRateLimiter[reconcile.Request] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](retryBaseDelay, retryMaxDelay)
	}}
}

// setup is Setup, returning the mirror for tests to look into.
func setup(mgr ctrl.Manager, st *store.Store, clk clock.PassiveClock, opts options) (*mirror, error) {
	m := &mirror{
		st:      st,
		clk:     clk,
		cache:   mgr.GetCache(),
		api:     mgr.GetAPIReader(),
		log:     mgr.GetLogger().WithName("mirror"),
		suspect: make(chan struct{}, 1),
	}
	m.agents = newKind("Agent", &backappv1alpha1.Agent{}, &backappv1alpha1.AgentList{},
		"agents", "deleted_at", m.upsertAgent, st.MarkAgentDeleted)
	m.configs = newKind("BackupConfig", &backappv1alpha1.BackupConfig{}, &backappv1alpha1.BackupConfigList{},
		"backup_configs", "deleted_at", m.upsertConfig, st.MarkConfigDeleted)
	m.runs = newKind("BackupRun", &backappv1alpha1.BackupRun{}, &backappv1alpha1.BackupRunList{},
		"backup_runs", "deleted_from_k8s_at", m.upsertRun, st.MarkRunDeletedFromCluster)

	for _, k := range m.kinds() {
		b := ctrl.NewControllerManagedBy(mgr).
			Named("mirror_"+k.name).
			Watches(k.newObject(), k.tombstones.handler(clk)).
			WatchesRawSource(k.requeue).
			WithOptions(controller.Options{RateLimiter: opts.newRetryLimiter()})
		// Owners and agent UIDs come from other objects: re-mirror the
		// rows that depend on one when it appears or changes.
		switch k {
		case m.configs:
			b = b.Watches(&backappv1alpha1.Agent{}, handler.EnqueueRequestsFromMapFunc(m.configsOfAgent),
				builder.WithPredicates(onCreate()))
		case m.runs:
			b = b.Watches(&backappv1alpha1.BackupConfig{}, handler.EnqueueRequestsFromMapFunc(m.runsOfConfig),
				builder.WithPredicates(onConfigOwnerChange())).
				Watches(&backappv1alpha1.Agent{}, handler.EnqueueRequestsFromMapFunc(m.runsOfAgent),
					builder.WithPredicates(onCreate()))
		}
		if err := b.Complete(&reconciler{m: m, k: k}); err != nil {
			return nil, fmt.Errorf("while setting up the %s mirror: %w", k.name, err)
		}
	}
	if err := mgr.Add(&resyncer{m: m}); err != nil {
		return nil, fmt.Errorf("while adding the mirror's resync: %w", err)
	}
	return m, nil
}

// mirror is the state shared by the reconcilers and the resync.
type mirror struct {
	st  *store.Store
	clk clock.PassiveClock
	// cache is the manager's cache: what the reconcilers mirror.
	cache client.Reader
	// api reads the API server directly. Deciding that an object is gone
	// must not trust a cache that may lag behind another writer of rows.
	api client.Reader
	log logr.Logger
	// suspect is signalled (never blocking) after a failed write, so the
	// resync can tell a PostgreSQL outage from one bad row.
	suspect chan struct{}

	agents, configs, runs *kind
}

func (m *mirror) kinds() []*kind { return []*kind{m.agents, m.configs, m.runs} }

// kind is what the shared reconcile and resync code needs of one mirrored
// kind.
type kind struct {
	name string // the lower-case kind, for logs and controller names
	gvk  schema.GroupVersionKind
	// table and deletedAt name the kind's store table and its soft-delete
	// column (constants, never input).
	table, deletedAt string

	newObject func() client.Object
	newList   func() client.ObjectList
	// upsert resolves obj's references and writes its row as observed at
	// observedAt.
	upsert      func(ctx context.Context, obj client.Object, observedAt time.Time) error
	markDeleted func(ctx context.Context, uid string, at time.Time) error

	tombstones *tombstones
	requeue    *requeuer
}

// newKind describes the BackApp kind kindName; obj and list are only used
// for their types.
func newKind(kindName string, obj client.Object, list client.ObjectList, table, deletedAt string,
	upsert func(context.Context, client.Object, time.Time) error,
	markDeleted func(context.Context, string, time.Time) error,
) *kind {
	return &kind{
		name:        strings.ToLower(kindName),
		gvk:         backappv1alpha1.GroupVersion.WithKind(kindName),
		table:       table,
		deletedAt:   deletedAt,
		newObject:   func() client.Object { return obj.DeepCopyObject().(client.Object) },
		newList:     func() client.ObjectList { return list.DeepCopyObject().(client.ObjectList) },
		upsert:      upsert,
		markDeleted: markDeleted,
		tombstones:  newTombstones(maxTombstones),
		requeue:     &requeuer{},
	}
}

// reconciler mirrors one kind: it writes the cached object's row, or marks
// the rows of objects that are gone deleted.
type reconciler struct {
	m *mirror
	k *kind
}

var _ reconcile.Reconciler = (*reconciler)(nil)

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// Deletions first: a name may have been deleted and created again, and
	// the old object's final state must not be written after (and so
	// retire) the new one.
	if err := r.buryTombstones(ctx, req.NamespacedName); err != nil {
		return reconcile.Result{}, r.m.failed(err)
	}
	obj := r.k.newObject()
	err := r.m.cache.Get(ctx, req.NamespacedName, obj)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, r.m.failed(r.retireName(ctx, req.NamespacedName))
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("while reading %s %s from the cache: %w", r.k.name, req.NamespacedName, err)
	}
	return reconcile.Result{}, r.m.failed(r.k.upsert(ctx, obj, r.m.clk.Now()))
}

// buryTombstones writes the deletions seen for key: the object's final
// state (when no other live object holds the name) and its deletion time.
func (r *reconciler) buryTombstones(ctx context.Context, key types.NamespacedName) error {
	for _, t := range r.k.tombstones.of(key) {
		if err := r.bury(ctx, key, t); err != nil {
			return err
		}
		r.k.tombstones.remove(key, t.obj.GetUID())
	}
	return nil
}

func (r *reconciler) bury(ctx context.Context, key types.NamespacedName, t tombstone) error {
	uid := string(t.obj.GetUID())
	live, err := r.m.liveUIDsNamed(ctx, r.k, key)
	if err != nil {
		return err
	}
	// Writing the final state brings the row up to date (or creates it,
	// for an object that came and went while PostgreSQL was away). But an
	// upsert retires other live rows of the same name observed before it,
	// and t.at is when the deletion was seen, not when the state was: if
	// another object already holds the name, only the deletion is written.
	if !containsOtherThan(live, uid) {
		if err := r.k.upsert(ctx, t.obj, t.at); err != nil {
			return err
		}
	}
	return ignoreNotFound(r.k.markDeleted(ctx, uid, t.at))
}

// retireName handles a request for an object the cache does not have and
// whose deletion left no tombstone (it was deleted before this process
// watched, or its tombstone was already buried): every live row of that
// name whose object the API server does not have is marked deleted.
func (r *reconciler) retireName(ctx context.Context, key types.NamespacedName) error {
	live, err := r.m.liveUIDsNamed(ctx, r.k, key)
	if err != nil || len(live) == 0 {
		return err
	}
	// Read the API server only after the rows: an object whose row was
	// there before is there now unless it was deleted.
	current, err := r.m.currentUID(ctx, r.k, key)
	if err != nil {
		return err
	}
	now := r.m.clk.Now()
	for _, uid := range live {
		if uid == current {
			continue
		}
		if err := ignoreNotFound(r.k.markDeleted(ctx, uid, now)); err != nil {
			return err
		}
		log.FromContext(ctx).Info("Marked mirrored object deleted", "kind", r.k.name, "uid", uid)
	}
	return nil
}

// failed passes err on, after telling the resync that PostgreSQL may be
// away. A row the store refuses as invalid will be refused again: it is
// logged once as a terminal error instead of being retried forever.
func (m *mirror) failed(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrInvalid) {
		return reconcile.TerminalError(err)
	}
	select {
	case m.suspect <- struct{}{}:
	default:
	}
	return err
}

// getCached reads key from the cache into obj; false if it is not there.
func (m *mirror) getCached(ctx context.Context, key types.NamespacedName, obj client.Object) (bool, error) {
	err := m.cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("while reading %T %s from the cache: %w", obj, key, err)
	}
	return true, nil
}

func (m *mirror) upsertAgent(ctx context.Context, obj client.Object, observedAt time.Time) error {
	return m.st.UpsertAgent(ctx, agentRow(obj.(*backappv1alpha1.Agent), observedAt))
}

func (m *mirror) upsertConfig(ctx context.Context, obj client.Object, observedAt time.Time) error {
	c := obj.(*backappv1alpha1.BackupConfig)
	rf, err := m.configRefs(ctx, c)
	if err != nil {
		return err
	}
	row, err := configRow(c, rf, observedAt)
	if err != nil {
		return err
	}
	return m.st.UpsertConfig(ctx, row)
}

func (m *mirror) upsertRun(ctx context.Context, obj client.Object, observedAt time.Time) error {
	r := obj.(*backappv1alpha1.BackupRun)
	rf, err := m.runRefs(ctx, r)
	if err != nil {
		return err
	}
	return m.st.UpsertRun(ctx, runRow(r, rf, observedAt))
}

// configRefs resolves c's owner and agent (see the package comment).
func (m *mirror) configRefs(ctx context.Context, c *backappv1alpha1.BackupConfig) (refs, error) {
	if !isAgentMode(c) {
		return refs{owner: serverOwner(c)}, nil
	}
	if c.Spec.AgentRef == nil {
		return refs{}, nil // the CRD refuses this; nothing to resolve
	}
	var a backappv1alpha1.Agent
	found, err := m.getCached(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.AgentRef.Name}, &a)
	if err != nil {
		return refs{}, err
	}
	if found {
		return refs{owner: a.Spec.Owner, agentUID: string(a.UID)}, nil
	}
	// The agent is gone (or not there yet): keep what was known of it.
	stored, err := m.st.GetConfig(ctx, string(c.UID))
	if errors.Is(err, store.ErrNotFound) || (err == nil && stored.AgentName != c.Spec.AgentRef.Name) {
		return refs{}, nil
	}
	if err != nil {
		return refs{}, err
	}
	return refs{owner: stored.Owner, agentUID: stored.AgentUID}, nil
}

// runRefs resolves r's config, owner and agent (see the package comment).
func (m *mirror) runRefs(ctx context.Context, r *backappv1alpha1.BackupRun) (refs, error) {
	out := refs{configUID: configUIDOf(r)}
	var ownerKnown, agentKnown bool

	var c backappv1alpha1.BackupConfig
	found, err := m.getCached(ctx, types.NamespacedName{Namespace: r.Namespace, Name: r.Spec.ConfigRef.Name}, &c)
	if err != nil {
		return refs{}, err
	}
	// A config of that name with another UID replaced r's config.
	if found && (out.configUID == "" || out.configUID == string(c.UID)) {
		cr, err := m.configRefs(ctx, &c)
		if err != nil {
			return refs{}, err
		}
		out.configUID, out.owner, out.agentUID = string(c.UID), cr.owner, cr.agentUID
		ownerKnown, agentKnown = cr.owner != "", !isAgentMode(&c) || cr.agentUID != ""
	}
	if name := r.Status.ClaimedBy; name != "" {
		var a backappv1alpha1.Agent
		found, err := m.getCached(ctx, types.NamespacedName{Namespace: r.Namespace, Name: name}, &a)
		if err != nil {
			return refs{}, err
		}
		out.agentUID, agentKnown = string(a.UID), found
	}
	if ownerKnown && agentKnown && out.configUID != "" {
		return out, nil
	}

	// Something the row refers to is gone from the cluster: keep what the
	// run's row says, else what its config's row says.
	fill := func(owner, agentUID, configUID string) {
		if !ownerKnown && owner != "" {
			out.owner, ownerKnown = owner, true
		}
		if !agentKnown && agentUID != "" {
			out.agentUID, agentKnown = agentUID, true
		}
		if out.configUID == "" {
			out.configUID = configUID
		}
	}
	stored, err := m.st.GetRun(ctx, string(r.UID))
	switch {
	case err == nil:
		fill(stored.Owner, stored.AgentUID, stored.ConfigUID)
	case !errors.Is(err, store.ErrNotFound):
		return refs{}, err
	}
	if (ownerKnown && agentKnown) || out.configUID == "" {
		return out, nil
	}
	storedConfig, err := m.st.GetConfig(ctx, out.configUID)
	switch {
	case err == nil:
		fill(storedConfig.Owner, storedConfig.AgentUID, "")
	case !errors.Is(err, store.ErrNotFound):
		return refs{}, err
	}
	return out, nil
}

func containsOtherThan(uids []string, uid string) bool {
	for _, u := range uids {
		if u != uid {
			return true
		}
	}
	return false
}

// ignoreNotFound drops store.ErrNotFound: marking a row that was never
// written deleted has nothing to do.
func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
