package webapp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/destination"
	"github.com/backapp/backapp/internal/index"
	"github.com/backapp/backapp/internal/objstore"
)

// LabelConfig on a BackupRun names its BackupConfig, for kubectl -l.
const LabelConfig = "backapp.io/config"

// validator is implemented by every agent API request.
type validator interface{ Validate() error }

// decode reads a JSON request body strictly (size limit, no unknown
// fields, one value) and validates it.
func decode[T any, PT interface {
	*T
	validator
}](r *http.Request, limit int64, v PT) error {
	if err := agentapi.Decode(r.Body, limit, (*T)(v)); err != nil {
		return err
	}
	return v.Validate()
}

func (s *Server) now() metav1.Time {
	return metav1.NewTime(s.cfg.Clock.Now().UTC().Truncate(time.Second))
}

// --- heartbeat ---------------------------------------------------------

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	agent := agentFrom(r.Context())
	var req agentapi.HeartbeatRequest
	if err := decode(r, agentapi.MaxHeartbeatBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	info := agentInfo{Version: req.Version, Platform: req.Platform, Arch: req.Arch, Hostname: req.Hostname}
	now := s.cfg.Clock.Now()
	st := agent.Status
	online := st.Phase == backappv1alpha1.AgentOnline && st.Version == info.Version &&
		st.Platform == info.Platform && st.Arch == info.Arch && st.Hostname == info.Hostname
	if s.liveness.seen(agent.UID, info, now, online, s.cfg.StatusWriteInterval) {
		if err := s.writeAgentOnline(r.Context(), agent, info); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.liveness.wrote(agent.UID, info, now)
	}
	writeJSON(w, http.StatusOK, agentapi.HeartbeatResponse{
		Status:              agentapi.AgentStatusOnline,
		PollIntervalSeconds: agent.Spec.PollIntervalSeconds,
		ServerTime:          now.UTC(),
	})
}

// writeAgentOnline patches Agent status: Online, lastSeen and the machine.
func (s *Server) writeAgentOnline(ctx context.Context, cached *backappv1alpha1.Agent, info agentInfo) error {
	agent := cached.DeepCopy()
	orig := agent.DeepCopy()
	now := s.now()
	agent.Status.Phase = backappv1alpha1.AgentOnline
	agent.Status.LastSeen = &now
	agent.Status.Version, agent.Status.Platform = info.Version, info.Platform
	agent.Status.Arch, agent.Status.Hostname = info.Arch, info.Hostname
	agent.Status.ObservedGeneration = agent.Generation
	meta.SetStatusCondition(&agent.Status.Conditions, metav1.Condition{
		Type: backappv1alpha1.ConditionOnline, Status: metav1.ConditionTrue,
		Reason: backappv1alpha1.ReasonHeartbeatReceived, Message: "heartbeats arrive",
		ObservedGeneration: agent.Generation,
	})
	if err := s.writer.Status().Patch(ctx, agent, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("while recording the heartbeat of agent %s: %w", agent.Name, err)
	}
	return nil
}

// --- configs and runs --------------------------------------------------

