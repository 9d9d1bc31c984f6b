package worker

import (
	"errors"
	"fmt"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

// CallError is an RPC that ended with an error response, or that this worker
// failed locally (deadline, lost channel). Code is one of the ErrorCode values
// of spec section 11.1, never ERROR_CODE_UNSPECIFIED.
//
// Compare with errors.Is against the sentinels below:
//
//	if errors.Is(err, worker.ErrUnknownTarget) { ... }
type CallError struct {
	Code    pb.ErrorCode
	Message string
}

func (e *CallError) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is reports whether target is a *CallError with the same code, so that
// errors.Is matches the sentinels whatever the message.
func (e *CallError) Is(target error) bool {
	var t *CallError
	return errors.As(target, &t) && t.Code == e.Code
}

// Sentinels, one per error code, for use with errors.Is.
var (
	ErrUnknownTarget      = &CallError{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET}
	ErrTargetUnavailable  = &CallError{Code: pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE}
	ErrDeadlineExceeded   = &CallError{Code: pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED}
	ErrOverloaded         = &CallError{Code: pb.ErrorCode_ERROR_CODE_OVERLOADED}
	ErrHandlerFailed      = &CallError{Code: pb.ErrorCode_ERROR_CODE_HANDLER_FAILED}
	ErrUnsupportedMessage = &CallError{Code: pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE}
	ErrInvalidRequest     = &CallError{Code: pb.ErrorCode_ERROR_CODE_INVALID_REQUEST}
	ErrPermissionDenied   = &CallError{Code: pb.ErrorCode_ERROR_CODE_PERMISSION_DENIED}
	ErrShuttingDown       = &CallError{Code: pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN}
)

// normalizeCode maps a received code to the closed set: an unknown value
// (AWP-VER-002) and an unspecified code on an error (a legacy peer,
// AWP-ERR-003) both read as ERROR_CODE_HANDLER_FAILED.
func normalizeCode(code pb.ErrorCode) pb.ErrorCode {
	if code <= pb.ErrorCode_ERROR_CODE_UNSPECIFIED || code > pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN {
		return pb.ErrorCode_ERROR_CODE_HANDLER_FAILED
	}
	return code
}

// responseError returns the caller's view of a response: nil on success, a
// *CallError otherwise (AWP-RPC-022). A response with neither payload nor
// error is a failure too (AWP-RPC-023).
func responseError(r *pb.RpcResponse) error {
	if r.GetError() == "" && r.GetErrorCode() == pb.ErrorCode_ERROR_CODE_UNSPECIFIED {
		if r.GetPayload() == nil {
			return &CallError{Code: pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, Message: "the response carries neither a payload nor an error"}
		}
		return nil
	}
	msg := r.GetError()
	if msg == "" {
		msg = "call failed"
	}
	return &CallError{Code: normalizeCode(r.GetErrorCode()), Message: msg}
}

// Unsupported returns the error a handler returns for a payload it does not
// handle; the worker answers it with ERROR_CODE_UNSUPPORTED_MESSAGE.
func Unsupported(p Payload) error {
	return &CallError{
		Code:    pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE,
		Message: fmt.Sprintf("no handler for %q (%s)", p.DataType, p.ContentType),
	}
}
