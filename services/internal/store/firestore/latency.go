package firestore

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// emulatorHost is the variable the Firestore client reads to use an
// emulator.
const emulatorHost = "FIRESTORE_EMULATOR_HOST"

// emulatorConn returns the client option of a connection to the
// emulator that delays every Firestore call by d, to model on the emulator
// (answering in about a millisecond on this machine) the round trip to
// Firestore of a hosted control plane, and runs each unary call through
// wrap as well (nil: none; a test's, to lose answers). It is an
// emulator-only setting: Google's latency is real. With
// SOCKERLESS_STORE_TRACE set it also traces every call (documents are
// traced where they are counted): the round trips a workload waits on.
func emulatorConn(d time.Duration, wrap grpc.UnaryClientInterceptor) (option.ClientOption, error) {
	addr := os.Getenv(emulatorHost)
	if addr == "" {
		return nil, fmt.Errorf("a store latency is only injected on the emulator (%s)", emulatorHost)
	}
	sleep := func(ctx context.Context) error {
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(emulatorOwner{}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if tracing {
				trace("call "+path.Base(method), 1)
				defer traceDone(method, time.Now())
			}
			if err := sleep(ctx); err != nil {
				return err
			}
			if wrap != nil {
				return wrap(ctx, method, req, reply, cc, invoker, opts...)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if tracing {
				trace("call "+path.Base(method), 1)
			}
			if err := sleep(ctx); err != nil {
				return nil, err
			}
			return streamer(ctx, desc, cc, method, opts...)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("dial the emulator at %s: %w", addr, err)
	}
	return option.WithGRPCConn(conn), nil
}

// emulatorOwner authorizes as the emulator's owner, as the client does on
// its own connection to an emulator.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorOwner) RequireTransportSecurity() bool { return false }