// configsOf lists the Agent-mode configs assigned to agent.
func (s *Server) configsOf(ctx context.Context, agent *backappv1alpha1.Agent) ([]backappv1alpha1.BackupConfig, error) {
	var list backappv1alpha1.BackupConfigList
	if err := s.cached.List(ctx, &list, client.InNamespace(s.cfg.Namespace),
		client.MatchingFields{index.ConfigAgent: agent.Name}); err != nil {
		return nil, fmt.Errorf("while listing the configs of agent %s: %w", agent.Name, err)
	}
	out := list.Items[:0]
	for _, c := range list.Items {
		if c.Spec.ExecutionMode == backappv1alpha1.ExecutionModeAgent && c.DeletionTimestamp == nil {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b backappv1alpha1.BackupConfig) int { return compareStrings(a.Name, b.Name) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var errNoSuchConfig = agentapi.NewError(agentapi.CodeNotFound, "no such config for this agent")

// configOf returns the config named id if it is assigned to agent. Another
// agent's config is reported exactly like a missing one.
func (s *Server) configOf(ctx context.Context, agent *backappv1alpha1.Agent, id string) (*backappv1alpha1.BackupConfig, error) {
	var cfg backappv1alpha1.BackupConfig
	err := s.cached.Get(ctx, types.NamespacedName{Namespace: s.cfg.Namespace, Name: id}, &cfg)
	if apierrors.IsNotFound(err) {
		return nil, errNoSuchConfig
	}
	if err != nil {
		return nil, fmt.Errorf("while reading config %s: %w", id, err)
	}
	if cfg.Spec.ExecutionMode != backappv1alpha1.ExecutionModeAgent || cfg.Spec.AgentRef == nil ||
		cfg.Spec.AgentRef.Name != agent.Name || cfg.DeletionTimestamp != nil {
		return nil, errNoSuchConfig
	}
	return &cfg, nil
}

var errNoSuchRun = agentapi.NewError(agentapi.CodeNotFound, "no such run for this agent")

// runOf reads run id from the apiserver (not the cache: it may have been
// written a moment ago) and returns it with its config if that config is
// assigned to agent.
func (s *Server) runOf(ctx context.Context, agent *backappv1alpha1.Agent, id string) (*backappv1alpha1.BackupRun, *backappv1alpha1.BackupConfig, error) {
	var run backappv1alpha1.BackupRun
	err := s.direct.Get(ctx, types.NamespacedName{Namespace: s.cfg.Namespace, Name: id}, &run)
	if apierrors.IsNotFound(err) {
		return nil, nil, errNoSuchRun
	}
	if err != nil {
		return nil, nil, fmt.Errorf("while reading run %s: %w", id, err)
	}
	cfg, err := s.configOf(ctx, agent, run.Spec.ConfigRef.Name)
	if errors.Is(err, errNoSuchConfig) {
		return nil, nil, errNoSuchRun
	}
	if err != nil {
		return nil, nil, err
	}
	if run.Status.ClaimedBy != "" && run.Status.ClaimedBy != agent.Name {
		return nil, nil, errNoSuchRun
	}
	return &run, cfg, nil
}

func (s *Server) handleConfigs(w http.ResponseWriter, r *http.Request) {
	configs, err := s.configsOf(r.Context(), agentFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := agentapi.ConfigsResponse{Configs: make([]agentapi.AgentConfig, 0, len(configs))}
	for i := range configs {
		resp.Configs = append(resp.Configs, toAgentConfig(&configs[i]))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	configs, err := s.configsOf(ctx, agentFrom(ctx))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := agentapi.RunsResponse{Runs: []agentapi.DueRun{}}
	for _, cfg := range configs {
		var runs backappv1alpha1.BackupRunList
		if err := s.cached.List(ctx, &runs, client.InNamespace(s.cfg.Namespace),
			client.MatchingFields{index.RunConfig: cfg.Name}); err != nil {
			s.writeError(w, r, fmt.Errorf("while listing the runs of config %s: %w", cfg.Name, err))
			return
		}
		for _, run := range runs.Items {
			if !isDue(&run) {
				continue
			}
			due := agentapi.DueRun{RunID: run.Name, ConfigID: cfg.Name, Trigger: toWireTrigger(run.Spec.Trigger)}
			if run.Spec.ScheduledTime != nil {
				due.ScheduledTime = run.Spec.ScheduledTime.UTC()
			}
			resp.Runs = append(resp.Runs, due)
		}
	}
	slices.SortStableFunc(resp.Runs, func(a, b agentapi.DueRun) int { return a.ScheduledTime.Compare(b.ScheduledTime) })
	writeJSON(w, http.StatusOK, resp)
}

// isDue: waiting for an agent, not cancelled.
func isDue(run *backappv1alpha1.BackupRun) bool {
	return (run.Status.Phase == "" || run.Status.Phase == backappv1alpha1.RunPending) &&
		!isCancelled(run) && run.DeletionTimestamp == nil
}

func isCancelled(run *backappv1alpha1.BackupRun) bool {
	return run.Spec.Cancel || run.Annotations[backappv1alpha1.AnnotationCancel] != ""
}

// --- backup/start ------------------------------------------------------

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	agent := agentFrom(ctx)
	var req agentapi.StartRequest
	if err := decode(r, agentapi.MaxBackupStartBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var (
		run *backappv1alpha1.BackupRun
		cfg *backappv1alpha1.BackupConfig
		err error
	)
	if req.RunID != "" {
		run, cfg, err = s.runOf(ctx, agent, req.RunID)
	} else {
		cfg, err = s.configOf(ctx, agent, req.ConfigID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The destination first: a broken one must not leave a run behind.
	st, err := s.storeFor(ctx, cfg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if run == nil {
		if run, err = s.createAgentRun(ctx, cfg); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.claim(ctx, agent, cfg, run, st); err != nil {
		s.writeError(w, r, err)
		return
	}
	partSize := objstore.PartSize(req.SizeHint)
	n := min(s.cfg.FirstPartBatch, agentapi.MaxPartsPerRequest)
	numbers := make([]int, n)
	for i := range numbers {
		numbers[i] = i + 1
	}
	parts, expires, err := s.presignParts(ctx, st, run, numbers)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, agentapi.StartResponse{
		RunID:     run.Name,
		Key:       run.Status.Object.Key,
		Mode:      agentapi.UploadMultipart,
		PartSize:  partSize,
		Parts:     parts,
		ExpiresAt: expires,
	})
}

// createAgentRun creates a run the agent asked for by config, owned by the
// config like scheduled runs.
func (s *Server) createAgentRun(ctx context.Context, cfg *backappv1alpha1.BackupConfig) (*backappv1alpha1.BackupRun, error) {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	run := &backappv1alpha1.BackupRun{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cfg.Namespace,
			Name:      cfg.AgentRunName(hex.EncodeToString(token)),
			Labels:    map[string]string{LabelConfig: cfg.Name},
		},
		Spec: backappv1alpha1.BackupRunSpec{
			ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name},
			Trigger:   backappv1alpha1.TriggerAgent,
		},
	}
	if err := controllerutil.SetControllerReference(cfg, run, s.writer.Scheme()); err != nil {
		return nil, fmt.Errorf("while owning the run by config %s: %w", cfg.Name, err)
	}
	if err := s.writer.Create(ctx, run); err != nil {
		return nil, fmt.Errorf("while creating a run of config %s: %w", cfg.Name, err)
	}
	return run, nil
}

// claim makes run Running for agent with an open multipart upload. Starting
// a run this agent already claimed returns it unchanged (the agent may have
// lost the first response). The status update carries the resourceVersion
// read, so two agents (or a retry and the manager) cannot both claim it.
func (s *Server) claim(ctx context.Context, agent *backappv1alpha1.Agent, cfg *backappv1alpha1.BackupConfig,
	run *backappv1alpha1.BackupRun, st *objstore.Store) error {
	switch {
	case isCancelled(run):
		return agentapi.NewError(agentapi.CodeConflict, "run %s was cancelled", run.Name)
	case run.Status.Phase == backappv1alpha1.RunRunning && run.Status.ClaimedBy == agent.Name && run.Status.UploadID != "":
		return nil
	case run.Status.Phase != "" && run.Status.Phase != backappv1alpha1.RunPending:
		return agentapi.NewError(agentapi.CodeConflict, "run %s is %s, not Pending", run.Name, run.Status.Phase)
	}
	key, err := objstore.ArchiveKey(cfg.Spec.Destination.Prefix, agent.Spec.Owner, string(agent.UID), string(cfg.UID),
		s.cfg.Clock.Now(), destination.ArchiveExt(cfg.Spec.Options))
	if err != nil {
		return fmt.Errorf("while naming the archive of run %s: %w", run.Name, err)
	}
	uploadID, err := st.CreateUpload(ctx, key)
	if err != nil {
		return fmt.Errorf("while starting the upload of run %s: %w", run.Name, err)
	}
	now := s.now()
	run.Status.Phase = backappv1alpha1.RunRunning
	run.Status.ClaimedBy = agent.Name
	run.Status.StartTime = &now
	run.Status.LastProgressTime = &now
	run.Status.Object = &backappv1alpha1.StoredObject{Bucket: st.Bucket(), Key: key}
	run.Status.UploadID = uploadID
	run.Status.Message = "running on agent " + agent.Name
	run.Status.ObservedGeneration = run.Generation
	if err := s.writer.Status().Update(ctx, run); err != nil {
		_ = st.Abort(context.WithoutCancel(ctx), key, uploadID)
		if apierrors.IsConflict(err) {
			return agentapi.NewError(agentapi.CodeConflict, "run %s changed while starting; retry", run.Name)
		}
		return fmt.Errorf("while marking run %s Running: %w", run.Name, err)
	}
	return nil
}

// --- backup/parts ------------------------------------------------------

// runningRun returns the agent's run id if it is Running with an open
// upload, with the store of its destination.
func (s *Server) runningRun(ctx context.Context, agent *backappv1alpha1.Agent, id string) (*backappv1alpha1.BackupRun, *backappv1alpha1.BackupConfig, *objstore.Store, error) {
	run, cfg, err := s.runOf(ctx, agent, id)
	if err != nil {
		return nil, nil, nil, err
	}
	if run.Status.Phase != backappv1alpha1.RunRunning || run.Status.ClaimedBy != agent.Name ||
		run.Status.UploadID == "" || run.Status.Object == nil {
		return nil, nil, nil, agentapi.NewError(agentapi.CodeConflict, "run %s is not running on this agent", run.Name)
	}
	st, err := s.storeFor(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return run, cfg, st, nil
}

func (s *Server) handleParts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req agentapi.PartsRequest
	if err := decode(r, agentapi.MaxBackupPartsBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	run, _, st, err := s.runningRun(ctx, agentFrom(ctx), req.RunID)
	if err == nil && isCancelled(run) {
		err = agentapi.NewError(agentapi.CodeConflict, "run %s was cancelled", run.Name)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	parts, expires, err := s.presignParts(ctx, st, run, req.PartNumbers)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, agentapi.PartsResponse{RunID: run.Name, Parts: parts, ExpiresAt: expires})
}

func (s *Server) presignParts(ctx context.Context, st *objstore.Store, run *backappv1alpha1.BackupRun, numbers []int) ([]agentapi.PartURL, time.Time, error) {
	parts := make([]agentapi.PartURL, 0, len(numbers))
	var expires time.Time
	for _, n := range numbers {
		u, err := st.PresignPart(ctx, run.Status.Object.Key, run.Status.UploadID, int32(n), s.cfg.PartURLTTL)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("while pre-signing part %d of run %s: %w", n, run.Name, err)
		}
		parts = append(parts, agentapi.PartURL{PartNumber: n, URL: agentapi.PresignedURL(u.URL)})
		expires = u.Expires
	}
	return parts, expires.UTC(), nil
}

// --- backup/progress ---------------------------------------------------

func (s *Server) handleProgress(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	agent := agentFrom(ctx)
	var req agentapi.ProgressRequest
	if err := decode(r, agentapi.MaxBackupProgressBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	run, _, err := s.runOf(ctx, agent, req.RunID)
	if err == nil && (run.Status.Phase != backappv1alpha1.RunRunning || run.Status.ClaimedBy != agent.Name) {
		err = agentapi.NewError(agentapi.CodeConflict, "run %s is not running on this agent", run.Name)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key := client.ObjectKeyFromObject(run)
	if !isCancelled(run) && s.progress.due(key, s.cfg.Clock.Now(), s.cfg.ProgressWriteInterval) {
		orig := run.DeepCopy()
		now := s.now()
		run.Status.FilesProcessed, run.Status.FilesSkipped = req.FilesProcessed, req.FilesSkipped
		run.Status.BytesTotal, run.Status.BytesTransferred = req.BytesTotal, req.BytesTransferred
		run.Status.Progress = req.Progress
		run.Status.LastProgressTime = &now
		if err := s.writer.Status().Patch(ctx, run, client.MergeFrom(orig)); err != nil {
			s.writeError(w, r, fmt.Errorf("while recording the progress of run %s: %w", run.Name, err))
			return
		}
	}
	writeJSON(w, http.StatusOK, agentapi.ProgressResponse{Cancel: isCancelled(run)})
}

// --- backup/complete ---------------------------------------------------

func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	agent := agentFrom(ctx)
	var req agentapi.CompleteRequest
	if err := decode(r, agentapi.MaxBackupCompleteBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	run, cfg, err := s.runOf(ctx, agent, req.RunID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A repeated complete (the agent lost the answer) gets the same answer.
	if run.Status.Phase == backappv1alpha1.RunSucceeded && run.Status.Object != nil &&
		run.Status.Object.SHA256 == req.SHA256 && run.Status.Object.Size == req.Size {
		writeJSON(w, http.StatusOK, agentapi.CompleteResponse{RunID: run.Name, Phase: agentapi.RunSucceeded, Message: run.Status.Message})
		return
	}
	if run.Status.Phase != backappv1alpha1.RunRunning || run.Status.ClaimedBy != agent.Name || run.Status.UploadID == "" {
		s.writeError(w, r, agentapi.NewError(agentapi.CodeConflict, "run %s is not running on this agent", run.Name))
		return
	}
	st, err := s.storeFor(ctx, cfg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recordCounts(run, &req)

	if req.Status == agentapi.CompleteFailed {
		msg := "the agent reported a failure: " + req.Message
		if err := s.finish(ctx, st, run, backappv1alpha1.RunFailed, backappv1alpha1.ReasonUploadFailed, msg); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, agentapi.CompleteResponse{RunID: run.Name, Phase: agentapi.RunFailed, Message: msg})
		return
	}

	parts := make([]objstore.CompletedPart, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = objstore.CompletedPart{Number: int32(p.PartNumber), ETag: p.ETag}
	}
	info, err := st.Complete(ctx, run.Status.Object.Key, run.Status.UploadID, parts, req.Size)
	if err != nil {
		code, reason := agentapi.CodeUploadFailed, backappv1alpha1.ReasonUploadFailed
		msg := "object storage refused to complete the upload (a part is missing or its ETag is wrong)"
		if errors.Is(err, objstore.ErrVerification) {
			code, reason = agentapi.CodeVerificationFailed, backappv1alpha1.ReasonSizeMismatch
			msg = fmt.Sprintf("the stored archive is not %d bytes as the agent reported", req.Size)
		}
		s.cfg.Logger.WarnContext(ctx, "upload not completed", "run", run.Name, "error", err)
		if ferr := s.finish(ctx, st, run, backappv1alpha1.RunFailed, reason, msg); ferr != nil {
			s.writeError(w, r, ferr)
			return
		}
		s.writeError(w, r, agentapi.NewError(code, "%s; run %s failed", msg, run.Name))
		return
	}
	run.Status.Object.Size = info.Size
	run.Status.Object.SHA256 = req.SHA256
	msg := fmt.Sprintf("stored %d bytes, size verified by the server", info.Size)
	if err := s.finish(ctx, st, run, backappv1alpha1.RunSucceeded, backappv1alpha1.ReasonObjectVerified, msg); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, agentapi.CompleteResponse{RunID: run.Name, Phase: agentapi.RunSucceeded, Message: msg})
}

func recordCounts(run *backappv1alpha1.BackupRun, req *agentapi.CompleteRequest) {
	run.Status.FilesProcessed, run.Status.FilesSkipped = req.FilesProcessed, req.FilesSkipped
	run.Status.BytesTransferred = req.BytesTransferred
	run.Status.Errors = nil
	for _, e := range req.Errors {
		run.Status.Errors = append(run.Status.Errors, backappv1alpha1.RunError{Path: e.Path, Message: e.Message})
	}
	run.Status.ErrorCount = max(req.ErrorCount, int64(len(req.Errors)))
}

// finish ends run in phase with the Verified condition saying why. A run
// that did not succeed has its upload aborted first (best effort: the
// lifecycle of abandoned uploads is the manager's backstop).
func (s *Server) finish(ctx context.Context, st *objstore.Store, run *backappv1alpha1.BackupRun,
	phase backappv1alpha1.RunPhase, reason, msg string) error {
	if phase != backappv1alpha1.RunSucceeded && run.Status.UploadID != "" && run.Status.Object != nil {
		if err := st.Abort(ctx, run.Status.Object.Key, run.Status.UploadID); err != nil {
			s.cfg.Logger.WarnContext(ctx, "aborting the upload failed", "run", run.Name, "error", err)
		}
	}
	now := s.now()
	run.Status.Phase = phase
	run.Status.CompletionTime = &now
	run.Status.UploadID = ""
	run.Status.Message = truncate(msg, 1024)
	if phase == backappv1alpha1.RunSucceeded {
		run.Status.Progress = 100
	}
	verified := metav1.ConditionFalse
	if phase == backappv1alpha1.RunSucceeded {
		verified = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: backappv1alpha1.ConditionVerified, Status: verified, Reason: reason,
		Message: run.Status.Message, ObservedGeneration: run.Generation,
	})
	meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: backappv1alpha1.ConditionReady, Status: verified, Reason: reason,
		Message: run.Status.Message, ObservedGeneration: run.Generation,
	})
	s.progress.forget(client.ObjectKeyFromObject(run))
	if err := s.writer.Status().Update(ctx, run); err != nil {
		if apierrors.IsConflict(err) {
			return agentapi.NewError(agentapi.CodeConflict, "run %s changed meanwhile; retry", run.Name)
		}
		return fmt.Errorf("while marking run %s %s: %w", run.Name, phase, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// --- backup/abort ------------------------------------------------------

func (s *Server) handleAbort(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req agentapi.AbortRequest
	if err := decode(r, agentapi.MaxBackupAbortBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	run, _, st, err := s.runningRun(ctx, agentFrom(ctx), req.RunID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	phase, wire, reason := backappv1alpha1.RunFailed, agentapi.RunFailed, backappv1alpha1.ReasonUploadFailed
	msg := "aborted by the agent: " + req.Reason
	if isCancelled(run) {
		phase, wire, reason, msg = backappv1alpha1.RunCancelled, agentapi.RunCancelled, backappv1alpha1.ReasonCancelled, "cancelled"
	}
	if err := s.finish(ctx, st, run, phase, reason, msg); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, agentapi.AbortResponse{RunID: run.Name, Phase: wire})
}

// --- log ---------------------------------------------------------------

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	agent := agentFrom(r.Context())
	var req agentapi.LogRequest
	if err := decode(r, agentapi.MaxLogBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	at := req.Time
	if at.IsZero() {
		at = s.cfg.Clock.Now()
	}
	entry := AgentLogEntry{Time: at.UTC(), Level: string(req.Level), Message: req.Message, Metadata: map[string]string{}}
	for k, v := range req.Metadata {
		entry.Metadata[k] = fmt.Sprint(v)
	}
	if req.RunID != "" {
		entry.Metadata["runId"] = req.RunID
	}
	s.logs.add(agent.UID, entry)
	w.WriteHeader(http.StatusNoContent)
}

// --- download ----------------------------------------------------------

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := agentapi.ParseDownloadQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	run, cfg, err := s.runOf(ctx, agentFrom(ctx), req.RunID)
	if err == nil && (run.Status.Phase != backappv1alpha1.RunSucceeded || run.Status.Object == nil) {
		err = agentapi.NewError(agentapi.CodeConflict, "run %s has no stored archive (it is %s)", run.Name, run.Status.Phase)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.storeFor(ctx, cfg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := st.PresignGet(ctx, run.Status.Object.Key, s.cfg.DownloadURLTTL)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("while pre-signing the download of run %s: %w", run.Name, err))
		return
	}
	writeJSON(w, http.StatusOK, agentapi.DownloadResponse{
		RunID: run.Name, URL: agentapi.PresignedURL(u.URL), ExpiresAt: u.Expires.UTC(),
		Key: run.Status.Object.Key, Size: run.Status.Object.Size, SHA256: run.Status.Object.SHA256,
		Compression: toWireCompression(cfg.Spec.Options.Compression.Algorithm),
		Encrypted:   cfg.Spec.Options.Encryption != nil,
	})
}
