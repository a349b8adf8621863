package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// writeConfig writes named.conf and the zone files of opts into b.dir.
func (b *BIND) writeConfig(opts BINDOptions) error {
	var conf strings.Builder
	fmt.Fprintf(&conf, "options {\n\tdirectory %q;\n", b.dir)
	conf.WriteString("\tpid-file none;\n\tsession-keyfile none;\n")
	fmt.Fprintf(&conf, "\tmanaged-keys-directory %q;\n", b.dir)
	if strings.Contains(b.IP, ":") {
		fmt.Fprintf(&conf, "\tlisten-on { none; };\n\tlisten-on-v6 port %d { %s; };\n", b.Port, b.IP)
	} else {
		fmt.Fprintf(&conf, "\tlisten-on port %d { %s; };\n\tlisten-on-v6 { none; };\n", b.Port, b.IP)
	}
	fmt.Fprintf(&conf, "\tversion %q;\n\tdnssec-validation no;\n\tnotify no;\n\tallow-transfer { any; };\n", b.version)
	// Pebble asks over TCP, three times per challenge at once.
	conf.WriteString("\ttcp-listen-queue 1024;\n\ttcp-clients 1000;\n")
	if opts.Forward != "" {
		conf.WriteString("\trecursion yes;\n\tallow-recursion { any; };\n")
		conf.WriteString("\tmax-cache-ttl 0;\n\tmax-ncache-ttl 0;\n\tservfail-ttl 0;\n")
	} else {
		conf.WriteString("\trecursion no;\n")
	}
	conf.WriteString("};\ncontrols { };\n")
	conf.WriteString(b.keyClause())
	if opts.Forward != "" {
		host, port, err := net.SplitHostPort(opts.Forward)
		if err != nil {
			return fmt.Errorf("forward %q: %w", opts.Forward, err)
		}
		fmt.Fprintf(&conf, "zone \"test\" { type forward; forward only; forwarders { %s port %s; }; };\n", host, port)
	}
	b.zones = nil
	for _, z := range opts.Zones {
		b.zones = append(b.zones, z.Name)
		file := z.Name + ".zone"
		if z.Primary != "" {
			host, port, err := net.SplitHostPort(z.Primary)
			if err != nil {
				return fmt.Errorf("zone %s: primary %q: %w", z.Name, z.Primary, err)
			}
			fmt.Fprintf(&conf, "zone %q { type secondary; primaries { %s port %s; }; file %q; allow-notify { any; }; };\n",
				z.Name, host, port, file)
			continue
		}
		update := ""
		if z.Updatable {
			update = fmt.Sprintf(" allow-update { key %q; };", b.KeyName)
		}
		fmt.Fprintf(&conf, "zone %q { type primary; file %q;%s };\n", z.Name, file, update)
		if err := os.WriteFile(filepath.Join(b.dir, file), []byte(b.zoneFile(z)), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(b.dir, "named.conf"), []byte(conf.String()), 0o644)
}

// zoneFile returns the master file of a primary zone: SOA, NS records with
// addresses, the zone's name and every name under it resolving to
// 127.0.0.1, and z.Records. The negative TTL is one second.
func (b *BIND) zoneFile(z BINDZone) string {
	origin := strings.TrimSuffix(z.Name, ".") + "."
	var f strings.Builder
	fmt.Fprintf(&f, "$ORIGIN %s\n$TTL 60\n", origin)
	fmt.Fprintf(&f, "@ IN SOA ns1.%s hostmaster.%s 1 3600 600 86400 1\n", origin, origin)
	ns := z.NS
	if len(ns) == 0 {
		ns = []string{b.IP}
	}
	for i, ip := range ns {
		typ := "A"
		if strings.Contains(ip, ":") {
			typ = "AAAA"
		}
		fmt.Fprintf(&f, "@ IN NS ns%d.%s\nns%d IN %s %s\n", i+1, origin, i+1, typ, ip)
	}
	f.WriteString("@ IN A 127.0.0.1\n* IN A 127.0.0.1\n")
	for _, rr := range z.Records {
		f.WriteString(rr + "\n")
	}
	return f.String()
}
