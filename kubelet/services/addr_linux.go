package services

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// addAddress puts ip/32 on the interface, as `ip addr add` does.
func addAddress(link int, ip string) error {
	return changeAddress(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, link, ip)
}

// deleteAddress takes ip/32 off the interface.
func deleteAddress(link int, ip string) error {
	return changeAddress(unix.RTM_DELADDR, 0, link, ip)
}

// changeAddress sends one rtnetlink address request and reads its ack.
func changeAddress(msgType, flags uint16, link int, ip string) error {
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return fmt.Errorf("change address: %s is not an IPv4 address", ip)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	// struct ifaddrmsg: family, prefixlen, flags, scope, index.
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0], body[1] = unix.AF_INET, 32
	binary.NativeEndian.PutUint32(body[4:], uint32(link))
	attr := func(typ uint16, data []byte) []byte {
		l := unix.SizeofRtAttr + len(data)
		b := make([]byte, (l+3)&^3)
		binary.NativeEndian.PutUint16(b[0:], uint16(l))
		binary.NativeEndian.PutUint16(b[2:], typ)
		copy(b[unix.SizeofRtAttr:], data)
		return b
	}
	body = append(body, attr(unix.IFA_LOCAL, v4)...)
	body = append(body, attr(unix.IFA_ADDRESS, v4)...)
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], msgType)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send netlink request: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("read netlink ack: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return fmt.Errorf("parse netlink ack: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
			continue
		}
		code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
		if code == 0 {
			return nil
		}
		errno := syscall.Errno(-code)
		switch {
		case msgType == unix.RTM_DELADDR && errors.Is(errno, unix.EADDRNOTAVAIL):
			return nil
		case errors.Is(errno, unix.EPERM):
			return fmt.Errorf("change address %s: %w (the node needs NET_ADMIN)", ip, errno)
		}
		return fmt.Errorf("change address %s: %w", ip, errno)
	}
	return nil
}
