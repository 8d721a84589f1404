package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
)

// PathStat describes a path in a container (docker's X-Docker-Container-Path-Stat).
type PathStat = container.PathStat

// liveInstance returns a KindNotImplemented error unless c has a live
// function instance whose files can be reached.
func (e *Engine) liveInstance(c *Container) error {
	if !running(c) && !(c.Instance == "up" && e.cfg.Agents.Connected(agentID(c))) {
		return Errorf(KindNotImplemented, "container %s has no live function instance: Sockerless reaches a container's files only while it runs or lingers after its exit (its filesystem ends with its instance)", c.ID)
	}
	return nil
}

// archive runs an ArchiveCommand in the container's instance: stdin (put)
// in, stdout streamed to out. It returns the agent's exit code and message.
func (e *Engine) archive(ctx context.Context, ns, ref, op, path string, stdin io.Reader, out io.Writer) (int, string, error) {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return 0, "", err
	}
	if err := e.liveInstance(c); err != nil {
		return 0, "", err
	}
	id, err := e.ExecCreate(ctx, ns, c.ID, ExecConfig{
		Cmd: []string{proto.ArchiveCommand, op, path}, AttachStdin: stdin != nil,
		AttachStdout: true, AttachStderr: true, Probe: true, AnyState: true,
	})
	if err != nil {
		return 0, "", err
	}
	var msg bytes.Buffer
	err = e.ExecStart(ctx, ns, id, ExecStartOptions{Stdin: stdin}, func(le LogEntry) error {
		if le.Stream == Stderr {
			msg.Write(le.Data)
			return nil
		}
		_, err := out.Write(le.Data)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	_, x, err := e.Exec(ctx, ns, id)
	if err != nil || x.ExitCode == nil {
		return 0, "", fmt.Errorf("%s %s: no exit status", op, path)
	}
	return *x.ExitCode, strings.TrimSpace(msg.String()), nil
}

// archiveError turns an archive exit code into docker's error.
func archiveError(code int, msg, path, id string) error {
	switch code {
	case proto.ArchiveOK:
		return nil
	case proto.ArchiveNotFound:
		return Errorf(KindNotFound, "Could not find the file %s in container %s", path, id)
	case proto.ArchiveNotDir:
		return Errorf(KindInvalid, "extraction point is not a directory: %s", path)
	case proto.ArchiveBadTar:
		return badTar(errors.New(msg))
	}
	return Errorf(KindInternal, "%s", msg)
}

// ArchiveStat describes path in the container (HEAD /containers/{id}/archive).
// A container that has never run answers from its image and pending uploads.
func (e *Engine) ArchiveStat(ctx context.Context, ns, ref, path string) (PathStat, error) {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return PathStat{}, err
	}
	if neverStarted(c) {
		return e.createdStat(ctx, c, ref, path)
	}
	if err := e.liveInstance(c); err != nil {
		return PathStat{}, err
	}
	if st, err := e.meshStat(ctx, c, ref, path); !errors.Is(err, errNoMeshArchive) {
		return st, err
	}
	var out bytes.Buffer
	code, msg, err := e.archive(ctx, ns, ref, "stat", path, nil, &out)
	if err != nil {
		return PathStat{}, err
	}
	if err := archiveError(code, msg, path, ref); err != nil {
		return PathStat{}, err
	}
	var st PathStat
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return PathStat{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return st, nil
}

// ArchiveGet streams path as a tar to w, once its stat (for the response
// header) is known; header is called before the first byte.
func (e *Engine) ArchiveGet(ctx context.Context, ns, ref, path string, header func(PathStat), w io.Writer) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if neverStarted(c) {
		return e.createdGet(ctx, c, ref, path, header, w)
	}
	st, err := e.ArchiveStat(ctx, ns, ref, path)
	if err != nil {
		return err
	}
	header(st)
	if err := e.meshGet(ctx, c, path, w); !errors.Is(err, errNoMeshArchive) {
		return err
	}
	code, msg, err := e.archive(ctx, ns, ref, "get", path, nil, w)
	if err != nil {
		return err
	}
	return archiveError(code, msg, path, ref)
}

// ArchivePut extracts the tar stream r into the directory path. Into a
// container that has never run, it is kept and extracted at the start.
func (e *Engine) ArchivePut(ctx context.Context, ns, ref, path string, r io.Reader) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if r, err = Decompressed(r); err != nil {
		return err
	}
	if neverStarted(c) {
		return e.createdPut(ctx, c, ref, path, r)
	}
	code, msg, err := e.archive(ctx, ns, ref, "put", path, r, io.Discard)
	if err != nil {
		return err
	}
	return archiveError(code, msg, path, ref)
}

// NeverStarted reports whether container ref has never run: it has no
// filesystem of its own yet, only its image's.
func (e *Engine) NeverStarted(ctx context.Context, ns, ref string) (*Container, bool, error) {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return nil, false, err
	}
	return c, neverStarted(c), nil
}

// FilesOp runs one of the agent's operations on the container's whole
// filesystem (proto.ArchiveChanges, ArchiveLayer, ArchiveExport) in its
// live instance, stdin (nil for none) in, its output streamed to out. A
// container without a live instance is a KindNotImplemented error.
func (e *Engine) FilesOp(ctx context.Context, ns, ref, op string, stdin io.Reader, out io.Writer) error {
	code, msg, err := e.archive(ctx, ns, ref, op, "/", stdin, out)
	if err != nil {
		return err
	}
	if code != proto.ArchiveOK {
		return fmt.Errorf("%s of container %s: %s", op, ref, msg)
	}
	return nil
}
