package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// message is one line of docker's JSON progress stream (pull, push,
// load, import).
type message struct {
	Stream         string           `json:"stream,omitempty"`
	Status         string           `json:"status,omitempty"`
	ProgressDetail *progressDetail  `json:"progressDetail,omitempty"`
	Progress       string           `json:"progress,omitempty"`
	ID             string           `json:"id,omitempty"`
	ErrorDetail    *errorDetail     `json:"errorDetail,omitempty"`
	Error          string           `json:"error,omitempty"`
	Aux            *json.RawMessage `json:"aux,omitempty"`
}

type progressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

type errorDetail struct {
	Message string `json:"message"`
}

// jsonStream answers 200 with a chunked stream of messages, each flushed
// as it is written: clients decode it message by message, and an error
// after the start is a message too, as docker sends it.
type jsonStream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *json.Encoder
}

// The request body stays readable after the answer has begun (a load or
// import reports progress while its upload arrives).
func newJSONStream(w http.ResponseWriter) *jsonStream {
	s := &jsonStream{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
	_ = s.rc.EnableFullDuplex()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = s.rc.Flush()
	return s
}

func (s *jsonStream) send(m message) {
	if s.enc.Encode(m) == nil {
		_ = s.rc.Flush()
	}
}

// fail sends err as the stream's last message.
func (s *jsonStream) fail(err error) {
	msg := publicMessage(err)
	s.send(message{ErrorDetail: &errorDetail{Message: msg}, Error: msg})
}

// progressBar draws docker's text progress ("[==>   ] 1.5MB/3MB").
func progressBar(cur, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("%s", humanSize(cur))
	}
	const width = 50
	n := int(cur * width / total)
	if n > width {
		n = width
	}
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %s/%s", bar, humanSize(cur), humanSize(total))
}

// humanSize is docker's decimal size ("1.98MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
