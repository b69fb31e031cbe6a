//go:build !linux

package ipc

// goswoole runs on Linux only (sendmmsg, recvmmsg, AF_UNIX datagram pairs): this line stops
// other platforms at build time with the message "undefined: goswoole_requires_linux".
var _ = goswoole_requires_linux
