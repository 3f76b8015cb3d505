// hsload: bounded TLS new-connection load generator for the bench-peers harness.
//
// Each worker loops: TCP connect -> full TLS handshake (no session cache, so never resumed)
// -> either (mode=handshake) send close_notify and read to EOF, or (mode=request) send one
// "GET PATH HTTP/1.1 / Connection: close" and read the response to EOF -> close.
// Stops at -d seconds or -n connections, whichever comes first.
// Prints one line: conns=N errors=E wall_s=W rate=R p50_ms=.. p99_ms=.. version=.. suite=.. first_error=..
//
// mode=keepalive (wrk cannot send a client certificate): each of the -c workers opens one TLS
// connection (with -cert/-key if given) and sends "GET PATH HTTP/1.1" requests one after another
// on it; each response head must be 200 with a Content-Length, and its body is read in full.
// A failed request (error, timeout, non-200, no Content-Length) counts as an error and the worker
// reconnects; so does a response with "Connection: close" (no error). Stops at -d seconds or -n
// requests. Latency = request write to last body byte. Prints one line:
// reqs=N errors=E conns=C wall_s=W rate=R p50_ms=.. p99_ms=.. version=.. suite=.. first_error=..
//
// Build: GOCACHE=/tmp/fpbench/gocache go build -o /tmp/fpbench/bin/hsload lib/hsload.go
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18443", "target host:port")
	conc := flag.Int("c", 32, "concurrent connections in flight")
	dur := flag.Duration("d", 10*time.Second, "duration")
	maxN := flag.Int64("n", 1000000, "max connections")
	ver := flag.String("tls", "1.3", "1.2 or 1.3")
	mode := flag.String("mode", "handshake", "handshake | request | keepalive")
	path := flag.String("path", "/1k", "request path (mode=request)")
	curve := flag.String("curve", "P256", "P256 or P384 (key share)")
	certF := flag.String("cert", "", "client certificate (mTLS)")
	keyF := flag.String("key", "", "client key (mTLS)")
	caF := flag.String("cafile", "", "verify the server against this CA (default: no chain verification)")
	to := flag.Duration("timeout", 5*time.Second, "per-connection timeout")
	flag.Parse()

	cfg := &tls.Config{
		ServerName:         "localhost",
		InsecureSkipVerify: *caF == "",
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		CurvePreferences:   []tls.CurveID{tls.CurveP256, tls.CurveP384},
		ClientSessionCache: nil, // never resume
	}
	if *curve == "P384" {
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP384, tls.CurveP256}
	}
	switch *ver {
	case "1.2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	default:
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	}
	if *caF != "" {
		pem, err := os.ReadFile(*caF)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		cfg.RootCAs = pool
	}
	if *certF != "" {
		c, err := tls.LoadX509KeyPair(*certF, *keyF)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	if *mode == "keepalive" {
		keepalive(*addr, cfg, *path, *conc, *dur, *maxN, *to)
		return
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")

	var started, done, errs int64
	var firstErr atomic.Value
	var vinfo atomic.Value
	lats := make([][]float64, *conc)
	deadline := time.Now().Add(*dur)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(deadline) && atomic.AddInt64(&started, 1) <= *maxN {
				s := time.Now()
				err := one(*addr, cfg, *mode, req, *to, &vinfo)
				if err != nil {
					atomic.AddInt64(&errs, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				atomic.AddInt64(&done, 1)
				lats[w] = append(lats[w], float64(time.Since(s).Microseconds())/1000)
			}
		}(w)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	p50, p99 := percentiles(lats)
	fe, _ := firstErr.Load().(string)
	vi, _ := vinfo.Load().(string)
	fmt.Printf("conns=%d errors=%d wall_s=%.2f rate=%.0f p50_ms=%.2f p99_ms=%.2f %s first_error=%s\n",
		done, errs, wall, float64(done)/wall, p50, p99, vi, strings.ReplaceAll(fe, " ", "_"))
}

func one(addr string, cfg *tls.Config, mode string, req []byte, to time.Duration, vinfo *atomic.Value) error {
	raw, err := net.DialTimeout("tcp", addr, to)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(to))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return err
	}
	if vinfo.Load() == nil {
		st := c.ConnectionState()
		vinfo.Store(fmt.Sprintf("version=%s suite=%s", map[uint16]string{tls.VersionTLS12: "TLS1.2",
			tls.VersionTLS13: "TLS1.3"}[st.Version], tls.CipherSuiteName(st.CipherSuite)))
	}
	if mode == "request" {
		if _, err := c.Write(req); err != nil {
			return err
		}
	} else if err := c.CloseWrite(); err != nil { // close_notify: a clean, complete handshake
		return err
	}
	n, err := io.Copy(io.Discard, c)
	if mode == "request" && n == 0 {
		return fmt.Errorf("empty response: %v", err)
	}
	return nil
}

