//go:build !linux

package supervisor

// goswoole runs on Linux only (Pdeathsig, /proc/self/exe, inherited descriptors): this line
// stops other platforms at build time with the message "undefined: goswoole_requires_linux".
var _ = goswoole_requires_linux
