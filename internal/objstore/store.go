package objstore

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// CompletedPart is one uploaded part of a multipart upload.
type CompletedPart struct {
	// Number is the part number, 1..MaxParts.
	Number int32
	// ETag is the part's ETag as S3 returned it in the ETag header of the
	// part PUT, with or without the surrounding quotes.
	ETag string
	// Size is the part's size in bytes. ListParts fills it in; Complete
	// ignores it.
	Size int64
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key  string
	Size int64
	// ETag is as S3 returns it, quotes included. For a multipart object it
	// is not an MD5 of the content.
	ETag         string
	LastModified time.Time
}

func checkUpload(key, uploadID string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if uploadID == "" {
		return fmt.Errorf("%w: empty upload id", ErrInvalidArgument)
	}
	return nil
}

// CreateUpload starts a multipart upload of key and returns its id. Until it
// is completed or aborted the parts cost storage, so every path that gives
// up on a run must Abort it (a bucket lifecycle rule that aborts incomplete
// uploads after a day or two is the backstop).
func (s *Store) CreateUpload(ctx context.Context, key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("while starting an upload: %w", err)
	}
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return "", fmt.Errorf("while starting an upload of %q: %w", key, err)
	}
	id := aws.ToString(out.UploadId)
	if id == "" {
		return "", fmt.Errorf("while starting an upload of %q: S3 returned no upload id", key)
	}
	return id, nil
}

// checkParts validates a part list before it is sent to S3, whose own
// errors for these mistakes are terse.
func checkParts(parts []CompletedPart) error {
	if len(parts) == 0 {
		return fmt.Errorf("%w: no parts", ErrInvalidArgument)
	}
	if len(parts) > MaxParts {
		return fmt.Errorf("%w: %d parts, at most %d allowed", ErrInvalidArgument, len(parts), MaxParts)
	}
	prev := int32(0)
	for i, p := range parts {
		if p.Number < 1 || p.Number > MaxParts {
			return fmt.Errorf("%w: part %d has number %d, not within 1..%d", ErrInvalidArgument, i, p.Number, MaxParts)
		}
		if p.Number <= prev {
			return fmt.Errorf("%w: part numbers must be unique and ascending, but %d follows %d", ErrInvalidArgument, p.Number, prev)
		}
		prev = p.Number
		etag := strings.Trim(p.ETag, `"`)
		if etag == "" {
			return fmt.Errorf("%w: part %d has no ETag", ErrInvalidArgument, p.Number)
		}
		if strings.ContainsAny(etag, "\"\x00\r\n") {
			return fmt.Errorf("%w: part %d has a malformed ETag", ErrInvalidArgument, p.Number)
		}
	}
	return nil
}

// Complete completes the multipart upload uploadID of key from parts (in
// ascending, unique part-number order, as S3 requires; checked before S3 is
// asked), then checks that the stored object is wantSize bytes and returns
// it.
//
// On a size mismatch the object is deleted, since it is not the archive the
// agent made, and the error wraps ErrVerification. Any other failure leaves
// the upload as it is: the caller decides whether to Abort it.
//
// Complete may be retried: when the upload is already gone, Complete accepts
// the object at key if its ETag is the one S3 computes for exactly these
// parts (MD5 of the parts' MD5s; true of unencrypted and SSE-S3 objects), so
// a success whose response was lost is not mistaken for a failure.
// Otherwise a missing upload (aborted, never started) wraps ErrNotFound.
func (s *Store) Complete(ctx context.Context, key, uploadID string, parts []CompletedPart, wantSize int64) (ObjectInfo, error) {
	if err := checkUpload(key, uploadID); err != nil {
		return ObjectInfo{}, fmt.Errorf("while completing an upload: %w", err)
	}
	if err := checkParts(parts); err != nil {
		return ObjectInfo{}, fmt.Errorf("while completing the upload of %q: %w", key, err)
	}
	if err := checkSize(wantSize); err != nil {
		return ObjectInfo{}, fmt.Errorf("while completing the upload of %q: %w", key, err)
	}
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{
			PartNumber: aws.Int32(p.Number),
			ETag:       aws.String(`"` + strings.Trim(p.ETag, `"`) + `"`),
		}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		if !isMissingUpload(err) {
			return ObjectInfo{}, fmt.Errorf("while completing the upload of %q: %w", key, err)
		}
		if !s.alreadyCompleted(ctx, key, parts) {
			return ObjectInfo{}, fmt.Errorf("while completing the upload of %q: the upload is gone (aborted, or never started): %w", key, ErrNotFound)
		}
	}
	info, err := s.VerifySize(ctx, key, wantSize)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("while completing the upload of %q: %w", key, err)
	}
	return info, nil
}

// alreadyCompleted reports whether the object at key is what completing an
// upload from parts produces, judged by its ETag.
func (s *Store) alreadyCompleted(ctx context.Context, key string, parts []CompletedPart) bool {
	want, ok := multipartETag(parts)
	if !ok {
		return false
	}
	info, err := s.Head(ctx, key)
	return err == nil && strings.Trim(info.ETag, `"`) == want
}

