package stapler

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
)

// BenchmarkStaple is the handshake path's cost: a certificate with a
// fresh staple, and one with nothing to staple.
func BenchmarkStaple(b *testing.B) {
	now := time.Now()
	s := &Stapler{}
	stapledTC := &tls.Certificate{Certificate: [][]byte{{1}}}
	it := &item{src: stapledTC, leaf: &x509.Certificate{}}
	cp := *stapledTC
	cp.OCSPStaple = []byte("staple")
	it.stapled.Store(&stapled{resp: &ocspclient.Response{ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, tc: &cp})
	s.items.Store(stapledTC, it)
	plainTC := &tls.Certificate{Certificate: [][]byte{{2}}}
	s.items.Store(plainTC, &item{src: plainTC})
	for _, bc := range []struct {
		name string
		tc   *tls.Certificate
	}{{"stapled", stapledTC}, {"none", plainTC}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s.Staple(bc.tc)
				}
			})
		})
	}
}
