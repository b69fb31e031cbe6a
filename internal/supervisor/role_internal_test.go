//go:build linux

package supervisor

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestRoleString(t *testing.T) {
	for _, tc := range []struct {
		name string
		role Role
		want string
	}{
		{name: "master", role: Role{Kind: KindMaster}, want: "master"},
		{name: "manager ignores id", role: Role{Kind: KindManager, ID: 4}, want: "manager"},
		{name: "worker", role: Role{Kind: KindWorker, ID: 3}, want: "worker:3"},
		{name: "task", role: Role{Kind: KindTaskWorker, ID: 1}, want: "task:1"},
		{name: "process", role: Role{Kind: KindUserProcess}, want: "process:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.role.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			back, err := ParseRole(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if back.String() != tc.want {
				t.Fatalf("ParseRole(%q) = %+v", tc.want, back)
			}
		})
	}
}

func TestParseRoleErrors(t *testing.T) {
	for _, s := range []string{"", "worker", "worker:", "worker:-1", "worker:x", "boss:1", ":1", "task"} {
		if r, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) = %+v, want an error", s, r)
		}
	}
	if r, err := ParseRole("manager:0"); err != nil || r != (Role{Kind: KindManager}) {
		t.Errorf("ParseRole(manager:0) = %+v, %v", r, err)
	}
}

func TestFilesApply(t *testing.T) {
	a, b, c := os.Stdin, os.Stdout, os.Stderr
	cmd := &exec.Cmd{ExtraFiles: []*os.File{a}}
	fds, err := Files{"zeta": a, "alpha": b, "mid": c}.apply(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if fds != "alpha=4,mid=5,zeta=6" {
		t.Errorf("fds = %q", fds)
	}
	if !slices.Equal(cmd.ExtraFiles, []*os.File{a, b, c, a}) {
		t.Errorf("ExtraFiles out of order")
	}
	if got := parseFDs(fds + ",bad,x=1,=4,y=z"); len(got) != 3 || got["alpha"] != 4 || got["mid"] != 5 || got["zeta"] != 6 {
		t.Errorf("parseFDs = %v", got)
	}
	for _, bad := range []Files{{"": a}, {"a=b": a}, {"a,b": a}, {"x": nil}} {
		if _, err := bad.apply(&exec.Cmd{}); err == nil {
			t.Errorf("apply(%v) accepted", bad)
		}
	}
}

func TestChildEnv(t *testing.T) {
	base := []string{"PATH=/bin", EnvRole + "=worker:1", EnvFDs + "=x=3", "HOME=/root", EnvGen + "=4", EnvParentPID + "=1"}
	got := childEnv(base, []string{"EXTRA=1"}, EnvRole+"=task:2", EnvGen+"=0")
	want := []string{"PATH=/bin", "HOME=/root", "EXTRA=1", EnvRole + "=task:2", EnvGen + "=0"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}

func TestNotAChild(t *testing.T) {
	// The test process itself was not spawned: no role, no inherited files.
	if r, ok := Current(); ok {
		t.Fatalf("Current() = %v in the test process", r)
	}
	if _, ok := Inherited(LifelineName); ok {
		t.Fatal("Inherited found a lifeline in the test process")
	}
	if err := WatchLifeline(nil); err != ErrNoLifeline {
		t.Fatalf("WatchLifeline = %v, want ErrNoLifeline", err)
	}
	if Generation() != 0 || ParentPID() != 0 {
		t.Fatal("Generation/ParentPID not zero outside a child")
	}
}
