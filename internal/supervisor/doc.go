// Package supervisor is goswoole's process tree: roles, re-exec with inherited files, and
// the manager loop that starts, reaps, restarts and reloads children.
package supervisor
