package ipc

import (
	"encoding/binary"
	"fmt"
)

// HeaderSize is the size of an encoded [Header]: every datagram starts with one.
const HeaderSize = 24

// Type says what a message is. Zero is never valid; values from [TypeUser] up are free for
// callers to define.
type Type uint8

// The message types goswoole's processes exchange. The comment says who sends each, what Fd
// holds and what the payload is; the package does not interpret them.
const (
	TypeInvalid      Type = iota // never sent; a header carrying it is malformed
	TypeData                     // master → worker: a client's data; Fd session id
	TypeConnect                  // master → worker: a connection opened; Fd session id
	TypeClose                    // master → worker: a connection closed; Fd session id
	TypeSend                     // worker → master: send payload to session Fd
	TypeCloseReq                 // worker → master: close session Fd
	TypePause                    // worker → master: stop reading session Fd
	TypeResume                   // worker → master: read session Fd again
	TypeTask                     // worker → task worker: a task; Fd task id
	TypeFinish                   // task worker → worker: a task's result; Fd task id
	TypePipeMessage              // any → worker or task worker: SendMessage
	TypeCommand                  // admin command request; Fd request id
	TypeCommandReply             // admin command reply; Fd request id
	TypeSendFile                 // worker → master: send a file to session Fd; payload names it
	TypeBufferFull               // master → worker: session Fd's output buffer is full
	TypeBufferEmpty              // master → worker: session Fd's output buffer drained
	TypeShutdown                 // master or manager → any: stop
	typeLast                     // one past the last predefined type

	// TypeUser is the first type reserved for callers: TypeUser..255 are never predefined.
	TypeUser Type = 128
)

var typeNames = [...]string{
	TypeInvalid: "Invalid", TypeData: "Data", TypeConnect: "Connect", TypeClose: "Close",
	TypeSend: "Send", TypeCloseReq: "CloseReq", TypePause: "Pause", TypeResume: "Resume",
	TypeTask: "Task", TypeFinish: "Finish", TypePipeMessage: "PipeMessage",
	TypeCommand: "Command", TypeCommandReply: "CommandReply", TypeSendFile: "SendFile",
	TypeBufferFull: "BufferFull", TypeBufferEmpty: "BufferEmpty", TypeShutdown: "Shutdown",
}

// String returns the type's name, or "Type(n)" for one the package does not define.
func (t Type) String() string {
	if t < typeLast {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Flags are a header's flag bits. The two chunk bits belong to the package: the Writer sets
// them on each record, and the Reader sets both on every message it delivers. The other six
// bits ([FlagUserMask]) are the caller's and travel unchanged.
type Flags uint8

// The flag bits.
const (
	FlagChunkBegin Flags = 1 << 0 // the first datagram of a message
	FlagChunkEnd   Flags = 1 << 1 // the last datagram of a message

	// FlagChunkMask covers the chunk bits; a single-datagram message has both.
	FlagChunkMask = FlagChunkBegin | FlagChunkEnd
	// FlagUserMask covers the bits callers may use.
	FlagUserMask Flags = ^FlagChunkMask
)

// Header starts every record (a datagram holds one record, or several whole small
// messages), encoded little-endian in [HeaderSize] bytes:
//
//	offset size field
//	0      1    Type
//	1      1    Flags
//	2      2    SrcWorker  int16
//	4      2    ReactorID  int16
//	6      2    Aux        uint16
//	8      8    Fd         int64
//	16     4    MsgID      uint32
//	20     4    Len        uint32
//
// In a record, Len is the number of payload bytes that follow the header. On a message
// delivered by [Reader.ReadBatch], Len is the whole message's payload length and the chunk
// flags are both set.
type Header struct {
	Type      Type
	Flags     Flags
	SrcWorker int16  // the sending process's worker id (callers pick ids for master, manager, ...)
	ReactorID int16  // the master's reactor that owns the session, or the caller's meaning
	Aux       uint16 // free for the caller, e.g. the listener index of a Connect
	Fd        int64  // session id, task id or request id, by Type
	MsgID     uint32 // set by the Writer: the reassembly key, unique per sender for a while
	Len       uint32 // payload bytes: in this record, or in the whole message when delivered
}

// Encode writes h into b[:HeaderSize]. It panics if b is shorter, like binary.LittleEndian.
func (h *Header) Encode(b []byte) {
	_ = b[HeaderSize-1]
	b[0] = byte(h.Type)
	b[1] = byte(h.Flags)
	binary.LittleEndian.PutUint16(b[2:], uint16(h.SrcWorker))
	binary.LittleEndian.PutUint16(b[4:], uint16(h.ReactorID))
	binary.LittleEndian.PutUint16(b[6:], h.Aux)
	binary.LittleEndian.PutUint64(b[8:], uint64(h.Fd))
	binary.LittleEndian.PutUint32(b[16:], h.MsgID)
	binary.LittleEndian.PutUint32(b[20:], h.Len)
}

// AppendEncode appends the encoded header to b.
func (h *Header) AppendEncode(b []byte) []byte {
	var a [HeaderSize]byte
	h.Encode(a[:])
	return append(b, a[:]...)
}

// decodeHeader reads the header fields from b[:HeaderSize] without checking them.
func decodeHeader(b []byte) Header {
	_ = b[HeaderSize-1]
	return Header{
		Type:      Type(b[0]),
		Flags:     Flags(b[1]),
		SrcWorker: int16(binary.LittleEndian.Uint16(b[2:])),
		ReactorID: int16(binary.LittleEndian.Uint16(b[4:])),
		Aux:       binary.LittleEndian.Uint16(b[6:]),
		Fd:        int64(binary.LittleEndian.Uint64(b[8:])),
		MsgID:     binary.LittleEndian.Uint32(b[16:]),
		Len:       binary.LittleEndian.Uint32(b[20:]),
	}
}

// DecodeHeader decodes the header at the start of b and checks it: b must hold at least
// HeaderSize bytes, Type must not be TypeInvalid, and the record's Len payload bytes must fit
// in the rest of b. On failure it returns an error wrapping [ErrMalformed] (and whatever
// fields it could read). It never panics and never allocates.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, errShort
	}
	h := decodeHeader(b)
	if uint64(h.Len) > uint64(len(b)-HeaderSize) {
		return h, errLen
	}
	if h.Type == TypeInvalid {
		return h, errType
	}
	return h, nil
}

