package pool

// How members are judged when sessions are sent to them: by the sessions
// they hold, weighed by how well they serve them. A member whose sessions
// get a small part of the pace the pool's sessions get on average (its
// bytes per second per session, as published) serves slowly: it counts as
// holding as many sessions as it would at the pool's pace. Sessions whose
// pace varies for their own reasons (demand) must not make a member look
// slow, so only a pace well below the pool's counts.
const (
	// slowPace: a member whose sessions get less than this share of the
	// pool's pace per session serves slowly.
	slowPace = 0.5
	// MinPace bounds how slow a member is judged: a member whose sessions
	// went nearly still counts as holding 1/MinPace times its sessions.
	MinPace = 0.05
)

// Paces returns how well each of members serves its sessions: 1 for a
// member whose sessions get the pool's pace per session or near it (or
// that has no sessions, or when no traffic is published), less for a
// member whose sessions get much less (its bytes per second per session
// over the pool's, at least 0.05). The pace is judged among all of
// members, which should include every member that holds sessions.
func Paces(members []Member) []float64 {
	var sessions, rate float64
	for _, m := range members {
		sessions += float64(m.Sessions)
		rate += float64(m.BytesPerSec)
	}
	out := make([]float64, len(members))
	for i, m := range members {
		out[i] = 1
		if m.Sessions == 0 || sessions == 0 || rate == 0 {
			continue
		}
		if p := (float64(m.BytesPerSec) / float64(m.Sessions)) / (rate / sessions); p < slowPace {
			out[i] = max(p, MinPace)
		}
	}
	return out
}

// Loads are the members' loads in sessions, weighed by how they serve
// them (see pace): the sessions of a member that serves them at a tenth of
// the pool's pace weigh ten times. The pace is judged among all of
// members, which should include the local member.
// A member serving at pace p holds its share of the pool's sessions when
// its load is the pool's sessions over the sum of the paces (Fair).
func Loads(members []Member) []float64 {
	p := Paces(members)
	out := make([]float64, len(members))
	for i, m := range members {
		out[i] = float64(m.Sessions) / p[i]
	}
	return out
}

// Spare gives each of loads the share of adding sessions that brings the
// loads closest to level (water filling): every load below the level that
// adding sessions to the lowest ones reaches gets the difference. The
// shares are weights (they sum to adding, or are all equal if adding is
// 0): where no member is loaded, they are equal.
func Spare(loads []float64, adding float64) []float64 { return fill(loads, nil, adding) }

// fill is Spare where a member at paces[i] takes paces[i] sessions per unit
// of load it lacks of the level (nil paces: 1 each): it returns sessions.
func fill(loads, paces []float64, adding float64) []float64 {
	out := make([]float64, len(loads))
	if len(loads) == 0 {
		return out
	}
	if adding <= 0 {
		adding = 1
	}
	pace := func(i int) float64 {
		if paces == nil {
			return 1
		}
		return paces[i]
	}
	// Find the level L with sum(pace × max(0, L-load)) = adding.
	lo, hi := 0.0, 0.0
	for i, l := range loads {
		hi = max(hi, l+adding/pace(i))
	}
	for range 64 {
		mid := (lo + hi) / 2
		sum := 0.0
		for i, l := range loads {
			sum += pace(i) * max(0, mid-l)
		}
		if sum < adding {
			lo = mid
		} else {
			hi = mid
		}
	}
	for i, l := range loads {
		out[i] = pace(i) * max(0, hi-l)
	}
	return out
}

// Fair returns the load at which every one of members holds its share of
// their sessions for the pace it serves them at: their sessions over the
// sum of their paces (paces are the members' Paces). A member at pace p
// holds its share with Fair×p sessions. Draining members count neither
// sessions nor capacity.
func Fair(members []Member, paces []float64) float64 {
	var sessions, capacity float64
	for i, m := range members {
		if m.Draining {
			continue
		}
		sessions += float64(m.Sessions)
		capacity += paces[i]
	}
	if capacity == 0 {
		return 0
	}
	return sessions / capacity
}

// clearlySlow bounds the paces that weigh where sessions go: a member that
// just took many sessions can show half the pool's pace or less for a
// second while they restore, and must not be passed over for it; a member
// at a quarter of the pool's pace or less serves slowly.
const clearlySlow = 0.25

// choicePaces returns the paces that weigh where sessions go, of paces
// (Paces): 1 but for the members whose sessions get a quarter of the
// pool's pace or less.
func choicePaces(paces []float64) []float64 {
	out := make([]float64, len(paces))
	for i, p := range paces {
		out[i] = 1
		if p <= clearlySlow {
			out[i] = p
		}
	}
	return out
}

// spareWeights returns the weights by which sessions sent to members with
// loads (see Loads) and paces are spread: the sessions each takes of
// adding sessions sent so as to bring the lowest loads to one level (a
// member at pace p takes p sessions per unit of load it lacks of it), plus
// its pace so that every member stays possible, a slow one less so.
func spareWeights(loads, paces []float64, adding float64) []float64 {
	w := fill(loads, paces, adding)
	for i := range w {
		w[i] += paces[i]
	}
	return w
}
