// The client side of the distribution handshake (version 6), as a hidden node.

package erlnode

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// Handshake failures that the client reports as distinct connection error reasons.
var (
	// ErrAuth means the peer closed the connection after our challenge reply:
	// that is how a node answers a wrong cookie.
	ErrAuth = errors.New("the node rejected the cookie")
	// ErrNotAllowed means the peer refused the connection before the challenge
	// (its net_kernel does not allow our node name, or it is not distributed).
	ErrNotAllowed = errors.New("the node refused the connection (not_allowed or nok)")
	// ErrWrongNode means the peer's challenge carries another name than the
	// node we were asked to reach. The digest of a challenge proves the cookie
	// to whoever made the challenge, so it goes only to the node we meant:
	// otherwise whoever answers could relay another node's challenge through
	// us and log in to that node with our digest.
	ErrWrongNode = errors.New("the node answered under another name")
	// ErrCapabilities means the peer lacks distribution flags the exporter
	// relies on.
	ErrCapabilities = errors.New("the node lacks distribution capabilities the exporter needs")
)

// handshakeTimeout bounds the whole exchange, so a peer that accepts the TCP
// connection and then says nothing cannot hold a connect attempt forever.
const handshakeTimeout = 5 * time.Second

// peerDetails is what the handshake learns about the peer and hands to the proto.
type peerDetails struct {
	flags    uint64
	creation uint32
}

// hiddenHandshake implements ergo's node.HandshakeInterface. ergo's own
// handshake always advertises DFLAG_PUBLISHED and lacks the flags that OTP 26
// and later require, hence this one.
type hiddenHandshake struct {
	name     string
	creation uint32
	// peer is the node this handshake may prove the cookie to: the name the
	// Client was asked to reach. Empty refuses every peer.
	peer string
	// lastErr keeps why the latest attempt failed: ergo replaces every
	// handshake error with its own "no route".
	lastErr atomic.Pointer[error]
}

var _ node.HandshakeInterface = (*hiddenHandshake)(nil)

func (h *hiddenHandshake) Init(nodename string, creation uint32, _ node.Flags) error {
	h.name = nodename
	h.creation = creation
	return nil
}

// Version is what ergo would register in EPMD; the exporter registers nothing,
// but the interface asks for it.
func (h *hiddenHandshake) Version() node.HandshakeVersion { return 6 }

// Accept refuses every inbound connection: ergo insists on a listening socket,
// but the exporter must never accept a distribution connection.
func (h *hiddenHandshake) Accept(_ net.Addr, _ lib.NetReadWriter, _ bool, _ string) (node.HandshakeDetails, error) {
	return node.HandshakeDetails{}, errors.New("inbound distribution connections are refused")
}

func (h *hiddenHandshake) Start(remote net.Addr, conn lib.NetReadWriter, tls bool, cookie string) (node.HandshakeDetails, error) {
	deadline := time.Now().Add(handshakeTimeout)
	conn.SetReadDeadline(deadline)
	conn.SetWriteDeadline(deadline)
	defer conn.SetReadDeadline(time.Time{})
	defer conn.SetWriteDeadline(time.Time{})

	// Over TCP the handshake frames messages with a 2-byte length; over TLS,
	// inet_tls_dist has its socket in {packet, 4} from the start.
	framing := handshakeFraming{rw: conn, header: 2}
	if tls {
		framing.header = 4
	}
	peer, name, err := h.exchange(framing, remote, cookie)
	if err != nil {
		h.lastErr.Store(&err)
		return node.HandshakeDetails{}, err
	}
	return node.HandshakeDetails{
		Name:     name,
		Creation: peer.creation,
		Version:  6,
		Flags:    ergoFlags(peer.flags),
		Custom:   peer,
	}, nil
}

