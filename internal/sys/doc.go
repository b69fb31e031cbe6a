// Package sys holds goswoole's thin wrappers over Linux system calls: creating, binding and
// tuning sockets. Everything here returns errors wrapped by os.NewSyscallError, so callers can
// read the errno with errors.As.
package sys
