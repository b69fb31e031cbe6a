package buffer

import "testing"

func TestGetPutClasses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, capN int
	}{
		{"tiny", 1, 512},
		{"exact", 512, 512},
		{"over", 513, 1024},
		{"64k", 65536, 65536},
		{"largest", 4 << 20, 4 << 20},
		{"huge", 4<<20 + 1, 4<<20 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Get(tc.n)
			if len(b) != tc.n || cap(b) != tc.capN {
				t.Fatalf("Get(%d): len %d cap %d, want cap %d", tc.n, len(b), cap(b), tc.capN)
			}
			Put(b)
		})
	}
}

func TestGetPutNoAlloc(t *testing.T) {
	Put(Get(4096))
	if a := testing.AllocsPerRun(1000, func() { Put(Get(4096)) }); a > 0 {
		t.Fatalf("Get/Put allocates %.1f times", a)
	}
}
