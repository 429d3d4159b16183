package pool

// Clients are shown each member's rate (MEMBERS), but not every change of
// it: a rate measured each second wobbles, and every new MEMBERS frame goes
// to every session of the member. A shown rate is replaced only once the
// measured one moved from it by more than a quarter (of the larger) and by
// more than a trickle.
const (
	rateStep    = 4    // a change of more than 1/rateStep is shown
	rateTrickle = 1024 // bytes per second: changes this small are not shown
)

// shownRate returns the rate to show clients for a member whose measured
// rate is now, when shown was shown so far.
func shownRate(shown, now uint64) uint64 {
	d := max(shown, now) - min(shown, now)
	if d <= rateTrickle || d <= max(shown, now)/rateStep {
		return shown
	}
	return now
}
