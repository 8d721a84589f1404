package instance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// outputSink is where a pump sends output: the Session.
type outputSink interface {
	WaitWindow(ctx context.Context, stream uint32) error
	Data(stream uint32, p []byte, t time.Time)
}

// pump reads r until EOF and passes every read to sink as stream's data,
// stamped with the time of the read, and to copyTo. It reads only while the
// stream's window has room for a full frame, so a slow hub makes the
// process block on its writes instead of the agent buffering without bound.
func pump(ctx context.Context, sink outputSink, stream uint32, r io.Reader, copyTo io.Writer, log *slog.Logger) {
	buf := make([]byte, proto.MaxPayload)
	for {
		if err := sink.WaitWindow(ctx, stream); err != nil {
			return
		}
		n, err := r.Read(buf)
		if n > 0 {
			t := time.Now()
			p := append([]byte(nil), buf[:n]...)
			if _, werr := copyTo.Write(p); werr != nil {
				log.Debug("copy output to agent stdio", "err", werr)
			}
			sink.Data(stream, p, t)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Warn("read process output", "stream", stream, "err", err)
			}
			return
		}
	}
}
