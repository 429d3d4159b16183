package pool

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger returns a standard logger, as memberlist takes, that
// passes every line to l at debug level. memberlist's own level ("DEBUG",
// "INFO", "WARN", "ERR") goes along as the attribute memberlist_level.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&memberlistWriter{l: l}, "", 0)
}

// memberlistWriter receives one formatted line per Write from log.Logger.
type memberlistWriter struct {
	l *slog.Logger
}

func (w *memberlistWriter) Write(p []byte) (int, error) {
	ctx := context.Background()
	if !w.l.Enabled(ctx, slog.LevelDebug) {
		return len(p), nil
	}
	line := bytes.TrimRight(p, "\r\n")
	level := ""
	if len(line) > 0 && line[0] == '[' {
		if end := bytes.IndexByte(line, ']'); end > 0 {
			level = string(line[1:end])
			line = bytes.TrimLeft(line[end+1:], " ")
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	w.l.LogAttrs(ctx, slog.LevelDebug, string(line),
		slog.String("component", "memberlist"),
		slog.String("memberlist_level", level))
	return len(p), nil
}
