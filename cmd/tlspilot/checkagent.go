package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/tlspilot/tlspilot/internal/config"
)

// checkAgent is `tlspilot check` for a fleet agent's config (one with a
// top-level issuer key): it validates the file and prints what the agent
// keeps and where.
func checkAgent(path string, stdout, stderr io.Writer) int {
	a, err := config.LoadAgent(path)
	if err == nil {
		err = agentKeeps(a)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "fleet agent of %s (trusting %s), storage %s\n", a.Issuer, a.IssuerCA, a.Storage)
	fmt.Fprintf(stdout, "%d certificate(s):\n", len(a.Certificates))
	for _, c := range a.Certificates {
		var files []string
		for _, f := range []struct{ key, path string }{{"fullchain", c.Fullchain}, {"privkey", c.Privkey}, {"cert", c.Cert},
			{"chain", c.Chain}, {"combined", c.Combined}} {
			if f.path != "" {
				files = append(files, f.key+" "+f.path)
			}
		}
		reuse := ""
		if c.ReuseKey {
			reuse = ", key reused across renewals"
		}
		fmt.Fprintf(stdout, "  %s (%s%s) -> %s\n", strings.Join(c.Names, ", "), strings.Join(c.KeyTypes, ", "), reuse, strings.Join(files, ", "))
		if len(c.Reload) > 0 {
			fmt.Fprintf(stdout, "    reload: %s\n", strings.Join(c.Reload, " "))
		}
	}
	for _, w := range a.ReloadWarnings() {
		fmt.Fprintln(stdout, "warning: "+w)
	}
	fmt.Fprintf(stdout, "%s: OK\n", a.File)
	return 0
}
