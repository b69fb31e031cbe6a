package swoole

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/goswoole/swoole/internal/reactor"
)

// TLS on stream ports (SockSSL): the settings become a *tls.Config at Start (tlsConfig); the
// reactor (internal/reactor/tls_linux.go) runs the handshake and encrypts and decrypts on the
// loop that holds the connection: the worker in ModeBase, the master's reactor in
// ModeProcess, whose workers see plaintext.

// ErrSSLHandshakeFailed is Swoole's code for a TLS handshake that failed (logged; the
// connection is closed).
const ErrSSLHandshakeFailed = 1018

// Swoole's ssl_protocols bits.
const (
	sslSSLv2  = 1 << 1
	sslSSLv3  = 1 << 2
	sslTLSv1  = 1 << 3
	sslTLSv11 = 1 << 4
	sslTLSv12 = 1 << 5
	sslTLSv13 = 1 << 6
)

// tlsVersions maps ssl_protocols to crypto/tls's lowest and highest version. 0 is TLS 1.2
// and 1.3. SSLv2 and SSLv3 are refused.
func tlsVersions(bits int) (lo, hi uint16, err error) {
	if bits == 0 {
		return tls.VersionTLS12, tls.VersionTLS13, nil
	}
	if bits&(sslSSLv2|sslSSLv3) != 0 {
		return 0, 0, errors.New("SSLv2 and SSLv3 are broken and Go's crypto/tls does not speak them; give TLSv1.2 (32) and TLSv1.3 (64), or 0 for both")
	}
	vers := []struct {
		bit int
		v   uint16
	}{{sslTLSv1, tls.VersionTLS10}, {sslTLSv11, tls.VersionTLS11}, {sslTLSv12, tls.VersionTLS12}, {sslTLSv13, tls.VersionTLS13}}
	for _, x := range vers {
		if bits&x.bit != 0 {
			if lo == 0 {
				lo = x.v
			}
			hi = x.v
		}
	}
	return lo, hi, nil
}

// cipherFacts are what OpenSSL's cipher-list words say about a TLS 1.2 suite.
type cipherFacts struct {
	id      uint16
	openssl string   // OpenSSL's name
	words   []string // the words that select it (kx, auth, enc, mac and groups)
}

