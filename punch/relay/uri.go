package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the TURN port over UDP (RFC 8656 section 18, RFC 7065
// section 3.2).
const DefaultPort = 3478

// ErrBadURI is wrapped by every error of ParseURI.
var ErrBadURI = errors.New("bad TURN server URI")

// Server is a TURN server as a "turn:" URI names it.
type Server struct {
	// Host is a DNS name or an IP address (without brackets).
	Host string
	Port uint16
}

// String is the server's URI, e.g. "turn:turn.example.org:3478" or
// "turn:[2001:db8::1]:3478".
func (s Server) String() string { return "turn:" + s.HostPort() }

// HostPort is host:port for dialing, with brackets around IPv6.
func (s Server) HostPort() string { return net.JoinHostPort(s.Host, strconv.Itoa(int(s.Port))) }

// ParseURI reads an RFC 7065 TURN URI:
//
//	turn:HOST[:PORT][?transport=udp]
//
// with HOST a DNS name, an IPv4 address or a bracketed IPv6 address and
// PORT 3478 by default. Everything p2ptui cannot use is refused with the
// reason: turns: (TLS) and transport=tcp, since the relay runs over UDP;
// a user name or password inside the URI (RFC 7065 has none; they go in
// --turn-user and the password file); a path, a fragment, "//", unknown
// parameters, a port out of range.
func ParseURI(s string) (Server, error) {
	bad := func(format string, args ...any) (Server, error) {
		return Server{}, fmt.Errorf("%w %q: %s", ErrBadURI, s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return bad("empty")
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || strings.Trim(strings.ToLower(scheme), "abcdefghijklmnopqrstuvwxyz") != "" {
		return bad("want turn:HOST[:PORT][?transport=udp]")
	}
	switch strings.ToLower(scheme) {
	case "turn":
	case "turns":
		return bad("turns: (TURN over TLS) is not supported; use turn: (p2ptui relays over UDP, and the relay only ever sees encrypted packets)")
	case "stun", "stuns":
		return bad("a STUN server cannot relay; want a turn: URI")
	default:
		return bad("unknown scheme %q; want turn:", scheme)
	}
	if strings.HasPrefix(rest, "//") {
		return bad("a turn: URI has no \"//\" (RFC 7065): write turn:HOST:PORT")
	}
	if strings.ContainsAny(rest, "/#") {
		return bad("unexpected path or fragment")
	}
	if strings.Contains(rest, "@") {
		return bad("a user or password does not belong in the URI; use --turn-user and $P2PTUI_TURN_PASSWORD or --turn-password-file")
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if err := checkQuery(query); err != nil {
			return bad("%v", err)
		}
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return bad("%v", err)
	}
	return Server{Host: host, Port: port}, nil
}

// checkQuery accepts only "transport=udp" (RFC 7065 section 3.1).
func checkQuery(q string) error {
	key, value, ok := strings.Cut(q, "=")
	switch {
	case !ok || key != "transport":
		return fmt.Errorf("unknown parameter %q; only transport=udp is understood", q)
	case strings.EqualFold(value, "udp"):
		return nil
	case strings.EqualFold(value, "tcp"):
		return errors.New("transport=tcp is not supported; p2ptui relays over UDP")
	}
	return fmt.Errorf("unknown transport %q; want udp", value)
}

// splitHostPort reads HOST[:PORT] with RFC 3986 host syntax.
func splitHostPort(hp string) (string, uint16, error) {
	var host, portStr string
	hasPort := false
	if strings.HasPrefix(hp, "[") {
		end := strings.Index(hp, "]")
		if end < 0 {
			return "", 0, errors.New("missing ] after the IPv6 address")
		}
		host = hp[1:end]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, fmt.Errorf("%q inside brackets is not an IPv6 address", host)
		}
		after := hp[end+1:]
		if after != "" {
			if !strings.HasPrefix(after, ":") {
				return "", 0, fmt.Errorf("unexpected %q after the IPv6 address", after)
			}
			portStr, hasPort = after[1:], true
		}
	} else {
		host = hp
		if i := strings.LastIndex(hp, ":"); i >= 0 {
			host, portStr, hasPort = hp[:i], hp[i+1:], true
		}
		if err := checkHost(host); err != nil {
			return "", 0, err
		}
	}
	if !hasPort {
		return host, DefaultPort, nil
	}
	if portStr == "" || len(portStr) > 5 || strings.Trim(portStr, "0123456789") != "" {
		return "", 0, fmt.Errorf("port %q is not a number", portStr)
	}
	port, _ := strconv.Atoi(portStr)
	if port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %d out of range 1-65535", port)
	}
	return host, uint16(port), nil
}

// checkHost accepts an IPv4 address or a DNS name (RFC 1123 labels).
func checkHost(h string) error {
	switch {
	case h == "":
		return errors.New("no host")
	case strings.Contains(h, ":"):
		return errors.New("an IPv6 address needs brackets: turn:[2001:db8::1]:3478")
	case len(h) > 253:
		return errors.New("host name longer than 253 characters")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a host name (character %q)", h, c)
			}
		}
	}
	return nil
}

// ParseURIs reads a comma-separated list of TURN URIs (the value of one
// --turn flag; the flag may also be repeated). Duplicates are dropped.
func ParseURIs(list string) ([]Server, error) {
	var out []Server
	for i, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w: entry %d of %q is empty", ErrBadURI, i+1, list)
		}
		s, err := ParseURI(part)
		if err != nil {
			return nil, err
		}
		dup := false
		for _, o := range out {
			dup = dup || (strings.EqualFold(o.Host, s.Host) && o.Port == s.Port)
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out, nil
}
