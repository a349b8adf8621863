package fleet

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleetca"
)

// maxBody bounds a request body: a CSR and a token fit in far less.
const maxBody = 64 << 10

// EnrollRequest is the body of a POST to PathEnroll.
type EnrollRequest struct {
	// Token is the enrolment token `tlspilot issuer enroll` printed.
	Token string `json:"token"`
	// CSR is the agent's certificate request, DER (base64 in JSON). Only
	// its key is used; its names are ignored.
	CSR []byte `json:"csr"`
}

// EnrollResponse is the answer to an enrolment.
type EnrollResponse struct {
	// Host is the agent's name, as the issuer knows it.
	Host string `json:"host"`
	// Certificate is the client certificate, PEM.
	Certificate string `json:"certificate"`
	// Names is the agent's policy: what it may obtain.
	Names []string `json:"names"`
}

// AgentResponse answers PathAgent.
type AgentResponse struct {
	// Host is the agent's name, as the issuer knows it.
	Host string `json:"host"`
	// Names is the agent's policy: what it may obtain.
	Names []string `json:"names"`
}

// errorResponse is the body of every refusal: a message for the agent's
// operator, never the internal cause.
type errorResponse struct {
	Error string `json:"error"`
}

// Handler returns the API's handler. It expects to be served over the
// TLS configuration of TLSConfig.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathEnroll, s.enroll)
	mux.HandleFunc("GET "+PathHealth, s.healthz)
	mux.Handle("GET "+PathAgent, s.requireAgent(s.agent))
	mux.Handle("POST "+PathClientCert, s.requireAgent(s.renewClient))
	if s.opts.Orderer != nil {
		mux.Handle("POST "+PathCertificate, s.requireAgent(s.certificateReq))
	} else {
		mux.Handle("POST "+PathCertificate, s.requireAgent(func(w http.ResponseWriter, _ *http.Request, _ *Agent) {
			writeJSON(w, http.StatusServiceUnavailable, errorResponse{"this issuer obtains no certificates: its config has no [dns] section (it validates with dns-01)"})
		}))
	}
	mux.Handle("/", s.requireAgent(func(w http.ResponseWriter, _ *http.Request, _ *Agent) {
		writeJSON(w, http.StatusNotFound, errorResponse{"no such endpoint"})
	}))
	return mux
}

// healthTimeout bounds the storage read of a health probe.
const healthTimeout = 5 * time.Second

// healthz answers PathHealth. The cause of a failure is logged when the
// state changes, not at each probe, so a monitor polling every few
// seconds does not fill the log.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	err := s.opts.Registry.Check(ctx)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		if !s.unhealthy.Swap(true) {
			s.log.Warn("health: the registry's storage cannot be read; /healthz answers 503", "error", err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("unavailable\n"))
		return
	}
	if s.unhealthy.Swap(false) {
		s.log.Info("health: the registry's storage can be read again; /healthz answers 200")
	}
	_, _ = w.Write([]byte("ok\n"))
}

// agentHandler is a handler for an authenticated agent.
type agentHandler func(w http.ResponseWriter, r *http.Request, a *Agent)

// requireAgent answers only a request made with a client certificate
// the issuer accepts, checked again now: a revocation applies to
// connections already open.
func (s *Server) requireAgent(h agentHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeJSON(w, http.StatusUnauthorized, errorResponse{"a client certificate from the fleet CA is required (tlspilot agent enroll)"})
			return
		}
		a, err := s.opts.Registry.Accept(r.Context(), r.TLS.PeerCertificates[0])
		if err != nil {
			s.log.Warn("agent refused", "host", r.TLS.PeerCertificates[0].Subject.CommonName, "path", r.URL.Path, "error", err)
			writeJSON(w, statusOf(err), errorResponse{publicError(err)})
			return
		}
		h(w, r, a)
	})
}

func (s *Server) agent(w http.ResponseWriter, _ *http.Request, a *Agent) {
	writeJSON(w, http.StatusOK, AgentResponse{Host: a.Host, Names: a.Names})
}

