package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/migratory/mtcp"
)

// loss is what a lost session was lost to.
type loss int

const (
	// lossOther: nothing the pool promises to survive explains it.
	lossOther loss = iota
	// lossDouble: its member and every member holding copies of its
	// checkpoints were killed before it could move: lost by design.
	lossDouble
	// lossNoCopy: its member was killed before any other member held a
	// copy of its checkpoints: one crash lost it (a new session, in the
	// moments before its first copy was placed).
	lossNoCopy
)

// classify tells what a session lost at lostAt with err was lost to. The
// members say what they hold just before they are killed (see fleet.kill):
// the member that held it last and where its copies were. The verdict rests
// on that, not on the client's error, which only has to be the want of a
// member to resume at. It returns the verdict and the story, for the
// summary.
func (f *fleet) classify(id string, lostAt time.Time, err error) (loss, string) {
	if !errors.Is(err, mtcp.ErrResumeTimeout) && !errors.Is(err, mtcp.ErrUnknownSession) {
		return lossOther, "the session did not fail for want of a member to resume at"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The member that held it last: the last killed that said it held it.
	var last string
	var lastDeath death
	for name, d := range f.deaths {
		if _, ok := d.held[id]; ok && d.at.Before(lostAt) && (last == "" || d.at.After(lastDeath.at)) {
			last, lastDeath = name, d
		}
	}
	if last == "" {
		return lossOther, "no member killed before the loss said it held the session"
	}
	if s, ok := f.started[id]; ok && s.member != last && s.at.After(lastDeath.at) {
		return lossOther, fmt.Sprintf("%s started it after %s was killed", s.member, last)
	}
	replicas := lastDeath.held[id]
	if len(replicas) == 0 {
		return lossNoCopy, fmt.Sprintf("held by %s (killed at %s) without a copy on another member", last, f.since(lastDeath.at))
	}
	story := []string{fmt.Sprintf("held by %s (killed at %s)", last, f.since(lastDeath.at))}
	for _, r := range replicas {
		d, ok := f.deaths[r]
		if !ok || !d.at.Before(lostAt) {
			return lossOther, fmt.Sprintf("held by %s (killed at %s), its copies on %s, alive", last, f.since(lastDeath.at), r)
		}
		story = append(story, fmt.Sprintf("copies on %s (killed at %s)", r, f.since(d.at)))
	}
	return lossDouble, strings.Join(story, ", ")
}

// since is a time of the run, from its start.
func (f *fleet) since(t time.Time) string {
	return "+" + t.Sub(f.began).Round(time.Millisecond).String()
}

// unreported lists the killed members that did not answer the status
// request before they died (their sessions cannot be judged).
func (f *fleet) unreported() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name, d := range f.deaths {
		if !d.reported {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
