package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// BenchmarkStartupVsShell2telegram: process start until the first
// getUpdates reaches the Bot API, relay against shell2telegram, alternating
// A B A B in one run; it reports each one's median and the median of the
// pairs' ratios. Neither can be pointed at a local Bot API the same way
// (shell2telegram's library has the address as a constant), so both reach
// https://api.telegram.org through the same local proxy, which answers for
// that name with a certificate of a throwaway CA and forwards to the fake
// Bot API: each pays the same TLS handshake, and nothing leaves the machine.
//
// shell2telegram is not in the Go module proxy; build it from its source
// (github.com/msoap/shell2telegram, go build) and name the binary:
//
//	SHELL2TELEGRAM=/path/to/shell2telegram go test -run '^$' -bench StartupVsShell2telegram -benchtime 20x ./e2e
func BenchmarkStartupVsShell2telegram(b *testing.B) {
	s2t := os.Getenv("SHELL2TELEGRAM")
	if s2t == "" {
		b.Skip("SHELL2TELEGRAM is not set (build github.com/msoap/shell2telegram and name its binary)")
	}
	caFile, proxyURL := mitmProxy(b)
	via := []string{"HTTPS_PROXY=" + proxyURL, "SSL_CERT_FILE=" + caFile}
	relayStart := func() time.Duration {
		r := startRelay(b, options{commands: echoCmd, env: via, before: func(r *relay) {
			cfg, err := os.ReadFile(r.cfgPath)
			must(b, err)
			cfg = []byte(strings.Replace(string(cfg), "api_url: "+r.api.URL(), "api_url: https://api.telegram.org", 1))
			must(b, os.WriteFile(r.cfgPath, cfg, 0o600))
			proxyTo(r.api.URL())
		}})
		d := firstPoll(b, r.api, r.started)
		r.stop(syscall.SIGTERM)
		return d
	}
	s2tStart := func() time.Duration {
		api := fakebotapi.New(testToken)
		must(b, api.Start())
		defer api.Close()
		proxyTo(api.URL())
		cmd := osexec.Command(s2t, "-timeout", "2", "/date", "date")
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + b.TempDir(), "TB_TOKEN=" + testToken}, via...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		started := time.Now()
		must(b, cmd.Start())
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
		}()
		d, ok := waitPoll(api, started)
		if !ok {
			b.Fatalf("shell2telegram never polled:\n%s", out.String())
		}
		return d
	}
	var relayD, s2tD []time.Duration
	var ratios []float64
	for b.Loop() {
		x, y := relayStart(), s2tStart()
		relayD, s2tD = append(relayD, x), append(s2tD, y)
		ratios = append(ratios, float64(x)/float64(y))
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(median(relayD).Microseconds())/1000, "relay-ms")
	b.ReportMetric(float64(median(s2tD).Microseconds())/1000, "shell2telegram-ms")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}

func firstPoll(b *testing.B, api *fakebotapi.Server, started time.Time) time.Duration {
	d, ok := waitPoll(api, started)
	if !ok {
		b.Fatal("no poll recorded")
	}
	return d
}

// waitPoll waits up to 10 s for the first getUpdates at api.
func waitPoll(api *fakebotapi.Server, started time.Time) (time.Duration, bool) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if polls := api.PollTimes(); len(polls) > 0 {
			return polls[0].Sub(started), true
		}
		time.Sleep(time.Millisecond)
	}
	return 0, false
}

var (
	proxyMu     sync.Mutex
	proxyTarget *url.URL
)

// proxyTo makes the proxy forward to the fake Bot API at u.
func proxyTo(u string) {
	t, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	proxyMu.Lock()
	proxyTarget = t
	proxyMu.Unlock()
}

// mitmProxy starts an HTTP CONNECT proxy on 127.0.0.1 that terminates TLS
// for any name with a certificate of a CA made here, and forwards what
// arrives to the current proxyTo target. It returns the CA's PEM file and
// the proxy's URL.
func mitmProxy(b *testing.B) (caFile, proxyURL string) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(b, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(b, err)
	ca, err := x509.ParseCertificate(caDER)
	must(b, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(b, err)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "api.telegram.org"},
		DNSNames: []string{"api.telegram.org"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	must(b, err)
	caFile = filepath.Join(b.TempDir(), "ca.pem")
	must(b, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644))
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}},
		// As api.telegram.org: HTTP/2, or HTTP/1.1 for a client without.
		NextProtos: []string{"h2", "http/1.1"},
	}

	inner := &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		proxyMu.Lock()
		t := proxyTarget
		proxyMu.Unlock()
		pr.SetURL(t)
	}, FlushInterval: -1,
		// Each round kills both bots mid-poll: their cut requests are
		// expected, and not worth a line each.
		ErrorLog: log.New(io.Discard, "", 0)}
	go (&http.Server{Handler: rp, ErrorLog: log.New(io.Discard, "", 0)}).Serve(inner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	b.Cleanup(func() { ln.Close(); inner.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					c.Close()
					return
				}
				if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
					c.Close()
					return
				}
				inner.push(tls.Server(c, tlsCfg))
			}()
		}
	}()
	return caFile, "http://" + ln.Addr().String()
}

// connListener is a net.Listener of the connections pushed into it.
type connListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