// tls12Suites are crypto/tls's TLS 1.2 (and older) suites under OpenSSL's names. TLS 1.3's
// suites are not configurable in crypto/tls; their names are accepted and change nothing.
var tls12Suites = []cipherFacts{
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDSA", "aECDSA", "AESGCM", "AES", "AES128", "SHA256", "HIGH", "ALL", "DEFAULT", "ECDH"}},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "RSA", "aRSA", "AESGCM", "AES", "AES128", "SHA256", "HIGH", "ALL", "DEFAULT", "ECDH"}},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDSA", "aECDSA", "AESGCM", "AES", "AES256", "SHA384", "HIGH", "ALL", "DEFAULT", "ECDH"}},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "RSA", "aRSA", "AESGCM", "AES", "AES256", "SHA384", "HIGH", "ALL", "DEFAULT", "ECDH"}},
	{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDSA", "aECDSA", "CHACHA20", "SHA256", "HIGH", "ALL", "DEFAULT", "ECDH"}},
	{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA-CHACHA20-POLY1305", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "RSA", "aRSA", "CHACHA20", "SHA256", "HIGH", "ALL", "DEFAULT", "ECDH"}},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDSA", "aECDSA", "AES", "AES128", "SHA1", "SHA", "HIGH", "ALL", "ECDH"}},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "RSA", "aRSA", "AES", "AES128", "SHA1", "SHA", "HIGH", "ALL", "ECDH"}},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE-ECDSA-AES256-SHA", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDSA", "aECDSA", "AES", "AES256", "SHA1", "SHA", "HIGH", "ALL", "ECDH"}},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA", []string{"ECDHE", "EECDH", "kECDHE", "kEECDH", "RSA", "aRSA", "AES", "AES256", "SHA1", "SHA", "HIGH", "ALL", "ECDH"}},
	{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256", []string{"kRSA", "RSA", "aRSA", "AESGCM", "AES", "AES128", "SHA256", "HIGH", "ALL"}},
	{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384", []string{"kRSA", "RSA", "aRSA", "AESGCM", "AES", "AES256", "SHA384", "HIGH", "ALL"}},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA, "AES128-SHA", []string{"kRSA", "RSA", "aRSA", "AES", "AES128", "SHA1", "SHA", "HIGH", "ALL"}},
	{tls.TLS_RSA_WITH_AES_256_CBC_SHA, "AES256-SHA", []string{"kRSA", "RSA", "aRSA", "AES", "AES256", "SHA1", "SHA", "HIGH", "ALL"}},
}

// knownCipherWords are OpenSSL words that select no suite crypto/tls has (finite-field DHE,
// anonymous, export, RC4, 3DES, ...): accepted in a list, they add nothing.
var knownCipherWords = map[string]bool{
	"EDH": true, "DHE": true, "kEDH": true, "kDHE": true, "ADH": true, "aNULL": true, "eNULL": true,
	"NULL": true, "EXPORT": true, "EXP": true, "EXPORT40": true, "EXPORT56": true, "LOW": true,
	"MEDIUM": true, "RC4": true, "MD5": true, "3DES": true, "DES": true, "PSK": true, "SRP": true,
	"DSS": true, "aDSS": true, "CAMELLIA": true, "SEED": true, "IDEA": true, "SSLv2": true,
	"SSLv3": true, "TLSv1": true, "TLSv1.2": true, "COMPLEMENTOFDEFAULT": true, "COMPLEMENTOFALL": true,
	"@STRENGTH": true, "AECDH": true, "CCM": true, "AESCCM": true, "ARIA": true, "kPSK": true,
	"TLS_AES_128_GCM_SHA256": true, "TLS_AES_256_GCM_SHA384": true, "TLS_CHACHA20_POLY1305_SHA256": true,
}

// parseCiphers turns an OpenSSL cipher list into crypto/tls suite ids (nil: crypto/tls's
// defaults). Words join with ':' (or ',', ' '), '+' inside a word intersects, '!' and '-'
// remove, a leading '+' (move to the end) keeps the order. A word OpenSSL does not know, or a
// list that selects none of crypto/tls's suites, is an error.
func parseCiphers(list string) ([]uint16, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return nil, nil
	}
	var chosen []uint16
	removed := map[uint16]bool{}
	tls13 := false
	for _, word := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		op := byte(0)
		if word[0] == '!' || word[0] == '-' || word[0] == '+' {
			op, word = word[0], word[1:]
		}
		if word == "" {
			continue
		}
		if strings.HasPrefix(word, "@") {
			continue // @STRENGTH, @SECLEVEL=n: ordering and policy directives
		}
		var match []uint16
		for _, s := range tls12Suites {
			if s.openssl == word {
				match = append(match, s.id)
				break
			}
		}
		if match == nil {
			parts := strings.Split(word, "+")
			for _, p := range parts {
				if !cipherWordKnown(p) {
					return nil, fmt.Errorf("%q is not a cipher or cipher group OpenSSL and Go's crypto/tls share (suites: %s)", p, suiteNames())
				}
			}
			for _, s := range tls12Suites {
				if hasAll(s.words, parts) {
					match = append(match, s.id)
				}
			}
			if strings.HasPrefix(word, "TLS_") {
				tls13 = true
			}
		}
		switch op {
		case '!', '-':
			for _, id := range match {
				removed[id] = true
			}
		default:
			for _, id := range match {
				if !contains(chosen, id) {
					chosen = append(chosen, id)
				}
			}
		}
	}
	out := chosen[:0]
	for _, id := range chosen {
		if !removed[id] {
			out = append(out, id)
		}
	}
	if len(out) == 0 && !tls13 {
		return nil, fmt.Errorf("%q selects none of Go's crypto/tls suites (%s)", list, suiteNames())
	}
	return out, nil
}

func cipherWordKnown(w string) bool {
	if knownCipherWords[w] {
		return true
	}
	for _, s := range tls12Suites {
		if contains(s.words, w) {
			return true
		}
	}
	return false
}

