package snapshot

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Store keeps the recent checkpoints of many sessions, newest epoch only:
// a record of an older epoch than the session's newest is refused, which
// fences a server that lost the session.
type Store struct {
	mu     sync.Mutex
	keep   int
	byID   map[[16]byte]*entry
	bytes  int
	maxAll int
}

type entry struct {
	epoch   uint64
	owner   string    // the member that claimed epoch (Claim)
	recs    []*Record // ascending Seq
	touched time.Time // last Put, Claim or End
	ended   bool      // the session ended at epoch: only a newer epoch's records are taken
}

// NewStore returns a store keeping up to keep records per session and at
// most maxBytes of state in all (0: unbounded).
func NewStore(keep, maxBytes int) *Store {
	if keep < 1 {
		keep = 1
	}
	return &Store{keep: keep, byID: make(map[[16]byte]*entry), maxAll: maxBytes}
}

// Put adds r. It fails with ErrStaleEpoch if the session is known at a newer
// epoch, and with ErrTooLarge if the store is full.
func (s *Store) Put(r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[r.Session]
	if e == nil {
		e = &entry{epoch: r.Epoch, owner: r.Origin}
		s.byID[r.Session] = e
	}
	if r.Epoch < e.epoch || (r.Epoch == e.epoch && e.owner != "" && r.Origin != e.owner) {
		return fmt.Errorf("%w: record of epoch %d from %s, session at epoch %d of %s",
			ErrStaleEpoch, r.Epoch, r.Origin, e.epoch, e.owner)
	}
	if e.ended && r.Epoch == e.epoch {
		return fmt.Errorf("%w: record of epoch %d from %s, session ended at that epoch",
			ErrStaleEpoch, r.Epoch, r.Origin)
	}
	e.ended = false
	e.touched = time.Now()
	if r.Epoch > e.epoch || len(e.recs) > 0 && e.recs[0].Epoch < r.Epoch {
		// The new owner's records supersede the older epoch's.
		s.dropLocked(e)
		e.epoch, e.owner = r.Epoch, r.Origin
	}
	if s.maxAll > 0 && s.bytes+len(r.State) > s.maxAll {
		return fmt.Errorf("%w: store holds %d bytes of state", ErrTooLarge, s.bytes)
	}
	i := sort.Search(len(e.recs), func(i int) bool { return e.recs[i].Seq >= r.Seq })
	if i < len(e.recs) && e.recs[i].Seq == r.Seq {
		s.bytes -= len(e.recs[i].State)
		e.recs[i] = r
	} else {
		e.recs = append(e.recs, nil)
		copy(e.recs[i+1:], e.recs[i:])
		e.recs[i] = r
	}
	s.bytes += len(r.State)
	for len(e.recs) > s.keep {
		// The member says which to keep (Retain); meanwhile the oldest go.
		s.bytes -= len(e.recs[0].State)
		e.recs = e.recs[1:]
	}
	return nil
}

// Retain keeps only the session's checkpoints whose sequence numbers
// keep lists (the ones its member may still restore from).
func (s *Store) Retain(session [16]byte, keep []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[session]
	if e == nil {
		return
	}
	out := e.recs[:0]
	for _, r := range e.recs {
		if slices.Contains(keep, r.Seq) {
			out = append(out, r)
		} else {
			s.bytes -= len(r.State)
		}
	}
	clear(e.recs[len(out):])
	e.recs = out
}

func (s *Store) dropLocked(e *entry) {
	for _, r := range e.recs {
		s.bytes -= len(r.State)
	}
	e.recs = nil
}

// Claim makes owner the holder of the session at epoch: from then on,
// records of an older epoch, or of epoch from another member, are refused.
// The records held stay (they are still the newest data known) until the
// owner's own arrive. A claim of an older epoch, or of the same epoch by
// another member, fails with ErrStaleEpoch.
func (s *Store) Claim(session [16]byte, epoch uint64, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[session]
	if e == nil {
		s.byID[session] = &entry{epoch: epoch, owner: owner, touched: time.Now()}
		return nil
	}
	if epoch < e.epoch || (epoch == e.epoch && e.owner != "" && e.owner != owner) {
		return fmt.Errorf("%w: claim of epoch %d by %s, session at epoch %d of %s",
			ErrStaleEpoch, epoch, owner, e.epoch, e.owner)
	}
	if e.ended && epoch == e.epoch {
		return fmt.Errorf("%w: claim of epoch %d by %s, session ended at that epoch", ErrStaleEpoch, epoch, owner)
	}
	e.epoch, e.owner, e.touched, e.ended = epoch, owner, time.Now(), false
	return nil
}

// End records that the session ended at epoch on member by: its records
// go, and what is remembered of it is a fence: records and claims of epoch
// or older are refused until Sweep forgets the session (a member that lost
// the session while cut off must still find out it is not its anymore).
// An End of an older epoch than the newest known, or of that epoch by
// another member than its owner, is ignored: a member that lost the session
// cannot drop the copies of the one that has it.
func (s *Store) End(session [16]byte, epoch uint64, by string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[session]
	if e == nil {
		e = &entry{epoch: epoch, owner: by}
		s.byID[session] = e
	}
	if epoch < e.epoch || (epoch == e.epoch && e.owner != "" && e.owner != by) {
		return
	}
	s.dropLocked(e)
	e.epoch, e.owner, e.ended, e.touched = epoch, by, true, time.Now()
}

// Sweep forgets the sessions not touched since before.
func (s *Store) Sweep(before time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, e := range s.byID {
		if e.touched.Before(before) {
			s.dropLocked(e)
			delete(s.byID, id)
			n++
		}
	}
	return n
}

// Epoch returns the newest epoch known for the session (0 if unknown).
func (s *Store) Epoch(session [16]byte) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID[session]; e != nil {
		return e.epoch
	}
	return 0
}

// Records returns the session's records, oldest first.
func (s *Store) Records(session [16]byte) []*Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[session]
	if e == nil {
		return nil
	}
	return append([]*Record(nil), e.recs...)
}

// Delete forgets the session.
func (s *Store) Delete(session [16]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID[session]; e != nil {
		s.dropLocked(e)
		delete(s.byID, session)
	}
}

// Len returns the number of sessions held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}
