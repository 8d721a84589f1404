package run

import (
	"context"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
)

// UpdateService changes a service. The fields in update_mask (all settable
// fields when empty) are taken from the request; a changed template (or
// force_new_revision) makes a new revision, which takes all traffic when the
// returned operation completes. Instances of the old revision finish their
// requests and then stop.
func (s *Server) UpdateService(_ context.Context, req *runpb.UpdateServiceRequest) (*longrunningpb.Operation, error) {
	in := clone(req.GetService())
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "service is required")
	}
	loc, id, err := parseService(in.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Writes.Allow(loc.Project, loc.Location); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.services[in.GetName()]
	if !ok {
		s.mu.Unlock()
		if !req.GetAllowMissing() {
			return nil, status.Errorf(codes.NotFound, "Resource '%s' of kind 'SERVICE' in region '%s' in project '%s' does not exist.", id, loc.Location, loc.Project)
		}
		in.Name = ""
		return s.CreateService(context.Background(), &runpb.CreateServiceRequest{
			Parent: loc.String(), ServiceId: id, Service: in, ValidateOnly: req.GetValidateOnly(),
		})
	}
	if in.GetEtag() != "" && in.GetEtag() != e.svc.GetEtag() {
		s.mu.Unlock()
		return nil, status.Errorf(codes.Aborted, "etag %s does not match the service's current etag", in.GetEtag())
	}
	next := clone(e.svc)
	if err := applyMask(next, in, req.GetUpdateMask().GetPaths()); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	gen := e.svc.GetGeneration() + 1
	newRev := req.GetForceNewRevision() || !sameTemplate(e.svc.GetTemplate(), next.GetTemplate())
	revName := lastPart(e.svc.GetLatestCreatedRevision())
	if newRev {
		revName, err = chooseRevisionName(id, next.GetTemplate().GetRevision(), gen)
		if err == nil {
			if _, taken := e.revisions[revName]; taken {
				err = status.Errorf(codes.AlreadyExists, "revision %s already exists", revName)
			}
		}
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	rev, err := revisionFrom(next, revName)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if req.GetValidateOnly() {
		s.mu.Unlock()
		return s.doneOp(loc, next)
	}
	s.updates.Add(1)
	next.Generation = gen
	next.UpdateTime = timestamppb.Now()
	next.LastModifier = "gcpsim"
	next.Reconciling = true
	next.TerminalCondition = condition(runpb.Condition_CONDITION_RECONCILING)
	next.LatestCreatedRevision = in.GetName() + "/revisions/" + revName
	next.Etag = etag(next)
	e.svc = next
	e.revisions[revName] = rev
	s.mu.Unlock()
	s.cfg.Logger.Debug("service updated", "service", in.GetName(), "revision", revName, "image", rev.Image, "newRevision", newRev)
	if newRev {
		s.deploying(rev)
	}

	name := in.GetName()
	return s.startOp(loc, name, func() (proto.Message, error) {
		return s.promote(name, rev, gen)
	})
}

// DeleteService deletes a service and all its revisions when the returned
// operation completes; their instances stop.
func (s *Server) DeleteService(_ context.Context, req *runpb.DeleteServiceRequest) (*longrunningpb.Operation, error) {
	loc, id, err := parseService(req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Writes.Allow(loc.Project, loc.Location); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.services[req.GetName()]
	var snapshot *runpb.Service
	if ok {
		snapshot = clone(e.svc)
	}
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' of kind 'SERVICE' in region '%s' in project '%s' does not exist.", id, loc.Location, loc.Project)
	}
	if req.GetEtag() != "" && req.GetEtag() != snapshot.GetEtag() {
		return nil, status.Errorf(codes.Aborted, "etag %s does not match the service's current etag", req.GetEtag())
	}
	if req.GetValidateOnly() {
		return s.doneOp(loc, snapshot)
	}
	s.deletes.Add(1)
	name := req.GetName()
	return s.startOp(loc, name, func() (proto.Message, error) {
		return s.DeleteManaged(name)
	})
}

// DeleteManaged deletes a service at once, without an operation, and
// returns it as it was, with delete_time set.
func (s *Server) DeleteManaged(name string) (*runpb.Service, error) {
	s.mu.Lock()
	e, ok := s.services[name]
	if ok {
		delete(s.services, name)
	}
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "service %s not found", name)
	}
	e.svc.DeleteTime = timestamppb.Now()
	s.cfg.Logger.Debug("service deleted", "service", name)
	if e.serving != nil && s.cfg.Retired != nil {
		s.cfg.Retired(e.serving)
	}
	return e.svc, nil
}