// keepalive: -c workers, one TLS connection each, sequential GETs on it (see the header comment).
func keepalive(addr string, cfg *tls.Config, path string, conc int, dur time.Duration, maxN int64, to time.Duration) {
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n")
	var started, done, errs, conns int64
	var firstErr atomic.Value
	var vinfo atomic.Value
	lats := make([][]float64, conc)
	deadline := time.Now().Add(dur)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var c *tls.Conn
			var raw net.Conn
			var br *bufio.Reader
			drop := func() {
				if c != nil {
					c.Close()
				}
				c, raw, br = nil, nil, nil
			}
			defer drop()
			fail := func(err error) {
				atomic.AddInt64(&errs, 1)
				firstErr.CompareAndSwap(nil, err.Error())
				drop()
				time.Sleep(10 * time.Millisecond)
			}
			for time.Now().Before(deadline) && atomic.AddInt64(&started, 1) <= maxN {
				if c == nil {
					var err error
					raw, err = net.DialTimeout("tcp", addr, to)
					if err != nil {
						fail(err)
						continue
					}
					raw.SetDeadline(time.Now().Add(to))
					c = tls.Client(raw, cfg)
					if err := c.Handshake(); err != nil {
						fail(err)
						continue
					}
					atomic.AddInt64(&conns, 1)
					if vinfo.Load() == nil {
						st := c.ConnectionState()
						vinfo.Store(fmt.Sprintf("version=%s suite=%s", map[uint16]string{tls.VersionTLS12: "TLS1.2",
							tls.VersionTLS13: "TLS1.3"}[st.Version], tls.CipherSuiteName(st.CipherSuite)))
					}
					br = bufio.NewReaderSize(c, 16384)
				}
				s := time.Now()
				raw.SetDeadline(s.Add(to))
				if _, err := c.Write(req); err != nil {
					fail(err)
					continue
				}
				again, err := readResponse(br)
				if err != nil {
					fail(err)
					continue
				}
				atomic.AddInt64(&done, 1)
				lats[w] = append(lats[w], float64(time.Since(s).Microseconds())/1000)
				if !again {
					drop()
				}
			}
		}(w)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	p50, p99 := percentiles(lats)
	fe, _ := firstErr.Load().(string)
	vi, _ := vinfo.Load().(string)
	fmt.Printf("reqs=%d errors=%d conns=%d wall_s=%.2f rate=%.0f p50_ms=%.2f p99_ms=%.2f %s first_error=%s\n",
		done, errs, conns, wall, float64(done)/wall, p50, p99, vi, strings.ReplaceAll(fe, " ", "_"))
}

// readResponse reads one response: a 200 status line, fields with one Content-Length, then that
// many body bytes. Returns whether the connection may carry another request.
func readResponse(br *bufio.Reader) (bool, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, fmt.Errorf("status line: %v", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return false, fmt.Errorf("status %q", strings.TrimSpace(string(line)))
	}
	cl, again := int64(-1), true
	for n := 0; ; n++ {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("response head: %v", err)
		}
		if n > 200 {
			return false, fmt.Errorf("response head: over 200 fields")
		}
		f := bytes.TrimRight(line, "\r\n")
		if len(f) == 0 {
			break
		}
		i := bytes.IndexByte(f, ':')
		if i < 0 {
			return false, fmt.Errorf("bad field %q", f)
		}
		name, val := f[:i], bytes.TrimSpace(f[i+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || v < 0 || cl >= 0 {
				return false, fmt.Errorf("bad or repeated Content-Length %q", val)
			}
			cl = v
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(val, []byte("close")):
			again = false
		}
	}
	if cl < 0 {
		return false, fmt.Errorf("response without Content-Length")
	}
	if _, err := br.Discard(int(cl)); err != nil {
		return false, fmt.Errorf("body: %v", err)
	}
	return again, nil
}

// percentiles merges the per-worker latency samples (ms) and returns p50 and p99 (0 when empty).
func percentiles(lats [][]float64) (float64, float64) {
	var all []float64
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return 0, 0
	}
	sort.Float64s(all)
	at := func(p float64) float64 { return all[int(p*float64(len(all)-1))] }
	return at(0.50), at(0.99)
}
