package room

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// request is the hub protocol: one JSON object per line each way.
type request struct {
	Op   string  `json:"op"` // "post" or "since"
	Room string  `json:"room"`
	Key  string  `json:"key,omitempty"`
	Msg  Message `json:"msg,omitempty"`
	From int     `json:"from,omitempty"`
	Max  int     `json:"max,omitempty"`
}

type reply struct {
	Msgs []Message `json:"msgs,omitempty"`
	Err  string    `json:"err,omitempty"`
}

// ServeHub answers hub requests on ln from a MemHub until ln closes.
func ServeHub(ln net.Listener, h *MemHub) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			dec, enc := json.NewDecoder(bufio.NewReader(c)), json.NewEncoder(c)
			for {
				var req request
				if err := dec.Decode(&req); err != nil {
					return
				}
				var rep reply
				switch req.Op {
				case "post":
					if err := h.Post(req.Room, req.Key, req.Msg); err != nil {
						rep.Err = err.Error()
					}
				case "since":
					msgs, err := h.Since(req.Room, req.From, min(max(req.Max, 1), 256))
					rep.Msgs = msgs
					if err != nil {
						rep.Err = err.Error()
					}
				default:
					rep.Err = "unknown op"
				}
				if enc.Encode(rep) != nil {
					return
				}
			}
		}()
	}
}

// RemoteHub is a Hub reached over TCP (a "chat hub" process).
type RemoteHub struct {
	Addr string
	mu   sync.Mutex
	c    net.Conn
	dec  *json.Decoder
}

func (r *RemoteHub) call(req request) (reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if r.c == nil {
			c, err := net.DialTimeout("tcp", r.Addr, 2*time.Second)
			if err != nil {
				return reply{}, err
			}
			r.c, r.dec = c, json.NewDecoder(bufio.NewReader(c))
		}
		_ = r.c.SetDeadline(time.Now().Add(5 * time.Second))
		var rep reply
		err := json.NewEncoder(r.c).Encode(req)
		if err == nil {
			err = r.dec.Decode(&rep)
		}
		if err == nil {
			if rep.Err != "" {
				return rep, errors.New(rep.Err)
			}
			return rep, nil
		}
		r.c.Close()
		r.c = nil
	}
	return reply{}, fmt.Errorf("hub %s does not answer", r.Addr)
}

// Post appends a message (see Hub).
func (r *RemoteHub) Post(room, key string, m Message) error {
	_, err := r.call(request{Op: "post", Room: room, Key: key, Msg: m})
	return err
}

// Since reads messages (see Hub).
func (r *RemoteHub) Since(room string, from, max int) ([]Message, error) {
	rep, err := r.call(request{Op: "since", Room: room, From: from, Max: max})
	return rep.Msgs, err
}
