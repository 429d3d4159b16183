package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/migratory/mtcp"
)

// TestClassifyLosses: a lost session counts as a double failure only when
// the member that held it last and every member holding its copies were
// killed, as they said just before they died, and it failed for want of a
// member to resume at; one whose member had no copy anywhere is counted
// apart.
func TestClassifyLosses(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	timeout := fmt.Errorf("%w after 30s: connection refused", mtcp.ErrResumeTimeout)
	fl := newFleet(config{})
	fl.began = t0
	fl.deaths = map[string]death{
		"c0": {at: at(10), reported: true, held: map[string][]string{"s1": {"c1"}, "s2": {"c2"}, "s3": nil, "s5": {"c1"}}},
		"c1": {at: at(11), reported: true, held: map[string][]string{"s4": {"c0"}}},
		"c4": {at: at(12), reported: true, held: map[string][]string{"s5": {"c1"}}},
	}
	fl.started = map[string]start{
		"s1": {member: "c0", at: at(1)},
		"s5": {member: "c4", at: at(11)},
		"s6": {member: "c3", at: at(11)},
	}
	for _, tc := range []struct {
		id     string
		lostAt time.Time
		err    error
		want   loss
	}{
		{"s1", at(40), timeout, lossDouble},         // c0 and its replica c1 killed
		{"s1", at(40), mtcp.ErrDiverged, lossOther}, // another reason
		{"s1", at(10), timeout, lossOther},          // lost before c1 was killed
		{"s2", at(40), timeout, lossOther},          // its replica c2 lives
		{"s3", at(40), timeout, lossNoCopy},         // no copy anywhere: one crash lost it
		{"s4", at(40), timeout, lossDouble},         // c1 and its replica c0 killed (before it)
		{"s5", at(40), timeout, lossDouble},         // restored on c4 with copies on c1: both killed
		{"s6", at(40), timeout, lossOther},          // no killed member held it
	} {
		got, story := fl.classify(tc.id, tc.lostAt, tc.err)
		if got != tc.want {
			t.Errorf("%s lost at %s (%v): %v, want %v (%s)", tc.id, fl.since(tc.lostAt), tc.err, got, tc.want, story)
		}
	}
	// A session restored on a live member after its member was killed is
	// not lost to the kill.
	fl.started["s1"] = start{member: "c3", at: at(12)}
	if got, story := fl.classify("s1", at(40), timeout); got != lossOther {
		t.Errorf("s1 restored on c3: counted as a double failure (%s)", story)
	}
}
