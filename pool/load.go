package pool

import (
	"fmt"
	"time"
)

// SetLoad updates the local member's load. It returns at once; the change
// is gossiped in the background, at most once per interval of the profile
// (100 ms for ProfileLocal, 250 ms for ProfileLAN, 1 s for ProfileWAN),
// later changes folding into earlier ones. Negative sessions count as 0.
func (p *Pool) SetLoad(sessions int, bytesPerSec uint64) {
	sessions = min(max(sessions, 0), maxSessions)
	p.mu.Lock()
	changed := p.local.Sessions != sessions || p.local.BytesPerSec != bytesPerSec
	p.local.Sessions = sessions
	p.local.BytesPerSec = bytesPerSec
	if changed {
		p.sorted = nil
	}
	p.mu.Unlock()
	if !changed {
		return
	}
	p.changedNow()
	select {
	case p.loadDirty <- struct{}{}:
	default:
	}
}

// SetDraining marks the local member as draining (or no longer draining)
// and gossips it at once, waiting a short time set by the profile for the
// news to go out. On a timeout the change still spreads, and the error
// says so. After Leave the change stays local.
func (p *Pool) SetDraining(draining bool) error {
	if p.closed.Load() {
		return ErrClosed
	}
	p.mu.Lock()
	changed := p.local.Draining != draining
	p.local.Draining = draining
	p.sorted = nil
	p.mu.Unlock()
	if !changed {
		return nil
	}
	p.topology.Add(1)
	p.changedNow()
	if err := p.publish(p.timings.updateWait); err != nil {
		return fmt.Errorf("pool: gossip draining=%t: %w", draining, err)
	}
	return nil
}

// loadLoop gossips load changes, waiting loadEvery after each.
func (p *Pool) loadLoop() {
	defer p.wg.Done()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.loadDirty:
		}
		// Queue the broadcast without waiting for it to go out: the next
		// gossip rounds carry it. The only error is that wait running out.
		_ = p.publish(time.Nanosecond)
		pause.Reset(p.timings.loadEvery)
		select {
		case <-p.done:
			return
		case <-pause.C:
		}
	}
}

// publish re-reads the local metadata into memberlist, which gossips it,
// and waits up to wait for the broadcast to go out. It does nothing after
// Leave or Shutdown.
func (p *Pool) publish(wait time.Duration) error {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	if p.closed.Load() || p.left.Load() {
		return nil
	}
	return p.ml.UpdateNode(wait)
}
