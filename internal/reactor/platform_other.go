//go:build !linux

package reactor

// goswoole runs on Linux only (epoll, eventfd, memfd): this line stops other platforms at
// build time with the message "undefined: goswoole_requires_linux".
var _ = goswoole_requires_linux
