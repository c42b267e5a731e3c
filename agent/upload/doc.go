// Package upload streams an archive of any size to object storage as a
// multipart upload through pre-signed part URLs, with memory bounded by
// the part size times the concurrency.
//
// An Uploader is an io.WriteCloser: Write cuts the stream into parts of
// Options.PartSize bytes, held in a pool of Concurrency+1 buffers
// allocated on first use; full parts are uploaded by Concurrency workers
// with plain HTTP PUTs while the next one fills, and Write blocks while
// every buffer is taken (backpressure on the archiver). The SHA-256 and
// size of the whole stream are computed as it passes. Close uploads the
// last part and waits; Parts then lists the ETags for backup/complete.
//
// A part keeps its buffer until object storage accepted it, so a failed
// attempt (connection reset, 5xx, a stalled connection, S3's 400
// RequestTimeout) is retried from its first byte with exponential backoff;
// a 403 (an expired URL, or a clock far off) gets a fresh URL from the
// PartSource and is retried; any other 4xx (the upload was aborted, the
// URL is for another object) fails the upload at once, as does a part
// that exhausts its retries. The first failure cancels the other
// in-flight parts, and Write and Close return it.
//
// Where URLs come from is a PartSource: RunParts serves a run's URLs from
// backup/start and asks backup/parts for more; Run is the glue that
// uploads one run's archive with it and returns the CompleteRequest.
//
// An empty stream is uploaded as one empty part: S3 and MinIO refuse to
// complete a multipart upload with no parts (MalformedXML, "You must
// specify at least one part"), and accept a single part of 0 bytes (the
// last part may be smaller than 5 MiB, down to nothing), which completes
// to a 0-byte object; other S3 uploaders (the Docker registry, tus) do the
// same. A test covers it against MinIO.
//
// Pre-signed URLs are secrets: they are never logged and never appear in
// errors (agentapi.PresignedURL prints without its query, and net/http's
// *url.Error, which quotes the full URL, is unwrapped); S3 error bodies
// contribute only their Code and Message, since a SignatureDoesNotMatch
// body echoes the signature.
//
// It runs inside backapp-agent on laptops and must not import Kubernetes,
// controller-runtime or pgx packages: only the standard library,
// internal/agentapi, internal/apikey, internal/version and agent/client.
// A test enforces it.
package upload
