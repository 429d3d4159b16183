package pool

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Replicas returns up to n members to hold copies for key, chosen by
// rendezvous (highest random weight) hashing among the alive, non-draining
// members other than the local one and those named in exclude. The choice
// depends only on key and on that set of candidates, so members that see
// the same pool choose alike, and a member's arrival or departure moves
// only the keys whose choice it enters or leaves. The result is ordered by
// rank, best first.
func (p *Pool) Replicas(key string, n int, exclude ...string) []Member {
	if n <= 0 {
		return nil
	}
	return rendezvous(key, n, p.candidates(exclude, p.name))
}

// LeastLoaded returns the alive, non-draining member with the fewest
// sessions, ties going to the smallest Name, leaving out the members named
// in exclude. The local member is a candidate unless excluded.
func (p *Pool) LeastLoaded(exclude ...string) (Member, bool) {
	c := p.candidates(exclude, "")
	if len(c) == 0 {
		return Member{}, false
	}
	return slices.MinFunc(c, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Sessions, b.Sessions), strings.Compare(a.Name, b.Name))
	}), true
}

// Topology counts the changes of the pool other than load: members joining,
// leaving or dying (and coming back), addresses, draining. Replica sets
// and other choices over the members can change only when it does.
func (p *Pool) Topology() uint64 { return p.topology.Load() }

// Eligible returns the alive members that take sessions and copies (not
// draining), leaving out those named in exclude, sorted by name.
func (p *Pool) Eligible(exclude ...string) []Member { return p.candidates(exclude, "") }

// candidates returns the alive, non-draining members not named in exclude
// nor called also.
func (p *Pool) candidates(exclude []string, also string) []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := p.sortedLocked()
	out := make([]Member, 0, len(all))
	for _, m := range all {
		if m.eligible() && m.Name != also && !slices.Contains(exclude, m.Name) {
			out = append(out, m)
		}
	}
	return out
}

// rendezvous returns the n members with the highest weights for key, best
// first; equal weights go to the smaller Name. It reorders members.
func rendezvous(key string, n int, members []Member) []Member {
	type ranked struct {
		w uint64
		m Member
	}
	r := make([]ranked, len(members))
	for i, m := range members {
		r[i] = ranked{w: weight(key, m.Name), m: m}
	}
	slices.SortFunc(r, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.w, a.w), strings.Compare(a.m.Name, b.m.Name))
	})
	out := make([]Member, 0, min(n, len(r)))
	for _, x := range r[:min(n, len(r))] {
		out = append(out, x.m)
	}
	return out
}

// weight is the rendezvous weight of member name for key: 64-bit FNV-1a
// over the length-prefixed name and the key, then a splitmix64 finaliser
// so that close inputs give unrelated weights. It is fixed: every member
// must compute the same weights.
func weight(key, name string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for l, i := uint64(len(name)), 0; i < 8; l, i = l>>8, i+1 {
		h = (h ^ (l & 0xff)) * prime
	}
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Pick returns an alive, non-draining member other than those named in
// exclude, chosen at random weighted by its spare capacity (Choose):
// members that hold fewer sessions, or serve theirs better, are likelier.
// Many members (or clients) choosing from the same view at once spread
// their sessions instead of all sending them to the one least loaded.
func (p *Pool) Pick(exclude ...string) (Member, bool) {
	all := p.Members()
	i := Choose(all, Paces(all), func(i int) bool {
		return all[i].eligible() && !slices.Contains(exclude, all[i].Name)
	}, random.Float64)
	if i < 0 {
		return Member{}, false
	}
	return all[i], true
}

// Choose returns the index in members of a member to send a session to,
// among those candidate accepts (-1 if none does): at random (draw is
// uniform in [0, 1)), weighted by spare capacity, so that many choosing
// from the same view at once spread their sessions over the members in
// proportion to what each lacks of an even share, instead of all choosing
// the least loaded one, and few choose a member that serves slowly. paces
// are the members' Paces, judged among all of members. Only a pace of a
// quarter of the pool's or less weighs (a member that just took many
// sessions shows a low pace while they restore): such a member counts as
// holding its sessions over its pace, and takes that pace's part of what
// a member at full pace would.
//
// As many sessions as members hold per candidate may come (all those of
// a member that its clients leave): each candidate's spare capacity is
// what it lacks, in sessions, of the level that brings the candidates to.
// The sessions that come are counted as they are, not over the pace of
// the member they leave: they will be served at the pace of the member
// they go to.
func Choose(members []Member, paces []float64, candidate func(i int) bool, draw func() float64) int {
	cp := choicePaces(paces)
	var idx []int
	var cl, cw []float64
	total := 0.0
	for i, m := range members {
		total += float64(m.Sessions)
		if candidate(i) {
			idx = append(idx, i)
			cl = append(cl, float64(m.Sessions)/cp[i])
			cw = append(cw, cp[i])
		}
	}
	if len(idx) == 0 {
		return -1
	}
	w := spareWeights(cl, cw, max(1, total/float64(len(idx))))
	return idx[weightedPick(w, draw)]
}

// weightedPick returns an index of weights chosen at random (draw is
// uniform in [0, 1)) with probability proportional to its weight (uniform
// if all are zero), or -1 for none.
func weightedPick(weights []float64, draw func() float64) int {
	if len(weights) == 0 {
		return -1
	}
	total := 0.0
	for _, w := range weights {
		total += w
	}
	if total <= 0 {
		return min(int(draw()*float64(len(weights))), len(weights)-1)
	}
	x := draw() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// random draws from the runtime's generator, which is safe for concurrent
// use: a Rand over it has no state of its own.
var random = rand.New(runtimeSource{})

type runtimeSource struct{}

func (runtimeSource) Uint64() uint64 { return rand.Uint64() }

// Placement names the members that would hold copies of the session keyed
// key now (Replicas(key, n)), each with the join it is in, in order of
// name: a member that left the view and came back, or came back at other
// addresses, is another placement, as the copies it held may be gone.
// Copies compares it with where the copies were placed to tell whether a
// change of the pool calls for copying them again.
func (p *Pool) Placement(key string, n int) string {
	ms := p.Replicas(key, n)
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.placementLocked(names)
}

// placedAt names the members called names as Placement does, if no member
// joined since Joins said joins ("" otherwise: which join holds a copy
// sent meanwhile is not known).
func (p *Pool) placedAt(names []string, joins uint64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.joinSeq.Load() != joins {
		return ""
	}
	return p.placementLocked(names)
}

// placementLocked (p.mu held) names members as Placement does.
func (p *Pool) placementLocked(names []string) string {
	names = slices.Sorted(slices.Values(names))
	var b []byte
	for i, name := range names {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, name...)
		b = append(b, '#')
		b = strconv.AppendUint(b, p.joins[name], 10)
	}
	return string(b)
}

// Joins counts the joins of members so far (each under the pool's lock,
// with the member's join number).
func (p *Pool) Joins() uint64 { return p.joinSeq.Load() }
