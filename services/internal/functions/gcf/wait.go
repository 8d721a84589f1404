package gcf

import (
	"context"
	"time"
)

// waitDone calls poll every interval until it reports done or fails, or ctx
// ends. The clients' own Wait backs off to a minute; polling at a fixed
// interval keeps function creation as fast as the platform.
func waitDone(ctx context.Context, interval time.Duration, poll func(context.Context) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := poll(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
