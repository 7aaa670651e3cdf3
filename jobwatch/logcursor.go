package jobwatch

import (
	"bytes"
	"time"
)

// logCursor remembers how far one container's log has been written, so
// that a stream reopened after a drop neither loses nor repeats a line.
//
// The API's sinceTime has whole-second resolution, so a reopened stream
// starts at the second of the last line written and repeats what came
// after it within that second. Each line carries its full timestamp
// (timestamps=true); lines before the last timestamp are dropped, and of
// the lines at exactly that timestamp, as many as were written already.
type logCursor struct {
	since time.Time // lines at or before it are skipped (WaitOptions.LogsSince)
	last  time.Time // timestamp of the last line written
	n     int       // lines written with timestamp last
	seen  int       // lines with timestamp last seen on the current stream
}

// reopen starts a new stream and returns the sinceTime to ask for (zero:
// from the start).
func (c *logCursor) reopen() time.Time {
	c.seen = 0
	if c.last.IsZero() {
		return c.since
	}
	return c.last
}

// admit reports whether the line with timestamp ts is new, and records it
// as written if so.
func (c *logCursor) admit(ts time.Time) bool {
	if !c.since.IsZero() && !ts.After(c.since) {
		return false
	}
	switch {
	case ts.Before(c.last):
		return false
	case ts.Equal(c.last):
		c.seen++
		if c.seen <= c.n {
			return false
		}
		c.n++
		return true
	default:
		c.last, c.n, c.seen = ts, 1, 1
		return true
	}
}

// splitLogLine splits "<RFC3339Nano> <text>" as the API sends it with
// timestamps=true. ok is false if the line has no timestamp.
func splitLogLine(line []byte) (ts time.Time, text []byte, ok bool) {
	stamp, rest, found := bytes.Cut(line, []byte{' '})
	if !found {
		return time.Time{}, line, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return time.Time{}, line, false
	}
	return ts, rest, true
}
