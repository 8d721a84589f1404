package mesh

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/sockerless/sockerless/agent/internal/archive"
	"github.com/sockerless/sockerless/agent/proto"
)

// serveArchive answers a MeshArchive stream: the returned connection's far
// end carries the operation's output (a tar for "get", one ArchiveStat line
// for "stat") and ends with it. docker cp out streams this way straight
// from the container's files to the control plane, without the log store
// an exec's output goes through.
func serveArchive(open proto.MeshOpen) (net.Conn, error) {
	if open.Op != "get" && open.Op != "stat" {
		return nil, fmt.Errorf("archive operation %q: want get or stat", open.Op)
	}
	near, far := net.Pipe()
	go func() {
		defer far.Close()
		if open.Op == "get" {
			_ = archive.Write(far, open.Path) // a failure truncates the tar, as a failed read does
			return
		}
		st, err := archive.Stat(open.Path)
		ans := proto.ArchiveStat{Code: archive.ExitCode(err)}
		if err != nil {
			ans.Message = err.Error()
		} else if ans.Stat, err = json.Marshal(st); err != nil {
			ans.Code, ans.Message = proto.ArchiveFailed, err.Error()
		}
		_ = json.NewEncoder(far).Encode(ans)
	}()
	return near, nil
}