// multipartETag is the ETag S3 (and MinIO) give an object completed from
// parts whose ETags are MD5s: hex(MD5(md5_1 || md5_2 || ...))-N.
func multipartETag(parts []CompletedPart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		h.Write(sum)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), true
}

func checkSize(size int64) error {
	if size < 0 || size > MaxObjectSize {
		return fmt.Errorf("%w: size %d is not within 0..%d", ErrInvalidArgument, size, MaxObjectSize)
	}
	return nil
}

// VerifySize checks that the object at key is wantSize bytes and returns it.
// It is how an upload through PresignPut is checked (Complete does it for
// multipart uploads): a pre-signed PUT cannot limit what is sent. On a
// mismatch the object is deleted, since it is not the archive the agent
// made, and the error wraps ErrVerification; a missing object wraps
// ErrNotFound.
func (s *Store) VerifySize(ctx context.Context, key string, wantSize int64) (ObjectInfo, error) {
	if err := checkSize(wantSize); err != nil {
		return ObjectInfo{}, fmt.Errorf("while verifying %q: %w", key, err)
	}
	info, err := s.Head(ctx, key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("while verifying the size of %q: %w", key, err)
	}
	if info.Size == wantSize {
		return info, nil
	}
	mismatch := fmt.Errorf("while verifying the size of %q: stored %d bytes, the uploader reported %d: %w", key, info.Size, wantSize, ErrVerification)
	if err := s.Delete(ctx, key); err != nil {
		return ObjectInfo{}, errors.Join(mismatch, fmt.Errorf("while deleting the unverified object: %w", err))
	}
	return ObjectInfo{}, mismatch
}

// Head returns what S3 knows about the object at key; ErrNotFound when there
// is none.
func (s *Store) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("while looking up an object: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if isMissingObject(err) {
			return ObjectInfo{}, fmt.Errorf("while looking up object %q: %w", key, ErrNotFound)
		}
		return ObjectInfo{}, fmt.Errorf("while looking up object %q: %w", key, err)
	}
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// Abort aborts the multipart upload uploadID of key and frees its parts.
// It is idempotent: an unknown, already aborted or completed upload is not
// an error. Part URLs already handed out stop working.
func (s *Store) Abort(ctx context.Context, key, uploadID string) error {
	if err := checkUpload(key, uploadID); err != nil {
		return fmt.Errorf("while aborting an upload: %w", err)
	}
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(key),
		UploadId: aws.String(uploadID),
	})
	if err != nil && !isMissingUpload(err) {
		return fmt.Errorf("while aborting the upload of %q: %w", key, err)
	}
	return nil
}

// Delete deletes the object at key. It is idempotent: a missing object is not
// an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("while deleting an object: %w", err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil && !isMissingObject(err) {
		return fmt.Errorf("while deleting object %q: %w", key, err)
	}
	return nil
}

// ListParts returns the parts S3 holds for the upload, in ascending order,
// with their ETags and sizes, so the server can rebuild the list for
// Complete or check what an agent claims. An unknown, aborted or completed
// upload wraps ErrNotFound.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]CompletedPart, error) {
	if err := checkUpload(key, uploadID); err != nil {
		return nil, fmt.Errorf("while listing parts: %w", err)
	}
	pages := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(key),
		UploadId: aws.String(uploadID),
	})
	var parts []CompletedPart
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			if isMissingUpload(err) {
				return nil, fmt.Errorf("while listing the parts of the upload of %q: %w", key, ErrNotFound)
			}
			return nil, fmt.Errorf("while listing the parts of the upload of %q: %w", key, err)
		}
		for _, p := range page.Parts {
			parts = append(parts, CompletedPart{
				Number: aws.ToInt32(p.PartNumber),
				ETag:   aws.ToString(p.ETag),
				Size:   aws.ToInt64(p.Size),
			})
		}
	}
	return parts, nil
}

// VerifySHA256 reads the whole object at key and checks that its SHA-256 is
// want (64 hex digits); a mismatch wraps ErrVerification, a missing object
// ErrNotFound.
//
// It costs a full download through the server: time and bandwidth (and on
// AWS, egress charges) in proportion to the object's size. S3 offers no
// whole-object SHA-256 of a multipart object, so for archives the server
// records the agent's claim instead; use this for small objects, spot checks
// and tests.
func (s *Store) VerifySHA256(ctx context.Context, key string, want string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("while verifying a SHA-256: %w", err)
	}
	wantSum, err := hex.DecodeString(want)
	if err != nil || len(wantSum) != sha256.Size {
		return fmt.Errorf("while verifying the SHA-256 of %q: %w: want %q is not 64 hex digits", key, ErrInvalidArgument, want)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if isMissingObject(err) {
			return fmt.Errorf("while verifying the SHA-256 of %q: %w", key, ErrNotFound)
		}
		return fmt.Errorf("while verifying the SHA-256 of %q: %w", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		return fmt.Errorf("while verifying the SHA-256 of %q: while reading it: %w", key, err)
	}
	if got := h.Sum(nil); string(got) != string(wantSum) {
		return fmt.Errorf("while verifying the SHA-256 of %q: it is %x, the uploader reported %x: %w", key, got, wantSum, ErrVerification)
	}
	return nil
}