// checkDatagram checks that dgram is a sequence of valid records that fills it exactly, and
// that a datagram of several records holds only whole messages (chunks travel alone). It
// returns the number of records.
func checkDatagram(dgram []byte) (records int, h Header, err error) {
	for off := 0; off < len(dgram) || records == 0; records++ {
		rh, err := DecodeHeader(dgram[off:])
		if records == 0 {
			h = rh
		}
		if err != nil {
			return 0, h, err
		}
		if records > 0 && (rh.Flags&FlagChunkMask != FlagChunkMask || h.Flags&FlagChunkMask != FlagChunkMask) {
			return 0, h, errPacked
		}
		off += HeaderSize + int(rh.Len)
	}
	return records, h, nil
}

// Chunk geometry. A message of n payload bytes fits one datagram when n <= maxPayload.
// Otherwise it is split: the first datagram carries a 4-byte little-endian total length
// (prefixSize) and then maxPayload-prefixSize payload bytes; each later one carries up to
// maxPayload bytes; the last has FlagChunkEnd.
const prefixSize = 4

// chunkCount returns the number of datagrams for a payload of n bytes.
func chunkCount(n, maxPayload int) int {
	if n <= maxPayload {
		return 1
	}
	rest := n - (maxPayload - prefixSize)
	return 1 + (rest+maxPayload-1)/maxPayload
}

// chunkRange returns the payload bytes [start, end) carried by datagram i of k.
func chunkRange(n, maxPayload, i, k int) (start, end int) {
	if k == 1 {
		return 0, n
	}
	if i == 0 {
		return 0, maxPayload - prefixSize
	}
	start = maxPayload - prefixSize + (i-1)*maxPayload
	return start, min(start+maxPayload, n)
}

// chunkHeader returns the header of datagram i of k for message header h with n payload
// bytes; the payload bytes are [start, end).
func chunkHeader(h Header, n, start, end, i, k int) Header {
	h.Flags &= FlagUserMask
	h.Len = uint32(end - start)
	if i == 0 {
		h.Flags |= FlagChunkBegin
		if k > 1 {
			h.Len += prefixSize
		}
	}
	if i == k-1 {
		h.Flags |= FlagChunkEnd
	}
	return h
}

// appendChunk appends datagram i of k (header, length prefix, payload bytes) to dst.
func appendChunk(dst []byte, h Header, payload []byte, maxPayload, i, k int) []byte {
	n := len(payload)
	start, end := chunkRange(n, maxPayload, i, k)
	ch := chunkHeader(h, n, start, end, i, k)
	dst = ch.AppendEncode(dst)
	if i == 0 && k > 1 {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	}
	return append(dst, payload[start:end]...)
}
