package controlplane

import (
	"errors"
	"net"
	"sync"
)

// dualListener accepts on several listeners as one, so the apiserver (one
// listener in its options) serves on its bind address and on the address
// other machines reach it by.
type dualListener struct {
	listeners []net.Listener
	conns     chan net.Conn
	errs      chan error
	done      chan struct{}
	closeOnce sync.Once
}

// listenBoth listens on every address and accepts from all of them.
func listenBoth(addrs ...string) (net.Listener, error) {
	d := &dualListener{conns: make(chan net.Conn), errs: make(chan error, len(addrs)), done: make(chan struct{})}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		d.listeners = append(d.listeners, l)
	}
	for _, l := range d.listeners {
		go d.accept(l)
	}
	return d, nil
}

func (d *dualListener) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case d.errs <- err:
			case <-d.done:
			}
			return
		}
		select {
		case d.conns <- c:
		case <-d.done:
			c.Close()
			return
		}
	}
}

func (d *dualListener) Accept() (net.Conn, error) {
	select {
	case c := <-d.conns:
		return c, nil
	case err := <-d.errs:
		return nil, err
	case <-d.done:
		return nil, net.ErrClosed
	}
}

func (d *dualListener) Close() error {
	var errs []error
	d.closeOnce.Do(func() {
		close(d.done)
		for _, l := range d.listeners {
			errs = append(errs, l.Close())
		}
	})
	return errors.Join(errs...)
}

// Addr is the first address: the apiserver's own.
func (d *dualListener) Addr() net.Addr { return d.listeners[0].Addr() }
