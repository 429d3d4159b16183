package pool

// drainPlan spreads a draining member's sessions over the members that
// take them, in proportion to their spare capacity: what each lacks of the
// level their loads (sessions weighed by how they serve them, see Loads)
// reach once they hold the sessions moved. Consecutive sessions go to
// different members (smooth weighted round robin), so that the moves under
// way at any time are spread too, not all sent to one member first.
type drainPlan struct {
	targets []Member
	weight  []float64
	credit  []float64
	total   float64
}

// planDrain plans moving sessions away from the member called self, over
// the eligible members among members.
func planDrain(members []Member, self string, sessions int) *drainPlan {
	loads := Loads(members)
	p := &drainPlan{}
	var tl []float64
	for i, m := range members {
		if m.Name != self && m.eligible() {
			p.targets = append(p.targets, m)
			tl = append(tl, loads[i])
		}
	}
	p.weight = Spare(tl, float64(sessions))
	p.credit = make([]float64, len(p.targets))
	for _, w := range p.weight {
		p.total += w
	}
	if p.total == 0 { // nothing to add: equal shares
		for i := range p.weight {
			p.weight[i] = 1
		}
		p.total = float64(len(p.weight))
	}
	return p
}

// next returns the member the next session goes to.
func (p *drainPlan) next() (Member, bool) {
	if len(p.targets) == 0 {
		return Member{}, false
	}
	best := -1
	for i, w := range p.weight {
		p.credit[i] += w
		if w > 0 && (best < 0 || p.credit[i] > p.credit[best]) {
			best = i
		}
	}
	if best < 0 {
		best = 0
	}
	p.credit[best] -= p.total
	return p.targets[best], true
}
