package swoole

import "github.com/vmihailenco/msgpack/v5"

// encode turns a payload for another process or worker into bytes: []byte and string pass as
// they are, anything else goes through MessagePack (github.com/vmihailenco/msgpack/v5).
func encode(v any) ([]byte, error) {
	switch d := v.(type) {
	case []byte:
		return d, nil
	case string:
		return []byte(d), nil
	case nil:
		return nil, newError(ErrInvalidParams, "the payload is nil: pass []byte, a string or a value the codec can encode")
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, &Error{Code: ErrInvalidParams, Msg: "swoole: cannot encode the payload: use []byte, a string or a MessagePack-encodable value", Err: err}
	}
	return b, nil
}

// Decode decodes data that was sent as a Go value (not as []byte or string) through the
// server's codec (MessagePack) into v, a pointer.
func (s *Server) Decode(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return s.fail(&Error{Code: ErrInvalidParams, Msg: "swoole: cannot decode the payload into " + typeName(v) + ": was it sent as a Go value with the same shape?", Err: err})
	}
	return nil
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return fmtType(v)
}