func (h *hiddenHandshake) exchange(conn handshakeFraming, remote net.Addr, cookie string) (peerDetails, string, error) {
	var peer peerDetails

	// send_name: 'N', flags, creation, name.
	msg := make([]byte, 0, 15+len(h.name))
	msg = append(msg, 'N')
	msg = binary.BigEndian.AppendUint64(msg, advertisedFlags)
	msg = binary.BigEndian.AppendUint32(msg, h.creation)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(h.name)))
	msg = append(msg, h.name...)
	if err := conn.write(msg); err != nil {
		return peer, "", fmt.Errorf("sending name: %w", err)
	}

	status, err := conn.read()
	if err != nil {
		return peer, "", fmt.Errorf("reading status: %w", err)
	}
	if len(status) < 1 || status[0] != 's' {
		return peer, "", fmt.Errorf("unexpected status message %q", truncate(status))
	}
	switch s := string(status[1:]); s {
	case "ok", "ok_simultaneous":
	case "alive":
		// The node still holds a connection from a previous run under our
		// name (we were killed, or the network dropped). Ours replaces it.
		if err := conn.write([]byte("strue")); err != nil {
			return peer, "", fmt.Errorf("answering alive: %w", err)
		}
	case "nok", "not_allowed":
		return peer, "", ErrNotAllowed
	default:
		return peer, "", fmt.Errorf("unexpected handshake status %q", truncate([]byte(s)))
	}

	// recv_challenge: 'N', flags, challenge, creation, name.
	challengeMsg, err := conn.read()
	if err != nil {
		return peer, "", fmt.Errorf("reading challenge: %w", err)
	}
	if len(challengeMsg) < 19 || challengeMsg[0] != 'N' {
		return peer, "", fmt.Errorf("unexpected challenge message (%d bytes, tag %q)", len(challengeMsg), truncate(challengeMsg[:min(1, len(challengeMsg))]))
	}
	peer.flags = binary.BigEndian.Uint64(challengeMsg[1:9])
	challenge := binary.BigEndian.Uint32(challengeMsg[9:13])
	peer.creation = binary.BigEndian.Uint32(challengeMsg[13:17])
	nameLen := int(binary.BigEndian.Uint16(challengeMsg[17:19]))
	if len(challengeMsg) < 19+nameLen {
		return peer, "", errors.New("challenge message truncated")
	}
	name := string(challengeMsg[19 : 19+nameLen])
	// Nothing derived from the cookie has left yet; from here on it does, so
	// the peer must be the node we were asked for, by its exact name. A node
	// names itself in its challenge with its own node atom, byte for byte
	// what erlang:node() returns there, and that is the name a Client is
	// given: there is no short or long form of it to reconcile.
	if h.peer == "" || name != h.peer {
		return peer, "", fmt.Errorf("%w: asked for %s, the node at %s answered as %s (set the target to the node's own name, erlang:node() on it, if that is the node you meant)",
			ErrWrongNode, h.peer, remote, quoteName(name))
	}
	if missing := requiredPeerFlags &^ peer.flags; missing != 0 {
		return peer, "", fmt.Errorf("%w: %s did not offer %s (OTP 23 or later offers them all)", ErrCapabilities, h.peer, describeFlags(missing))
	}

	// send_challenge_reply: 'r', our challenge, digest of theirs.
	var ours [4]byte
	if _, err := rand.Read(ours[:]); err != nil {
		return peer, "", fmt.Errorf("making a challenge: %w", err)
	}
	ourChallenge := binary.BigEndian.Uint32(ours[:])
	reply := []byte{'r'}
	reply = append(reply, ours[:]...)
	digest := challengeDigest(cookie, challenge)
	reply = append(reply, digest[:]...)
	if err := conn.write(reply); err != nil {
		return peer, "", fmt.Errorf("sending challenge reply: %w", err)
	}

	// recv_challenge_ack: 'a', digest of ours. A node that dislikes our
	// cookie closes the connection instead of answering.
	ack, err := conn.read()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err) {
			return peer, "", ErrAuth
		}
		return peer, "", fmt.Errorf("reading challenge ack: %w", err)
	}
	want := challengeDigest(cookie, ourChallenge)
	if len(ack) != 17 || ack[0] != 'a' || string(ack[1:]) != string(want[:]) {
		// The node answered with a digest of another cookie: it is not the
		// node we meant to reach, or someone is in between.
		return peer, "", fmt.Errorf("the node's challenge ack does not match our cookie: %w", ErrAuth)
	}
	return peer, name, nil
}

func challengeDigest(cookie string, challenge uint32) [16]byte {
	return md5.Sum([]byte(cookie + strconv.FormatUint(uint64(challenge), 10)))
}

// handshakeFraming reads and writes handshake messages, each preceded by
// its length in header (2 or 4) bytes.
type handshakeFraming struct {
	rw     io.ReadWriter
	header int
}

// maxHandshakeMessage bounds what a peer can make us allocate: the largest
// real message is a challenge with a 255-byte name.
const maxHandshakeMessage = 1 << 12

func (f handshakeFraming) write(msg []byte) error {
	buf := make([]byte, 0, f.header+len(msg))
	if f.header == 4 {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	} else {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(msg)))
	}
	_, err := f.rw.Write(append(buf, msg...))
	return err
}

func (f handshakeFraming) read() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(f.rw, size[:f.header]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(size[:2]))
	if f.header == 4 {
		n = int(binary.BigEndian.Uint32(size[:]))
	}
	if n > maxHandshakeMessage {
		return nil, fmt.Errorf("a handshake message of %d bytes", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(f.rw, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func isConnReset(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && !opErr.Timeout()
}

// quoteName quotes a name the peer sent for a log line: it may be anything,
// of any length up to what the handshake framing allows.
func quoteName(name string) string {
	const limit = 300 // a node name has at most 255 bytes before the @
	if len(name) > limit {
		return strconv.Quote(name[:limit]) + "..."
	}
	return strconv.Quote(name)
}

func truncate(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return string(b)
}

// ergoFlags translates the peer's capabilities into ergo's struct, which its
// core reads for a few decisions of its own.
func ergoFlags(f uint64) node.Flags {
	return node.Flags{
		Enable:            true,
		EnableBigCreation: f&flagBigCreation != 0,
		EnableBigPidRef:   f&flagV4NC != 0,
	}
}
