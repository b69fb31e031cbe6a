//go:build linux

package sys

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ancillary data on AF_UNIX sockets: SCM_RIGHTS (descriptors passed with a message) and
// SCM_CREDENTIALS (the sender's pid, uid and gid, filled in by the kernel for a receiver
// that set SO_PASSCRED). These helpers build and read the control buffer of sendmsg and
// recvmsg without allocating.

// MaxRights is the largest number of descriptors ParseControl returns from one message;
// ControlSpace leaves room for that many.
const MaxRights = 4

// RightsSpace is the control buffer size for one SCM_RIGHTS message carrying n descriptors.
func RightsSpace(n int) int { return unix.CmsgSpace(4 * n) }

// ControlSpace is the control buffer size a receiver needs for MaxRights descriptors and
// one SCM_CREDENTIALS message. Descriptors past what fits are closed by the kernel, which
// sets MSG_CTRUNC.
func ControlSpace() int { return RightsSpace(MaxRights) + unix.CmsgSpace(unix.SizeofUcred) }

// PutRights writes one SCM_RIGHTS control message carrying fd into b, which must hold
// RightsSpace(1) bytes, and returns the message's length (msg_controllen).
func PutRights(b []byte, fd int) int {
	n := RightsSpace(1)
	_ = b[n-1]
	clear(b[:n])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_SOCKET
	h.Type = unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(int32(fd)))
	return n
}

// Control is what ParseControl found in a received control buffer.
type Control struct {
	FDs  [MaxRights]int // the descriptors received (SCM_RIGHTS), FDs[:NFD]
	NFD  int
	More bool // more descriptors than MaxRights arrived: FDs holds the first ones
	Cred bool // an SCM_CREDENTIALS message arrived: PID, UID, GID are the sender's
	PID  int32
	UID  uint32
	GID  uint32
}

// ParseControl reads the control messages in b (msg_control, msg_controllen bytes as the
// kernel returned them). Every descriptor it reports is the caller's to close, also those
// the caller does not want; a malformed buffer ends the parse (what came before is kept).
func ParseControl(b []byte) Control {
	var c Control
	hs := unix.CmsgLen(0)
	for off := 0; off+unix.SizeofCmsghdr <= len(b); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
		l := int(h.Len)
		if l < hs || off+l > len(b) {
			break
		}
		data := b[off+hs : off+l]
		if h.Level == unix.SOL_SOCKET {
			switch h.Type {
			case unix.SCM_RIGHTS:
				for i := 0; i+4 <= len(data); i += 4 {
					fd := int(int32(binary.NativeEndian.Uint32(data[i:])))
					if c.NFD < MaxRights {
						c.FDs[c.NFD] = fd
						c.NFD++
					} else {
						// Not reported: close it here, so that no descriptor is lost.
						unix.Close(fd)
						c.More = true
					}
				}
			case unix.SCM_CREDENTIALS:
				if len(data) >= unix.SizeofUcred {
					c.Cred = true
					c.PID = int32(binary.NativeEndian.Uint32(data[0:]))
					c.UID = binary.NativeEndian.Uint32(data[4:])
					c.GID = binary.NativeEndian.Uint32(data[8:])
				}
			}
		}
		off += unix.CmsgSpace(l - hs)
	}
	return c
}

// CloseFDs closes the descriptors c holds and forgets them.
func (c *Control) CloseFDs() {
	for _, fd := range c.FDs[:c.NFD] {
		unix.Close(fd)
	}
	c.NFD = 0
}
