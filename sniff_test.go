package mtcp

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	server, err = l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// TestSniffKeepsWhatFollowsThePreface: the bytes that come with the
// preface (the HELLO) stay in the handshake's reader, read with the
// preface, and the preface is taken from it.
func TestSniffKeepsWhatFollowsThePreface(t *testing.T) {
	client, server := tcpPair(t)
	rest := []byte("what follows the preface")
	_, err := client.Write(append(wire.Preface[:len(wire.Preface):len(wire.Preface)], rest...))
	require.NoError(t, err)
	br := bufio.NewReaderSize(server, handshakeReadSize)
	for br.Buffered() < len(wire.Preface)+len(rest) { // all of it arrived, whatever the reads
		_, err := br.Peek(br.Buffered() + 1)
		require.NoError(t, err)
	}
	prefix, class, err := sniff(br, server, time.Now().Add(time.Minute), 0)
	require.NoError(t, err)
	require.Equal(t, clientMTCP, class)
	require.Empty(t, prefix)
	got, err := br.Peek(br.Buffered())
	require.NoError(t, err)
	require.Equal(t, rest, got, "the preface is taken, what follows stays")
}

// TestSniffGivesPlainClientsEveryByteRead: a plain client's bytes, however
// many were read while sniffing, are all returned to be replayed.
func TestSniffGivesPlainClientsEveryByteRead(t *testing.T) {
	client, server := tcpPair(t)
	req := []byte("GET / HTTP/1.0\r\nHost: example\r\n\r\n")
	_, err := client.Write(req)
	require.NoError(t, err)
	br := bufio.NewReaderSize(server, handshakeReadSize)
	for br.Buffered() < len(req) {
		_, err := br.Peek(br.Buffered() + 1)
		require.NoError(t, err)
	}
	prefix, class, err := sniff(br, server, time.Now().Add(time.Minute), 0)
	require.NoError(t, err)
	require.Equal(t, clientPlain, class)
	require.Equal(t, req, prefix)

	// A partial preface, then silence: plain where silence means plain,
	// with the bytes read.
	client2, server2 := tcpPair(t)
	_, err = client2.Write(wire.Preface[:3])
	require.NoError(t, err)
	br2 := bufio.NewReaderSize(server2, handshakeReadSize)
	prefix, class, err = sniff(br2, server2, time.Now().Add(time.Minute), 50*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, clientPlain, class)
	require.Equal(t, wire.Preface[:3], prefix)
}
