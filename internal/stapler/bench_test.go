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
	it := &item{leaf: &x509.Certificate{}}
	it.staple.Store(&ocspclient.Response{Raw: []byte("staple"), ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
	s.values.Store(stapledTC, &holder{src: stapledTC, it: it})
	plainTC := &tls.Certificate{Certificate: [][]byte{{2}}}
	s.values.Store(plainTC, &holder{src: plainTC, it: &item{}})
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