func hasAll(words, want []string) bool {
	for _, w := range want {
		if !contains(words, w) {
			return false
		}
	}
	return true
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func suiteNames() string {
	names := make([]string, len(tls12Suites))
	for i, s := range tls12Suites {
		names[i] = s.openssl
	}
	return strings.Join(names, ", ")
}

// loadKeyPair reads a certificate and its key; errors name the option and the file.
func loadKeyPair(certKey, certFile, keyKey, keyFile string) (tls.Certificate, error) {
	certPEM, err := readTLSFile(certKey, certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readTLSFile(keyKey, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &Error{Code: ErrInvalidParams, Msg: fmt.Sprintf("swoole: %s %s and %s %s are not a PEM certificate and its private key: %v", certKey, quote(certFile), keyKey, quote(keyFile), err), Err: err}
	}
	return cert, nil
}

func readTLSFile(key, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		code := ErrSystemCallFail
		if errors.Is(err, fs.ErrNotExist) {
			code = ErrFileNotExist
		}
		return nil, &Error{Code: code, Msg: fmt.Sprintf("swoole: %s: cannot read %s: %v", key, quote(path), err), Err: err}
	}
	return b, nil
}

// tlsConfig builds the TLS configuration of an SSL port from its resolved settings.
func (p *Port) tlsConfig() (*tls.Config, error) {
	e := p.eff
	if e.SSLCertFile == "" || e.SSLKeyFile == "" {
		return nil, newError(ErrInvalidParams, "port %s is SockSSL but ssl_cert_file and ssl_key_file are not both set: give the PEM certificate and its key", p.addr())
	}
	cert, err := loadKeyPair("ssl_cert_file", e.SSLCertFile, "ssl_key_file", e.SSLKeyFile)
	if err != nil {
		return nil, err
	}
	lo, hi, err := tlsVersions(e.SSLProtocols)
	if err != nil {
		return nil, newError(ErrOperationNotSupport, "ssl_protocols: %v", err)
	}
	suites, err := parseCiphers(e.SSLCiphers)
	if err != nil {
		return nil, newError(ErrInvalidParams, "ssl_ciphers: %v", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   lo,
		MaxVersion:   hi,
		CipherSuites: suites,
	}
	if len(e.SSLSNICerts) > 0 {
		names := make([]string, 0, len(e.SSLSNICerts))
		for n := range e.SSLSNICerts {
			names = append(names, n)
		}
		sort.Strings(names)
		byName := make(map[string]*tls.Certificate, len(names))
		for _, n := range names {
			pair := e.SSLSNICerts[n]
			c, err := loadKeyPair("ssl_sni_certs["+n+"].ssl_cert_file", pair.CertFile, "ssl_sni_certs["+n+"].ssl_key_file", pair.KeyFile)
			if err != nil {
				return nil, err
			}
			byName[strings.ToLower(n)] = &c
		}
		def := &cfg.Certificates[0]
		cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := strings.ToLower(strings.TrimSuffix(h.ServerName, "."))
			if c := byName[name]; c != nil {
				return c, nil
			}
			if i := strings.IndexByte(name, '.'); i > 0 {
				if c := byName["*"+name[i:]]; c != nil {
					return c, nil
				}
			}
			return def, nil
		}
		cfg.Certificates = nil
	}
	if e.SSLVerifyPeer || e.SSLClientCertFile != "" {
		var pool *x509.CertPool
		if e.SSLClientCertFile != "" {
			b, err := readTLSFile("ssl_client_cert_file", e.SSLClientCertFile)
			if err != nil {
				return nil, err
			}
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return nil, newError(ErrInvalidParams, "ssl_client_cert_file %s holds no PEM certificate", quote(e.SSLClientCertFile))
			}
		}
		if e.SSLVerifyPeer {
			// Verified here (not by crypto/tls) so that ssl_allow_self_signed and
			// ssl_verify_depth apply.
			cfg.ClientAuth = tls.RequireAnyClientCert
			cfg.VerifyPeerCertificate = clientVerifier(pool, e.SSLAllowSelfSigned, e.SSLVerifyDepth)
		} else {
			// Not required; a certificate that is sent is still checked.
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
			cfg.ClientCAs = pool
		}
	}
	return cfg, nil
}

