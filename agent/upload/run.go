package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
)

// ErrUnknownMode: backup/start answered with an upload mode this agent
// does not know (a newer server).
var ErrUnknownMode = errors.New("unknown upload mode")

// Run uploads the archive that produce writes for the run start began
// (client.Client.Start's answer) and returns the CompleteRequest to send:
// status completed, the parts, size, SHA-256, bytes transferred and
// duration filled in. The caller adds what only it knows (files processed
// and skipped, errors), then calls client.Client.Complete, so that the
// server, not the agent, decides the run Succeeded.
//
// parts is c in production (a *client.Client); it is where RunParts
// fetches the URLs after start's first batch. opts.PartSize 0 means the
// part size the server chose, which is what the server expects; the rest
// of opts applies as given.
//
// produce gets the Uploader as its io.Writer and must not keep it. If
// produce or the upload fails, Run stops every in-flight PUT before it
// returns the error, preferring the upload's (the root cause: produce
// fails because its Write did). The run is then still Running on the
// server: the caller ends it with Complete(status failed, message) or,
// when it was cancelled, Abort. An error from an ended ctx wraps
// ErrAborted.
func Run(ctx context.Context, parts PartsClient, start agentapi.StartResponse, produce func(w io.Writer) error, opts Options) (agentapi.CompleteRequest, error) {
	began := time.Now()
	var src PartSource
	switch start.Mode {
	case agentapi.UploadMultipart:
		src = NewRunParts(parts, start)
	case agentapi.UploadSingle:
		src = &singleURL{url: start.PutURL}
	default:
		return agentapi.CompleteRequest{}, fmt.Errorf("while uploading run %s: %w %q", start.RunID, ErrUnknownMode, start.Mode)
	}
	if opts.PartSize == 0 {
		opts.PartSize = start.PartSize
	}
	u := New(ctx, src, opts)
	if err := produce(u); err != nil {
		uerr := u.failure()
		u.Abort()
		_ = u.Close() // waits for the workers; its error is ErrAborted now
		if uerr != nil {
			return agentapi.CompleteRequest{}, fmt.Errorf("while uploading the archive of run %s: %w", start.RunID, uerr)
		}
		return agentapi.CompleteRequest{}, fmt.Errorf("while producing the archive of run %s: %w", start.RunID, err)
	}
	if err := u.Close(); err != nil {
		return agentapi.CompleteRequest{}, fmt.Errorf("while uploading the archive of run %s: %w", start.RunID, err)
	}
	req := agentapi.CompleteRequest{
		RunID:            start.RunID,
		Status:           agentapi.CompleteCompleted,
		Size:             u.Size(),
		SHA256:           u.SHA256(),
		BytesTransferred: u.Transferred(),
		DurationMs:       time.Since(began).Milliseconds(),
	}
	if start.Mode == agentapi.UploadMultipart {
		req.Parts = u.Parts()
	}
	return req, nil
}