// enroll turns a token and a CSR into the agent's first client
// certificate. The CSR is checked before the token is used up.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	if !decodeBody(w, r, &req, "token and csr") {
		return
	}
	csr, ok := clientCSR(w, req.CSR)
	if !ok {
		return
	}
	a, err := s.opts.Registry.Redeem(r.Context(), req.Token)
	if err != nil {
		s.log.Warn("enrolment refused", "remote", r.RemoteAddr, "error", err)
		writeJSON(w, statusOf(err), errorResponse{publicError(err)})
		return
	}
	resp, err := s.issueClient(r.Context(), a, csr, AuditEnrolled)
	if err != nil {
		s.log.Error("enrolment failed", "host", a.Host, "error", err)
		s.clientCertFailed(w, err)
		return
	}
	s.log.Info("agent enrolled", "host", a.Host, "names", a.Names)
	writeJSON(w, http.StatusOK, resp)
}

// ClientCertRequest is the body of a POST to PathClientCert.
type ClientCertRequest struct {
	// CSR is the agent's certificate request for its new key, DER.
	CSR []byte `json:"csr"`
}

// renewClient gives an agent a new client certificate for the key of its
// CSR. The certificate it called with stays accepted until it expires,
// so an agent that loses the answer can try again.
func (s *Server) renewClient(w http.ResponseWriter, r *http.Request, a *Agent) {
	var req ClientCertRequest
	if !decodeBody(w, r, &req, "csr") {
		return
	}
	csr, ok := clientCSR(w, req.CSR)
	if !ok {
		return
	}
	resp, err := s.issueClient(r.Context(), a, csr, AuditClientRenewed)
	if err != nil {
		s.log.Error("client certificate renewal failed", "host", a.Host, "error", err)
		s.clientCertFailed(w, err)
		return
	}
	s.log.Info("client certificate renewed", "host", a.Host)
	writeJSON(w, http.StatusOK, resp)
}

// clientCertFailed answers a request for a client certificate that
// issueClient could not serve: 403 with the kind of refusal (an agent
// revoked meanwhile), else 500.
func (s *Server) clientCertFailed(w http.ResponseWriter, err error) {
	if _, ok := refusal(err); ok {
		writeJSON(w, statusOf(err), errorResponse{publicError(err)})
		return
	}
	writeJSON(w, http.StatusInternalServerError, errorResponse{"the issuer could not issue the client certificate; see its log"})
}

// issueClient signs a client certificate for a, lists it in a's record
// and audits it as decision (AuditEnrolled or AuditClientRenewed).
func (s *Server) issueClient(ctx context.Context, a *Agent, csr *x509.CertificateRequest, decision string) (*EnrollResponse, error) {
	c, err := s.opts.CA.IssueClient(csr, a.Host, s.opts.ClientTTL)
	if err != nil {
		return nil, err
	}
	if err := s.opts.Registry.AddClientCert(ctx, a.Host, c); err != nil {
		return nil, err
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	s.audit(ctx, AuditRecord{Host: a.Host, Names: a.Names, KeyHash: KeyHash(csr.RawSubjectPublicKeyInfo), Decision: decision,
		Serial: serialHex(c), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Chain: p})
	return &EnrollResponse{Host: a.Host, Certificate: p, Names: a.Names}, nil
}

// internalError is what a caller is told of an error that is no
// refusal.
const internalError = "internal error; see the issuer's log"

// refusal returns the sentinel error err wraps among those whose kind a
// caller is told, if any.
func refusal(err error) (error, bool) {
	for _, e := range []error{ErrTokenUnknown, ErrTokenUsed, ErrTokenExpired, ErrRevoked, ErrUnknownCert, ErrNoAgent} {
		if errors.Is(err, e) {
			return e, true
		}
	}
	return nil, false
}

// publicError is what a caller is told of err: the kind of refusal,
// without the host or times the internal error holds (an enrolment
// caller is not yet authenticated).
func publicError(err error) string {
	if e, ok := refusal(err); ok {
		return e.Error()
	}
	return internalError
}

// statusOf is the HTTP status of a refused request: 403 for a refusal,
// 500 for a failure of the issuer.
func statusOf(err error) int {
	if _, ok := refusal(err); ok {
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// decodeBody decodes the JSON body of r (at most maxBody bytes) into v,
// answering 400 naming the fields wanted when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, fields string) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{"want a JSON body with " + fields})
		return false
	}
	return true
}

// clientCSR parses the CSR for a client certificate and checks its
// signature and key (fleetca.CheckCSR), answering 400 when it is bad.
func clientCSR(w http.ResponseWriter, der []byte) (*x509.CertificateRequest, bool) {
	csr, err := x509.ParseCertificateRequest(der)
	if err == nil {
		err = fleetca.CheckCSR(csr)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{"bad CSR: " + err.Error()})
		return nil, false
	}
	return csr, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
