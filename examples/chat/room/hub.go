// Package room is the chat of the mtcp examples: a hub that keeps each
// room's messages in an append-only log, and the chat server application
// that pool members run for each client. A session's state is the client's
// nickname, room and position in the room's log; a member that takes the
// session over goes on from there, so no message is lost or shown twice.
package room

import (
	"sync"
)

// Message is one line of a room's log.
type Message struct {
	Nick string `json:"nick"`
	Text string `json:"text"`
}

// Hub is where the rooms' logs live. Members of a pool share one.
type Hub interface {
	// Post appends a message to a room, once: a second post with the same
	// key (a session and a position in its input) is ignored.
	Post(room, key string, m Message) error
	// Since returns the room's messages from index from on (at most max).
	Since(room string, from, max int) ([]Message, error)
}

// MemHub is a Hub in memory, for one process (tests, the demo) or as the
// store of a hub server.
type MemHub struct {
	mu    sync.Mutex
	rooms map[string][]Message
	keys  map[string]bool
}

// NewMemHub returns an empty hub.
func NewMemHub() *MemHub { return &MemHub{rooms: map[string][]Message{}, keys: map[string]bool{}} }

// Post appends m to room unless key was posted already.
func (h *MemHub) Post(room, key string, m Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := room + "\x00" + key
	if h.keys[k] {
		return nil
	}
	h.keys[k] = true
	h.rooms[room] = append(h.rooms[room], m)
	return nil
}

// Since returns the messages of room from index from.
func (h *MemHub) Since(room string, from, max int) ([]Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	log := h.rooms[room]
	if from >= len(log) {
		return nil, nil
	}
	end := min(len(log), from+max)
	return append([]Message(nil), log[from:end]...), nil
}
