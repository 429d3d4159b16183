package pool

import (
	"cmp"
	"slices"
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
	all := p.Members()
	out := all[:0]
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
