//go:build !linux

package pidfile

// goswoole runs on Linux only (flock, O_NOFOLLOW): this line stops other platforms at build
// time with the message "undefined: goswoole_requires_linux".
var _ = goswoole_requires_linux
