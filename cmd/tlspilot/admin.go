package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/server"
	"github.com/tlspilot/tlspilot/internal/stapler"
)

// adminListener is an admin listener (serve's admin_listen, the certs
// daemon's certs_admin_listen) and the metrics it reports. The zero value, for admin_listen = "off", does nothing.
type adminListener struct {
	l       net.Listener
	listen  string   // the configured address, for the Host check
	hosts   []string // admin_hosts, for the Host check
	metrics *admin.Metrics
}

// bindAdmin opens serve's admin listener, reporting a failure at the
// config line of admin_listen.
func bindAdmin(cfg *config.Config) (*adminListener, error) {
	return bindAdminAt(cfg, "admin_listen", cfg.AdminListen)
}

// bindAdminAt opens an admin listener on addr, written at key
// (admin_listen for serve, certs_admin_listen for certs).
func bindAdminAt(cfg *config.Config, key, addr string) (*adminListener, error) {
	if addr == config.AdminOff {
		return &adminListener{}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, cfg.Errorf(key, "cannot listen on %s: %v", addr, unwrapOp(err))
	}
	return &adminListener{l: l, listen: addr, hosts: cfg.AdminHosts, metrics: admin.NewMetrics()}, nil
}

// configure has the Manager report its measurements and events to the
// admin listener's metrics.
func (a *adminListener) configure(mc *tlspilot.Config) {
	if a.l == nil {
		return
	}
	mc.Metrics = a.metrics
	mc.OnEvent = fanOut(mc.OnEvent, a.metrics.Event)
}

// watchStapling adds the OCSP staples to /metrics; st nil adds none.
func (a *adminListener) watchStapling(st *stapler.Stapler) {
	if a.l != nil && st != nil {
		a.metrics.WatchStapling(st.Status)
	}
}

// watchServer adds the HTTPS server's connection counters to /metrics.
func (a *adminListener) watchServer(srv *server.Server) {
	if a.l != nil {
		a.metrics.WatchServer(srv.Stats)
		a.metrics.WatchClientAuth(srv.ClientAuthRefusals)
	}
}

// addr is the listener's address, "off" without one.
func (a *adminListener) addr() string {
	if a.l == nil {
		return config.AdminOff
	}
	return a.l.Addr().String()
}

// close releases the listener when serve does not start.
func (a *adminListener) close() {
	if a.l != nil {
		_ = a.l.Close()
	}
}

// serve answers admin requests about src (serve's Manager) until ctx
// ends; a failure is logged, never fatal to serving the sites. Requests
// naming a Host other than an IP, localhost or the configured address's
// name are refused (admin.Options.Listen).
func (a *adminListener) serve(ctx context.Context, src admin.Source, log *slog.Logger) {
	if a.l == nil {
		return
	}
	log = log.With("component", "admin")
	h, err := admin.New(admin.Options{Source: src, Metrics: a.metrics, Logger: log, Listen: a.listen, Hosts: a.hosts})
	if err == nil {
		err = admin.Serve(ctx, a.l, h)
	}
	if err != nil {
		log.Error("admin listener stopped", "addr", a.addr(), "error", err)
	}
}

// fanOut returns an OnEvent that hands each event to every non-nil f in
// turn, so several parts of serve can watch the Manager's events.
func fanOut(fs ...func(tlspilot.Event)) func(tlspilot.Event) {
	var all []func(tlspilot.Event)
	for _, f := range fs {
		if f != nil {
			all = append(all, f)
		}
	}
	return func(ev tlspilot.Event) {
		for _, f := range all {
			f(ev)
		}
	}
}
