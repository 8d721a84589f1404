package instances

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
)

// readLog turns each line of the container's stream into a log entry.
func (i *instance) readLog(r io.ReadCloser, stream string) {
	defer i.readers.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	emit := func() {
		text := strings.TrimSuffix(string(line), "\n")
		i.m.cfg.Logs.Append(logging.InstanceEntry(i.rev.Project, i.rev.Location, i.rev.ServiceID,
			i.rev.Name, i.id, stream, text))
		i.tailMu.Lock()
		i.tail = append(i.tail, text)
		if len(i.tail) > 5 {
			i.tail = i.tail[1:]
		}
		i.tailMu.Unlock()
		line = line[:0]
	}
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) >= maxLogLine {
				emit()
			}
			continue
		}
		if len(line) > 0 {
			emit()
		}
		if err != nil {
			return
		}
	}
}

// system logs a platform message about the instance.
func (i *instance) system(severity, text string) {
	i.m.cfg.Logs.Append(logging.SystemEntry(i.rev.Project, i.rev.Location, i.rev.ServiceID, i.rev.Name, i.id, severity, text))
}