// clientVerifier checks a client's chain against pool; with allowSelfSigned a self-signed
// certificate passes too; depth > 0 limits the CA certificates above the client's.
func clientVerifier(pool *x509.CertPool, allowSelfSigned bool, depth int) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the client sent no certificate and ssl_verify_peer requires one")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, b := range raw {
			c, err := x509.ParseCertificate(b)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		leaf := certs[0]
		if allowSelfSigned && bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
			// Self-signed is allowed, not an expired (or not yet valid) certificate: OpenSSL
			// reports that error for it too, and Swoole refuses it.
			if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
				return x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired, Detail: fmt.Sprintf("current time %s is outside %s to %s", now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))}
			}
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return err
		}
		if depth > 0 {
			for _, ch := range chains {
				if len(ch)-1 <= depth {
					return nil
				}
			}
			return fmt.Errorf("the client's certificate chain is deeper than ssl_verify_depth %d", depth)
		}
		return nil
	}
}

// certPEM returns the PEM of the certificate a TLS connection's peer presented, "" if none.
func certPEM(rc *reactor.Conn) string {
	certs := rc.PeerCertificates()
	if len(certs) == 0 {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw}))
}

// Where GetClientInfo finds SSLClientCert. The PEM of a client's certificate lives in the
// process that terminates the connection's TLS: a ModeBase worker reads it from its own
// session (certPEM). A ModeProcess master passes it, with the connect event, to the worker
// that dispatch picks for it (masterOpened), which keeps it here until the connection's close
// event, and answers from here. That is Swoole's design (worker.cc keeps ssl_client_cert with
// the pid of the worker that got SW_SERVER_EVENT_CONNECT): the worker that serves the
// connection (dispatch_mode 2 or 4, or a DispatchFunc that keeps a connection on one worker)
// has it, and other processes (another ModeBase worker, a task worker, a user process, every
// worker under the dispatch modes that leave connect events out (connEventsOff), a worker
// started by a reload after the connect) get "". The shared table does not hold it
// (a certificate is ~0.5-2 KiB, a slot is fixed-size), and a synchronous request to the
// owning process from inside a callback could deadlock two workers asking each other.

// workerCerts are the certificates a ModeProcess worker got with connect events, by session.
// The close event removes one, when it comes to this worker (only with an OnClose); put also
// sweeps sessions that are gone from the table once the map doubled, so none is kept for long.
type workerCerts struct {
	mu      sync.Mutex
	m       map[int64]string
	sweepAt int
}

func (wc *workerCerts) put(s *Server, fd int64, pem string) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.m == nil {
		wc.m = map[int64]string{}
	}
	wc.m[fd] = pem
	if len(wc.m) < max(wc.sweepAt, 64) {
		return
	}
	for id := range wc.m {
		if s.table.Get(id) == nil { // gone (closing sessions stay: OnClose may ask)
			delete(wc.m, id)
		}
	}
	wc.sweepAt = 2 * len(wc.m)
}

func (wc *workerCerts) get(fd int64) string {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.m[fd]
}

func (wc *workerCerts) drop(fd int64) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	delete(wc.m, fd)
}

// HandshakeFailed releases a TLS connection whose handshake did not complete (no OnConnect,
// no OnClose ran for it) and logs why, rate-limited: a peer can fail handshakes at will.
func (w *worker) HandshakeFailed(rc *reactor.Conn, err error) {
	c := rc.Owner.(*conn)
	s := w.s
	if !errors.Is(err, reactor.ErrAborted) {
		if ok, left := s.logLimits[logTLS].allow(); ok {
			s.log.Warn("swoole: TLS handshake failed; connection closed", "code", ErrSSLHandshakeFailed, "port", c.port.addr(), "remote", c.slot.RemoteIP(), "err", err, "suppressed", left)
		}
	}
	s.conns[c.id&s.mask].CompareAndSwap(c, nil)
	s.table.Release(c.slot)
}

// reloadTLS re-reads every SockSSL port's certificate files (ssl_cert_file, ssl_key_file,
// ssl_sni_certs, ssl_client_cert_file) in this process, the one that terminates TLS: the
// connections accepted from then on get the new configuration; those open keep theirs. A
// port whose files fail to load keeps its configuration, and the failure is logged. It
// reports whether the server has a SockSSL port.
func (s *Server) reloadTLS() bool {
	has := false
	for _, p := range s.ports {
		if p.sock&SockSSL == 0 || p.tls.Load() == nil {
			continue
		}
		has = true
		cfg, err := p.tlsConfig()
		if err != nil {
			s.log.Warn("swoole: reload: TLS certificates not reloaded; the port keeps its configuration", "port", p.addr(), "err", err)
			continue
		}
		p.tls.Store(cfg)
	}
	return has
}
