package services

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"k8s.io/klog/v2"
)

// dnsServer answers <service>.<namespace>.svc.<domain> from the informer
// caches and forwards every other name upstream.
type dnsServer struct {
	proxy *Proxy
}

// dnsTTL is short: Services come and go in a dev cluster.
const dnsTTL = 5

func (d *dnsServer) serve(ctx context.Context) {
	addr := net.JoinHostPort(d.proxy.o.DNSIP, "53")
	var udp net.PacketConn
	var tcp net.Listener
	// The address appears on the interface with the first reconcile.
	for {
		var err error
		if udp == nil {
			udp, _ = net.ListenPacket("udp", addr)
		}
		if tcp == nil {
			tcp, err = net.Listen("tcp", addr)
		}
		if udp != nil && tcp != nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if err != nil {
			klog.V(2).InfoS("cluster DNS not listening yet", "address", addr, "err", err)
		}
	}
	klog.InfoS("serving cluster DNS", "address", addr, "domain", d.proxy.o.Domain)
	go func() {
		<-ctx.Done()
		udp.Close()
		tcp.Close()
	}()
	go d.serveTCP(tcp)
	buf := make([]byte, 4096)
	for {
		n, from, err := udp.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := d.answer(q, "udp"); resp != nil {
				_, _ = udp.WriteTo(resp, from)
			}
		}()
	}
}

func (d *dnsServer) serveTCP(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			var size [2]byte
			if _, err := io.ReadFull(conn, size[:]); err != nil {
				return
			}
			q := make([]byte, binary.BigEndian.Uint16(size[:]))
			if _, err := io.ReadFull(conn, q); err != nil {
				return
			}
			resp := d.answer(q, "tcp")
			if resp == nil {
				return
			}
			binary.BigEndian.PutUint16(size[:], uint16(len(resp)))
			_, _ = conn.Write(append(size[:], resp...))
		}()
	}
}

// answer builds the response to one query, or nil to drop it.
func (d *dnsServer) answer(query []byte, network string) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	zone := "svc." + strings.TrimSuffix(d.proxy.o.Domain, ".") + "."
	if strings.HasSuffix(name, ".in-addr.arpa.") {
		targets, ok := d.reverse(name, zone)
		if !ok {
			return d.forward(query, network)
		}
		resp := dnsmessage.Message{Header: dnsmessage.Header{
			ID: hdr.ID, Response: true, Authoritative: true, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true,
		}, Questions: []dnsmessage.Question{q}}
		if q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL {
			for _, t := range targets {
				resp.Answers = append(resp.Answers, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET, TTL: dnsTTL},
					Body:   &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(t)},
				})
			}
		}
		out, err := resp.Pack()
		if err != nil {
			return nil
		}
		return out
	}
	if !strings.HasSuffix(name, "."+strings.TrimSuffix(d.proxy.o.Domain, ".")+".") {
		return d.forward(query, network)
	}
	resp := dnsmessage.Message{Header: dnsmessage.Header{
		ID: hdr.ID, Response: true, Authoritative: true, RecursionDesired: hdr.RecursionDesired,
		RecursionAvailable: true, RCode: dnsmessage.RCodeNameError,
	}, Questions: []dnsmessage.Question{q}}
	if rest, ok := strings.CutSuffix(name, "."+zone); ok {
		if answers, found := d.records(strings.Split(rest, "."), q, zone, network); found {
			resp.Header.RCode = dnsmessage.RCodeSuccess
			resp.Answers = answers
		}
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}

// forward relays a query for a name outside the cluster to the upstream
// resolver (the engine's, which uses the host's).
func (d *dnsServer) forward(query []byte, network string) []byte {
	if d.proxy.o.Upstream == "" {
		return nil
	}
	conn, err := net.DialTimeout(network, d.proxy.o.Upstream, 2*time.Second)
	if err != nil {
		return nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if network == "tcp" {
		var size [2]byte
		binary.BigEndian.PutUint16(size[:], uint16(len(query)))
		if _, err := conn.Write(append(size[:], query...)); err != nil {
			return nil
		}
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return nil
		}
		resp := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(conn, resp); err != nil {
			return nil
		}
		return resp
	}
	if _, err := conn.Write(query); err != nil {
		return nil
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
