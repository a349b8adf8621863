package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/oneline"
)

const cleanSummary = `Removes from the storage the certificates of names no longer configured
(those "tlspilot status" lists as unmanaged) once they have expired or were
obtained more than --older-than ago: every record under certs/ID/, never
the ACME account or the key-encryption key. Also removes the OCSP
responses serve keeps (ocsp/…) once stale for over a day: each renewal
leaves the old certificate's behind. Run it with the config of every
process that shares the storage (-c once for each: cluster nodes with
different sites): what no config given manages is unmanaged.`

func cleanCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("clean", "[-c FILE]... [--older-than 30d] [--dry-run]", cleanSummary, stdout, stderr)
	cf.cfgs.several = true
	olderThan := days(30 * 24 * time.Hour)
	cf.Var(&olderThan, "older-than", "remove certificates obtained longer ago than this (days \"30d\" or a duration \"72h\"; 0: all of them), or expired")
	dryRun := cf.Bool("dry-run", false, "print what would be removed, remove nothing")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	if cf.NArg() > 0 {
		fmt.Fprintf(stderr, "tlspilot clean: unexpected argument %q\n", cf.Arg(0))
		return 2
	}
	cfg, certs, err := cf.loadSharing()
	if err == nil && !*dryRun {
		err = asStorageOwner(cfg, "clean")
	}
	if err != nil {
		printError(stderr, "", err)
		return 1
	}
	mc := statusConfig(cfg)
	age := time.Duration(olderThan)
	if age <= 0 {
		age = time.Nanosecond // "0": every unmanaged certificate (the library's zero keeps unexpired ones)
	}
	cleaned, err := tlspilot.Clean(ctx, mc, tlspilot.CleanOptions{OlderThan: age, DryRun: *dryRun}, certs...)
	printCleaned(stdout, cleaned, *dryRun)
	if err != nil {
		printError(stderr, "tlspilot clean: ", err)
		return 1
	}
	return 0
}

// loadSharing loads the config files named (several with -c repeated),
// which must share one storage, and returns the first with the
// certificates all of them configure.
func (cf *commandFlags) loadSharing() (*config.Config, []tlspilot.Cert, error) {
	cfg, err := cf.load()
	if err != nil {
		return nil, nil, err
	}
	certs := configuredCerts(cfg)
	for _, path := range cf.cfgs.more {
		other, err := config.Load(path)
		if err != nil {
			return nil, nil, err
		}
		if other.Storage != cfg.Storage {
			return nil, nil, fmt.Errorf("%s: storage %s is not %s's (%s): the configs given must share one storage",
				other.File, other.Storage, cfg.File, cfg.Storage)
		}
		certs = append(certs, configuredCerts(other)...)
	}
	return cfg, certs, nil
}

// printCleaned prints one line per certificate removed.
func printCleaned(w io.Writer, cleaned []tlspilot.Cleaned, dryRun bool) {
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	if len(cleaned) == 0 {
		fmt.Fprintf(w, "nothing to remove\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cleaned {
		// Ids and names are read from the storage: printed as text.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", verb, oneline.Escape(c.ID), oneline.Escape(strings.Join(c.Names, ",")), oneline.Escape(c.Reason))
	}
	_ = tw.Flush()
}

// days is a flag value of days ("30d") or a Go duration ("72h").
type days time.Duration

func (d *days) String() string {
	if *d%days(24*time.Hour) == 0 {
		return strconv.Itoa(int(time.Duration(*d)/(24*time.Hour))) + "d"
	}
	return time.Duration(*d).String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseFloat(n, 64)
		// NaN, infinities and more days than a duration holds (about
		// 292 years) would convert to a negative age, which is "0":
		// every unmanaged certificate.
		ns := v * float64(24*time.Hour)
		if err != nil || !(v >= 0) || ns >= math.MaxInt64 {
			return fmt.Errorf("want a number of days such as 30d (at most %dd), or a duration such as 72h", math.MaxInt64/int64(24*time.Hour))
		}
		*d = days(ns)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("want a number of days such as 30d, or a duration such as 72h")
	}
	*d = days(v)
	return nil
}
