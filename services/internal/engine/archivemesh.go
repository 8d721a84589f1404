package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// MeshDialer is the part of the hub that opens streams to an agent on its
// mesh. docker cp out streams through it, past the log store; a hub
// without it leaves cp to the archive exec.
type MeshDialer interface {
	DialMesh(ctx context.Context, id string, open proto.MeshOpen) (net.Conn, error)
}

// meshArchiveWait bounds the wait for a live agent's mesh before cp falls
// back to the archive exec (an agent connected on its control connection
// has its mesh up within milliseconds).
const meshArchiveWait = 2 * time.Second

// errNoMeshArchive says the archive operation cannot go over the mesh; the
// caller uses the exec.
var errNoMeshArchive = errors.New("no mesh archive")

// meshArchive opens a MeshArchive stream for op on path to c's agent.
func (e *Engine) meshArchive(ctx context.Context, c *Container, op, path string) (net.Conn, error) {
	md, ok := e.cfg.Agents.(MeshDialer)
	if !ok {
		return nil, errNoMeshArchive
	}
	dctx, cancel := context.WithTimeout(ctx, meshArchiveWait)
	defer cancel()
	conn, err := md.DialMesh(dctx, agentID(c), proto.MeshOpen{Kind: proto.MeshArchive, Op: op, Path: path})
	if err != nil {
		// an older agent, or no mesh: the exec carries it
		e.log.Debug("cp over the mesh unavailable; using the archive exec", "container", c.ID, "err", err)
		return nil, errNoMeshArchive
	}
	return conn, nil
}

// meshStat stats path in c's instance over the mesh.
func (e *Engine) meshStat(ctx context.Context, c *Container, ref, path string) (PathStat, error) {
	conn, err := e.meshArchive(ctx, c, "stat", path)
	if err != nil {
		return PathStat{}, err
	}
	defer conn.Close()
	var ans proto.ArchiveStat
	if err := json.NewDecoder(conn).Decode(&ans); err != nil {
		return PathStat{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := archiveError(ans.Code, ans.Message, path, ref); err != nil {
		return PathStat{}, err
	}
	var st PathStat
	if err := json.Unmarshal(ans.Stat, &st); err != nil {
		return PathStat{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return st, nil
}

// meshGet streams path's tar from c's instance to w over the mesh.
func (e *Engine) meshGet(ctx context.Context, c *Container, path string, w io.Writer) error {
	conn, err := e.meshArchive(ctx, c, "get", path)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.Copy(w, conn); err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	return nil
}
