package worker

import (
	"encoding/json"
	"fmt"
	"strings"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Content types of the two payload encodings (AWP-PUB-020).
const (
	ContentTypeJSON     = "application/json"
	ContentTypeProtobuf = "application/x-protobuf"
)

// Payload is an encoded application message (spec 9.2). For JSON, Data is
// the UTF-8 JSON text and DataType an application-chosen name; for protobuf,
// Data is a serialized google.protobuf.Any and DataType the full message
// name.
type Payload struct {
	DataType    string
	ContentType string
	Data        []byte
}

// JSON encodes v as JSON under the type name dataType.
func JSON(dataType string, v any) (Payload, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Payload{}, fmt.Errorf("encode %s as JSON: %w", dataType, err)
	}
	return Payload{DataType: dataType, ContentType: ContentTypeJSON, Data: data}, nil
}

// Proto encodes m as a serialized google.protobuf.Any (AWP-PUB-021).
func Proto(m proto.Message) (Payload, error) {
	a, err := anypb.New(m)
	if err != nil {
		return Payload{}, fmt.Errorf("wrap %s in Any: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	data, err := proto.Marshal(a)
	if err != nil {
		return Payload{}, fmt.Errorf("encode Any: %w", err)
	}
	return Payload{
		DataType:    string(m.ProtoReflect().Descriptor().FullName()),
		ContentType: ContentTypeProtobuf,
		Data:        data,
	}, nil
}

// IsJSON reports whether p is JSON with the type name dataType.
func (p Payload) IsJSON(dataType string) bool {
	return isContentType(p.ContentType, ContentTypeJSON) && p.DataType == dataType
}

// IsProto reports whether p is protobuf holding a message of m's type.
func (p Payload) IsProto(m proto.Message) bool {
	return isContentType(p.ContentType, ContentTypeProtobuf) &&
		p.DataType == string(m.ProtoReflect().Descriptor().FullName())
}

// DecodeJSON decodes a JSON payload into v. A payload that is not JSON or
// does not decode yields an error matching ErrUnsupportedMessage.
func (p Payload) DecodeJSON(v any) error {
	if !isContentType(p.ContentType, ContentTypeJSON) {
		return unsupportedf("%s payload is %q, not JSON", p.DataType, p.ContentType)
	}
	if err := json.Unmarshal(p.Data, v); err != nil {
		return unsupportedf("%s payload does not decode: %v", p.DataType, err)
	}
	return nil
}

// DecodeProto decodes a protobuf payload into m, checking the type name. A
// payload of another type or encoding, or one that does not decode, yields an
// error matching ErrUnsupportedMessage.
func (p Payload) DecodeProto(m proto.Message) error {
	if !p.IsProto(m) {
		return unsupportedf("payload %q (%s) is not a %s", p.DataType, p.ContentType,
			m.ProtoReflect().Descriptor().FullName())
	}
	var a anypb.Any
	if err := proto.Unmarshal(p.Data, &a); err != nil {
		return unsupportedf("%s payload is not a serialized Any: %v", p.DataType, err)
	}
	if err := a.UnmarshalTo(m); err != nil {
		return unsupportedf("%s payload does not decode: %v", p.DataType, err)
	}
	return nil
}

func (p Payload) proto() *pb.Payload {
	return &pb.Payload{DataType: p.DataType, DataContentType: p.ContentType, Data: p.Data}
}

func payloadFromProto(p *pb.Payload) Payload {
	return Payload{DataType: p.GetDataType(), ContentType: p.GetDataContentType(), Data: p.GetData()}
}

// nonePayload is the reply of a handler that returns nothing: JSON null with
// data_type NoneType, as AutoGen sends (AWP-RPC-020).
func nonePayload() Payload {
	return Payload{DataType: "NoneType", ContentType: ContentTypeJSON, Data: []byte("null")}
}

// isContentType compares media types ignoring case and parameters
// ("application/json; charset=utf-8" is JSON).
func isContentType(got, want string) bool {
	if i := strings.IndexByte(got, ';'); i >= 0 {
		got = got[:i]
	}
	return strings.EqualFold(strings.TrimSpace(got), want)
}

func unsupportedf(format string, args ...any) error {
	return &CallError{Code: pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE, Message: fmt.Sprintf(format, args...)}
}