// chooseRevisionName returns the requested revision name (which must start
// with "<service>-") or a generated one.
func chooseRevisionName(serviceID, requested string, gen int64) (string, error) {
	if requested == "" {
		return revisionName(serviceID, gen, resname.RandomHex(2)[:3]), nil
	}
	if !strings.HasPrefix(requested, serviceID+"-") {
		return "", status.Errorf(codes.InvalidArgument, "revision name %q must start with %q", requested, serviceID+"-")
	}
	if err := resname.CheckID("revision", requested, 63); err != nil {
		return "", err
	}
	return requested, nil
}

// sameTemplate compares templates ignoring the requested revision name.
func sameTemplate(a, b *runpb.RevisionTemplate) bool {
	a, b = proto.Clone(a).(*runpb.RevisionTemplate), proto.Clone(b).(*runpb.RevisionTemplate)
	if a != nil {
		a.Revision = ""
	}
	if b != nil {
		b.Revision = ""
	}
	return proto.Equal(a, b)
}

// applyMask copies the settable fields named by paths (their first
// component; all settable fields if paths is empty) from in to dst.
func applyMask(dst, in *runpb.Service, paths []string) error {
	fields := dst.ProtoReflect().Descriptor().Fields()
	copyField := func(fd protoreflect.FieldDescriptor) {
		src := in.ProtoReflect()
		if src.Has(fd) {
			dst.ProtoReflect().Set(fd, src.Get(fd))
		} else {
			dst.ProtoReflect().Clear(fd)
		}
	}
	if len(paths) == 0 {
		for i := range fields.Len() {
			if fd := fields.Get(i); !outputOnly[string(fd.Name())] {
				copyField(fd)
			}
		}
		return nil
	}
	for _, p := range paths {
		top := strings.SplitN(p, ".", 2)[0]
		fd := fields.ByName(protoreflect.Name(top))
		if fd == nil {
			return status.Errorf(codes.InvalidArgument, "update_mask: unknown field %q", p)
		}
		if outputOnly[top] {
			return status.Errorf(codes.InvalidArgument, "update_mask: field %q is output only", p)
		}
		copyField(fd)
	}
	return nil
}

// fieldNames lists the populated fields of m.
func fieldNames(m *runpb.Service) []string {
	var out []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		out = append(out, string(fd.Name()))
		return true
	})
	return out
}

func clearField(m *runpb.Service, name string) {
	if fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil {
		m.ProtoReflect().Clear(fd)
	}
}

// ReplaceTemplate deploys template t as a new revision of service name at
// once, without an operation, as the Cloud Functions API does when a
// function is rebuilt.
func (s *Server) ReplaceTemplate(name string, t *runpb.RevisionTemplate) (*runpb.Service, error) {
	_, id, err := parseService(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.services[name]
	if !ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "service %s not found", name)
	}
	next := clone(e.svc)
	next.Template = proto.Clone(t).(*runpb.RevisionTemplate)
	gen := next.GetGeneration() + 1
	revName := revisionName(id, gen, resname.RandomHex(2)[:3])
	rev, err := revisionFrom(next, revName)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	next.Generation = gen
	next.UpdateTime = timestamppb.Now()
	next.LatestCreatedRevision = name + "/revisions/" + revName
	next.Etag = etag(next)
	e.svc = next
	e.revisions[revName] = rev
	s.mu.Unlock()
	return s.promote(name, rev, gen)
}
