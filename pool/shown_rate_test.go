package pool

import "testing"

// TestShownRateMovesInSteps: clients are shown a new rate only once it
// moved by more than a quarter and more than a trickle.
func TestShownRateMovesInSteps(t *testing.T) {
	for _, tc := range []struct{ shown, now, want uint64 }{
		{0, 0, 0},
		{0, 1000, 0},             // a trickle
		{0, 5000, 5000},          // traffic starts
		{100000, 120000, 100000}, // a fifth: kept
		{100000, 140000, 140000}, // more than a quarter of the larger
		{100000, 80000, 100000},
		{100000, 70000, 70000},
		{5000, 0, 0}, // traffic stops
		{1500, 600, 1500},
	} {
		if got := shownRate(tc.shown, tc.now); got != tc.want {
			t.Errorf("shownRate(%d, %d) = %d, want %d", tc.shown, tc.now, got, tc.want)
		}
	}
}
