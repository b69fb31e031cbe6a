package ipc

import (
	"errors"
	"fmt"
)

// Defaults for [Config].
const (
	// DefaultMaxPayload keeps every datagram (header included) within 64 KiB.
	DefaultMaxPayload = 64<<10 - HeaderSize
	// DefaultMaxMessage is the largest message accepted by default: 64 MiB.
	DefaultMaxMessage = 64 << 20
	// DefaultBatch is the number of datagrams per sendmmsg or recvmmsg call.
	DefaultBatch = 32
	// MinMaxPayload is the smallest MaxPayload accepted.
	MinMaxPayload = 64
	// MaxMaxPayload is the largest MaxPayload accepted (a datagram must also fit the
	// socket's send buffer).
	MaxMaxPayload = 1<<20 - HeaderSize
	// MaxBatch is the largest Batch accepted (the kernel's UIO_MAXIOV).
	MaxBatch = 1024
)

// Config tunes a [Writer] or a [Reader]. The zero value means the defaults. MaxPayload must be
// the same at both ends of a socket (a Reader with a smaller one drops the bigger datagrams);
// the other fields are each end's own.
type Config struct {
	// MaxPayload is the largest number of payload bytes in one datagram; a longer message is
	// chunked. Default DefaultMaxPayload (a 64 KiB datagram).
	MaxPayload int
	// MaxMessage is the largest message payload: Write refuses a larger one, a Reader drops
	// one. Default DefaultMaxMessage (64 MiB).
	MaxMessage int
	// Batch is the number of datagrams per sendmmsg/recvmmsg call. A Reader holds Batch
	// buffers of HeaderSize+MaxPayload bytes (2 MiB by default; pages the kernel never
	// writes are never touched). Default DefaultBatch.
	Batch int
	// MaxBuffered (Writer) bounds the bytes queued for sending; Write and Enqueue return
	// ErrQueueFull beyond it. Default 2*MaxMessage; at least MaxMessage plus headers.
	MaxBuffered int
	// MaxPending (Reader) bounds the bytes held by partly received chunked messages, all
	// senders together. Default 2*MaxMessage; at least MaxMessage.
	MaxPending int
	// NoPacking (Writer) stops the Writer from packing queued small messages into one
	// datagram: each message then takes at least one datagram (and one skb in the kernel).
	// Packing only joins messages that are queued together, so it never delays one.
	NoPacking bool
	// Counters, when set, receives this end's counts, so that several Writers and Readers
	// can share one set. Default: a set of the end's own (see Writer.Counters).
	Counters *Counters
	// OnQueue (Writer) is called each time the send queue goes from empty to non-empty,
	// from the goroutine that queued, with the Writer's lock held: it must not call the
	// Writer. Use it to arm EPOLLOUT (or post a task to the loop that will).
	OnQueue func()
	// OnDrop (Reader) is called, on the reading goroutine, for each datagram or message the
	// Reader drops, with the header it had (possibly zero) and the reason (ErrMalformed,
	// ErrTooLarge, ErrIncomplete, ErrTruncated, ErrReassemblyFull).
	OnDrop func(h Header, err error)
	// Area (Reader), when set, is memory shared with the process that takes over the socket
	// should this one die (a MAP_SHARED mapping of a memfd, at least AreaSize bytes): the
	// Reader receives its first-level batches there and records which message it is
	// handing to fn, so that the next Reader on the same Area delivers what the dead one
	// received and never delivered ([Reader.Resume]).
	Area []byte
}

// withDefaults returns cfg with zero fields set to their defaults, or an error for a value
// out of range.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MaxBuffered == 0 {
		cfg.MaxBuffered = 2 * cfg.MaxMessage
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 2 * cfg.MaxMessage
	}
	if cfg.Counters == nil {
		cfg.Counters = new(Counters)
	}
	var errs []error
	if cfg.MaxPayload < MinMaxPayload || cfg.MaxPayload > MaxMaxPayload {
		errs = append(errs, fmt.Errorf("ipc: MaxPayload %d out of range [%d, %d]", cfg.MaxPayload, MinMaxPayload, MaxMaxPayload))
	}
	if cfg.MaxMessage < 1 || cfg.MaxMessage > 1<<31 {
		errs = append(errs, fmt.Errorf("ipc: MaxMessage %d out of range [1, 2 GiB]", cfg.MaxMessage))
	}
	if cfg.Batch < 1 || cfg.Batch > MaxBatch {
		errs = append(errs, fmt.Errorf("ipc: Batch %d out of range [1, %d]", cfg.Batch, MaxBatch))
	}
	if cfg.MaxMessage > 0 && cfg.MaxPayload >= MinMaxPayload {
		if need := queuedSize(cfg.MaxMessage, cfg.MaxPayload); cfg.MaxBuffered < need {
			errs = append(errs, fmt.Errorf("ipc: MaxBuffered %d is below one largest message (%d bytes with headers)", cfg.MaxBuffered, need))
		}
	}
	if cfg.MaxPending < cfg.MaxMessage {
		errs = append(errs, fmt.Errorf("ipc: MaxPending %d is below MaxMessage %d", cfg.MaxPending, cfg.MaxMessage))
	}
	return cfg, errors.Join(errs...)
}

// queuedSize is the number of bytes a message of n payload bytes takes in a send queue:
// its payload plus a header per datagram plus the length prefix of a chunked message.
func queuedSize(n, maxPayload int) int {
	k := chunkCount(n, maxPayload)
	size := n + k*HeaderSize
	if k > 1 {
		size += prefixSize
	}
	return size
}
