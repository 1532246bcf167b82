package utils

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy stands in for a Service in front of replicas that run as local
// processes: it forwards each TCP connection to its backends in turn, and
// to the next one when a backend refuses (it is down). It forwards bytes, so
// TLS runs end to end between the client and the backend.
type Proxy struct {
	l        net.Listener
	backends []string
	next     atomic.Uint32
	wg       sync.WaitGroup
}

// NewProxy listens on addr (e.g. 127.0.0.1:0) and forwards to backends.
func NewProxy(addr string, backends ...string) (*Proxy, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, backends: backends}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Close stops accepting; open connections end with their backends.
func (p *Proxy) Close() error {
	err := p.l.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer func() { _ = c.Close() }()
	start := int(p.next.Add(1))
	var b net.Conn
	for i := range p.backends {
		var err error
		if b, err = net.DialTimeout("tcp", p.backends[(start+i)%len(p.backends)], time.Second); err == nil {
			break
		}
	}
	if b == nil {
		return // every backend is down
	}
	defer func() { _ = b.Close() }()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done // either side ended: end both
}
