package room

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Conn is what the chat server needs of an mtcp session.
type Conn interface {
	net.Conn
	SessionID() string
	Checkpoint(state []byte) error
	State() []byte
}

// state is a session's checkpointed state.
type state struct {
	Nick    string `json:"nick"`
	Room    string `json:"room"`
	Pos     int    `json:"pos"`     // next message of the room's log to show
	In      int64  `json:"in"`      // input bytes consumed: keys posts, so a replay posts nothing twice
	Pending []byte `json:"pending"` // input of a line not finished yet
}

// poll is how long the server waits for input before it looks for new
// messages again.
const poll = 50 * time.Millisecond

// Serve runs one client's chat: the first line is "JOIN <nick> <room>",
// every later line is a message to the room, and every message of the room
// (the client's own included) is written back as "<nick>: <text>\n". All
// of it happens on one goroutine, so that each checkpoint covers exactly
// the input read and the output written.
func Serve(c Conn, hub Hub) error {
	defer c.Close()
	var st state
	if b := c.State(); b != nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("restoring: %w", err)
		}
	}
	buf := make([]byte, 4096)
	for {
		wrote, err := deliver(c, hub, &st)
		if err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(poll))
		n, rerr := c.Read(buf)
		if n > 0 {
			if err := consume(c, hub, &st, buf[:n]); err != nil {
				return err
			}
		}
		if n > 0 || wrote {
			if err := checkpoint(c, &st); err != nil {
				return err
			}
		}
		if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
			return rerr
		}
	}
}

// deliver writes the room's new messages.
func deliver(c Conn, hub Hub, st *state) (bool, error) {
	if st.Room == "" {
		return false, nil
	}
	msgs, err := hub.Since(st.Room, st.Pos, 64)
	if err != nil || len(msgs) == 0 {
		return false, err
	}
	var out bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&out, "%s: %s\n", m.Nick, m.Text)
	}
	if _, err := c.Write(out.Bytes()); err != nil {
		return false, err
	}
	st.Pos += len(msgs)
	return true, nil
}

// consume handles input: complete lines are commands or messages.
func consume(c Conn, hub Hub, st *state, p []byte) error {
	st.Pending = append(st.Pending, p...)
	for {
		i := bytes.IndexByte(st.Pending, '\n')
		if i < 0 {
			if len(st.Pending) > 4096 {
				return errors.New("line too long")
			}
			return nil
		}
		line := strings.TrimRight(string(st.Pending[:i]), "\r")
		key := fmt.Sprintf("%s/%d", c.SessionID(), st.In)
		st.In += int64(i + 1)
		st.Pending = st.Pending[i+1:]
		if st.Room == "" {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "JOIN" {
				_, _ = fmt.Fprintf(c, "ERR first say JOIN <nick> <room>\n")
				return errors.New("no JOIN")
			}
			st.Nick, st.Room = f[1], f[2]
			if err := hub.Post(st.Room, key, Message{Nick: "*", Text: st.Nick + " joins"}); err != nil {
				return err
			}
			continue
		}
		if err := hub.Post(st.Room, key, Message{Nick: st.Nick, Text: line}); err != nil {
			return err
		}
	}
}

func checkpoint(c Conn, st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return c.Checkpoint(b)
}
