package issuance

import (
	"context"
	"slices"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// exclusive waits, for each solver of tasks that can serve only one answer
// per identifier at a time (solvers.Exclusive), until no other order
// validates the identifiers of its challenges, and holds them until
// release is called. authorize calls it before presenting and releases
// after cleaning up, so two orders for the same names (an ECDSA and an RSA
// certificate) take turns instead of replacing each other's answers.
func (f *Flow) exclusive(ctx context.Context, tasks []task) (release func(), err error) {
	var releases []func()
	release = func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	byType := make(map[string][]acmeclient.Challenge)
	for _, t := range tasks {
		byType[t.ch.Type] = append(byType[t.ch.Type], t.ch)
	}
	types := make([]string, 0, len(byType))
	for typ := range byType {
		types = append(types, typ)
	}
	slices.Sort(types) // the same order for every caller
	for _, typ := range types {
		x, ok := f.Solvers[typ].(solvers.Exclusive)
		if !ok {
			continue
		}
		r, err := x.Exclusive(ctx, byType[typ])
		if err != nil {
			release()
			return nil, err
		}
		releases = append(releases, r)
	}
	return release, nil
}
