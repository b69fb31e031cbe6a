//go:build linux

package conntable

// ReleaseOwnedBy releases every slot whose OwnerPID is pid, as their owner would have: it is
// for the parent of a process that died (SIGKILL, crash) while it still owned sessions, so
// that they do not stay "open" in every reader's eyes for ever. Call it only once pid has
// exited (reaped): the owner must be gone, since it is the one writer of its slots. It
// returns the number of slots that were open or closing (live sessions) and the number that
// were only reserved.
func (t *Table) ReleaseOwnedBy(pid int32) (live, reserved int) {
	if pid <= 0 {
		return 0, 0
	}
	for i := range t.slots {
		s := &t.slots[i]
		if s.OwnerPID.Load() != pid {
			continue
		}
		switch s.State.Load() {
		case StateOpen, StateClosing:
			live++
		case StateReserved:
			reserved++
		default:
			continue
		}
		t.Release(s)
	}
	return live, reserved
}
