// Package objstore is the server side of BackApp's object storage: it holds
// the S3 credentials, starts multipart uploads, mints short-lived pre-signed
// URLs that let agents PUT parts (or one small archive) and GET archives for
// restores without ever holding credentials, completes uploads and verifies
// the stored object before a run may be marked Succeeded, and deletes
// archives that retention has expired. It also builds the object keys, so
// that no caller assembles a key from user input by hand.
//
// Pre-signed URLs are bearer tokens: PresignedURL prints and logs itself with
// the query (and so the signature) redacted, and nothing in this package logs.
//
// It must not import Kubernetes or pgx packages: it is shared by the server
// and tooling and has no business knowing where runs are recorded.
package objstore
