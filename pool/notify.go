package pool

// changedNow asks for an OnChange call, folding into one already pending.
func (p *Pool) changedNow() {
	if p.onChange == nil {
		return
	}
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// notifyLoop calls OnChange, one call at a time, outside every lock.
func (p *Pool) notifyLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-p.changed:
			p.onChange()
		}
	}
}
