package objstore

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

var (
	// ErrNotFound means the object or the multipart upload does not exist
	// (any more).
	ErrNotFound = errors.New("objstore: not found")
	// ErrVerification means a stored object is not what the uploader
	// claimed (size or SHA-256); the run must not be marked Succeeded.
	ErrVerification = errors.New("objstore: verification failed")
	// ErrInvalidArgument means the caller passed something this package
	// refuses before talking to S3 (a bad key, id, part list, TTL or
	// configuration). It is permanent: retrying the same call cannot help.
	ErrInvalidArgument = errors.New("objstore: invalid argument")
)

// hasCode reports whether err is an S3 error with one of the given codes.
func hasCode(err error, codes ...string) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, c := range codes {
		if apiErr.ErrorCode() == c {
			return true
		}
	}
	return false
}

// httpStatus is the HTTP status of the S3 response behind err, or 0.
func httpStatus(err error) int {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}

// isMissingObject reports whether err says the object does not exist. A HEAD
// response has no body, so a bare 404 is all S3 gives; a missing bucket is
// a configuration problem, not a missing object, and is kept apart.
func isMissingObject(err error) bool {
	if hasCode(err, "NoSuchBucket") {
		return false
	}
	return hasCode(err, "NoSuchKey", "NotFound") || httpStatus(err) == http.StatusNotFound
}

// isMissingUpload reports whether err says the multipart upload does not
// exist: never started, aborted, or already completed.
func isMissingUpload(err error) bool {
	return hasCode(err, "NoSuchUpload")
}
