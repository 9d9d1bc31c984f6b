package worker

import (
	"errors"
	"fmt"
	"testing"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

func TestNormalizeCode(t *testing.T) {
	cases := map[pb.ErrorCode]pb.ErrorCode{
		pb.ErrorCode_ERROR_CODE_UNSPECIFIED:         pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, // legacy
		pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET:      pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET,
		pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN:       pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN,
		pb.ErrorCode(42):                            pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, // unknown
		pb.ErrorCode(-1):                            pb.ErrorCode_ERROR_CODE_HANDLER_FAILED,
		pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:   pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
		pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE:  pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE,
		pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE: pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE,
	}
	for in, want := range cases {
		if got := normalizeCode(in); got != want {
			t.Errorf("normalizeCode(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestResponseError(t *testing.T) {
	if err := responseError(&pb.RpcResponse{RequestId: "1", Payload: nonePayload().proto()}); err != nil {
		t.Fatalf("success read as %v", err)
	}
	if err := responseError(&pb.RpcResponse{RequestId: "1"}); !errors.Is(err, ErrHandlerFailed) {
		t.Fatalf("a response without payload or error reads as %v", err)
	}
	if err := responseError(&pb.RpcResponse{Payload: &pb.Payload{}}); err != nil {
		t.Fatalf("an empty payload reads as %v", err)
	}
	legacy := responseError(&pb.RpcResponse{Error: "boom"})
	if !errors.Is(legacy, ErrHandlerFailed) || errors.Is(legacy, ErrUnknownTarget) {
		t.Fatalf("a legacy error reads as %v", legacy)
	}
	coded := responseError(&pb.RpcResponse{Error: "gone", ErrorCode: pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET})
	var ce *CallError
	if !errors.As(coded, &ce) || ce.Code != pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET || ce.Message != "gone" {
		t.Fatalf("coded error reads as %#v", coded)
	}
	noText := responseError(&pb.RpcResponse{ErrorCode: pb.ErrorCode_ERROR_CODE_OVERLOADED})
	if !errors.Is(noText, ErrOverloaded) || noText.Error() == "" {
		t.Fatalf("an error code without text reads as %v", noText)
	}
}

func TestCallErrorMatchesSentinelsThroughWrapping(t *testing.T) {
	err := fmt.Errorf("calling: %w", &CallError{Code: pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, Message: "late"})
	if !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatal("wrapped deadline error does not match ErrDeadlineExceeded")
	}
	for _, other := range []error{ErrUnknownTarget, ErrTargetUnavailable, ErrHandlerFailed, ErrShuttingDown, errors.New("x")} {
		if errors.Is(err, other) {
			t.Fatalf("deadline error matches %v", other)
		}
	}
	if got := err.Error(); got != "calling: ERROR_CODE_DEADLINE_EXCEEDED: late" {
		t.Fatalf("Error() = %q", got)
	}
}
