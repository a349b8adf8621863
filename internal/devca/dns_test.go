package devca

import "testing"

// TestFreePortsNeverRepeat: calls one after another never return a port
// an earlier call returned, although the earlier caller may not have bound
// it yet (TestClusterServe once gave two nodes the same HTTPS port).
func TestFreePortsNeverRepeat(t *testing.T) {
	seen := map[int]bool{}
	for range 1500 {
		ports, err := FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		if seen[ports[0]] {
			t.Fatalf("port %d handed out twice (after %d calls)", ports[0], len(seen))
		}
		seen[ports[0]] = true
	}
}
