package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, as an owner
// terminating TLS in relay itself would, and returns the paths and a pool
// that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	return certPath, keyPath, pool
}

func webhookYAML(port int, cert, key string) string {
	return fmt.Sprintf(`  mode: webhook
  webhook:
    listen: 127.0.0.1:%d
    url: https://relay.example.test
    tls_cert: %s
    tls_key: %s
`, port, cert, key)
}

// TestWebhookTLS serves the webhook over relay's own TLS: an update posted
// over HTTPS with the secret is handled, and plain HTTP to the same port
// is refused without reaching the handler.
func TestWebhookTLS(t *testing.T) {
	port := freePort(t)
	cert, key, pool := selfSigned(t, t.TempDir())
	r := startRelay(t, options{commands: echoCmd, webhook: true, telegram: webhookYAML(port, cert, key)})
	call := r.webhookCall()
	u, err := url.Parse(call.URL)
	must(t, err)
	post := func(client *http.Client, scheme string, body []byte) (*http.Response, error) {
		endpoint := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, u.Path)
		var resp *http.Response
		var err error
		for i := 0; i < 100; i++ { // the listener may still be starting
			req, _ := http.NewRequest("POST", endpoint, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", call.SecretToken)
			if resp, err = client.Do(req); err == nil {
				resp.Body.Close()
				return resp, nil
			}
			if strings.Contains(err.Error(), "certificate") {
				return nil, err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil, err
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := post(trusting, "https", ownerUpdate(1, "/help"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("https with the secret: got %v, %v, want 200", resp, err)
	}
	r.expect("Commands")

	// Plain HTTP to the TLS port: Go answers 400 and nothing is handled.
	resp, err = post(http.DefaultClient, "http", ownerUpdate(2, "/status"))
	if err == nil && resp.StatusCode == http.StatusOK {
		t.Error("plain http to the tls listener: got 200")
	}
	// A client that does not trust the certificate cannot talk to it.
	if _, err := post(http.DefaultClient, "https", ownerUpdate(3, "/status")); err == nil {
		t.Error("an untrusted certificate was accepted by a default client")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(r.api.Sent()); n != 1 {
		t.Errorf("got %d messages, want only the answer to the https update:\n%s", n, r.transcript())
	}
}

// TestWebhookBadKeyPairFailsBeforeRegistering: a key that does not match
// the certificate stops the relay with a clear error, before Telegram is
// told to post to an endpoint nobody would answer.
func TestWebhookBadKeyPairFailsBeforeRegistering(t *testing.T) {
	dir := t.TempDir()
	cert, _, _ := selfSigned(t, filepath.Join(dir))
	other := filepath.Join(dir, "other")
	must(t, os.Mkdir(other, 0o700))
	_, key, _ := selfSigned(t, other)
	r := startRelay(t, options{commands: echoCmd, noWait: true, telegram: webhookYAML(freePort(t), cert, key)})
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("relay with a mismatched key pair did not exit")
	}
	if r.exitErr == nil {
		t.Error("relay with a mismatched key pair exited 0")
	}
	if log := r.stderr.String(); !strings.Contains(log, "webhook tls") || !strings.Contains(log, "tls_key") {
		t.Errorf("log does not explain the key pair problem:\n%s", log)
	}
	if n := len(r.api.WebhookCalls()); n != 0 {
		t.Errorf("setWebhook was called %d times for an endpoint that cannot serve", n)
	}
}
