package pool

import (
	"slices"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
)

// The control plane's messages, all of them: the kind of each request, its
// body and its answer, and the codes of its errors (spec.md, section 11,
// mirrors this file). Only append: members of different versions must
// understand each other's kinds and fields.
const (
	// KindHandover: a member taking a session over asks the member that
	// serves it for it (HandoverRequest -> handoverReply). The serving
	// member checks the client's proof, freezes the session and forgets it.
	KindHandover = "handover"
	// KindSettle: the successor confirms that it restored a handed-over
	// session (settleRequest -> nil); the old member forgets the answer.
	KindSettle = "settle"
	// KindReplicate: a member stores a copy of a checkpoint of one of its
	// sessions on a replica (copyRequest -> empty).
	KindReplicate = "replicate"
	// KindFetch: a member taking over a session whose member is gone asks a
	// replica for its checkpoints (HandoverRequest -> fetchReply).
	KindFetch = "fetch"
	// KindClaim: a member that took a session over fences older epochs on
	// the others (claimRequest -> empty).
	KindClaim = "claim"
	// KindForget: a session ended: its replicas drop its checkpoints and
	// keep its epoch as a fence (forgetRequest -> empty).
	KindForget = "forget"
	// KindEpoch: the newest epoch a member knows of a session (epochQuery
	// -> epochReply); asked by a member whose client is away, and before a
	// resume is answered.
	KindEpoch = "epoch"
	// KindHandovers: KindHandover for several sessions of the member asked
	// at once (handoversRequest -> handoversReply, answers in the order of
	// the requests): the handovers a member needs of another while a drain
	// moves sessions to it go in one call instead of one each. A member
	// that does not know it is asked one session at a time.
	KindHandovers = "handovers"
	// KindBatch: requests of the kinds settle, replicate, fetch, claim,
	// forget and epoch for the member asked, several at once (batchRequest
	// -> batchReply, answers in the order of the requests), each answered
	// as a call of its own kind would be, within its own time: the requests
	// a member has for another while other calls to it are under way go
	// together, one round trip for many (at most 256). A member that does
	// not know it is asked one request at a time.
	KindBatch = "batch"
)

// Error codes of the control plane (transport.RemoteError.Code, and
// ControlError.Code).
const (
	CodeMoved      = "moved"       // Message: "name addr" of the member that has the session now
	CodeUnknown    = "unknown"     // no such session here
	CodeBadProof   = "bad_proof"   // the client's proof does not check out
	CodeNotMovable = "not_movable" // no checkpoint the client can resume from
	CodeStale      = "stale_epoch" // a newer epoch of the session (or a newer resume attempt) is known
	CodeNotMember  = "not_member"  // the asking member is not in the pool as the member asked sees it (yet)
)

// HandoverRequest asks for a session on behalf of its client (KindHandover,
// KindFetch). It carries the client's proof, which only the holder of the
// session secret can check: a member never gives a session away to a
// request its client did not sign.
type HandoverRequest struct {
	Session     [wire.SessionIDLen]byte `msgpack:"id"`  // the session (HELLO)
	ClientNonce [wire.NonceLen]byte     `msgpack:"cn"`  // the client's nonce (HELLO)
	ServerNonce [wire.NonceLen]byte     `msgpack:"sn"`  // the successor's nonce (CHALLENGE)
	MAC         [wire.MACLen]byte       `msgpack:"mac"` // the client's mac (PROOF)
	Epoch       uint64                  `msgpack:"ep"`  // the epoch the client's HELLO named
	Attempt     uint64                  `msgpack:"at"`  // the HELLO's attempt
	Origin      string                  `msgpack:"or"`  // the HELLO's origin
	// The client's positions, as its PROOF said (Positions).
	Received uint64   `msgpack:"rcv"`
	Limit    uint64   `msgpack:"lim"`
	Release  uint64   `msgpack:"rel"`
	Retained uint64   `msgpack:"ret"`
	Written  uint64   `msgpack:"wr"`
	Known    []uint64 `msgpack:"known"` // checkpoint positions the client can check (PROOF)
}

// NewHandoverRequest is the request for the session a client resumes with
// hello, challenged with ch, proving itself with proof.
func NewHandoverRequest(hello wire.Hello, ch wire.Challenge, proof wire.Proof) HandoverRequest {
	p := proof.Positions
	return HandoverRequest{
		Session: hello.Session, ClientNonce: hello.Nonce, ServerNonce: ch.Nonce, MAC: proof.MAC,
		Epoch: hello.Epoch, Attempt: hello.Attempt, Origin: hello.Origin,
		Received: p.Received, Limit: p.Limit, Release: p.Release, Retained: p.Retained, Written: p.Written,
		Known: proof.Known,
	}
}

// Signed reports whether the client's proof carried by r checks out with
// the session secret.
func (r *HandoverRequest) Signed(secret auth.Secret) bool {
	rs := auth.Resume{Session: r.Session, ClientNonce: r.ClientNonce, ServerNonce: r.ServerNonce,
		Epoch: r.Epoch, Attempt: r.Attempt, Origin: r.Origin}
	proof := wire.Proof{Positions: r.Positions(), Known: r.Known}
	var fb [wire.FieldsRoom]byte
	return auth.Equal(r.MAC, rs.ClientMAC(secret, proof.AppendFields(fb[:0])))
}

// Knows reports whether the client can check regenerated output from out
// (it was told of a checkpoint there, or out is the start).
func (r *HandoverRequest) Knows(out uint64) bool {
	return out == 0 || slices.Contains(r.Known, out)
}

// Positions are the client's positions, as its PROOF said.
func (r *HandoverRequest) Positions() wire.Positions {
	return wire.Positions{Received: r.Received, Limit: r.Limit, Release: r.Release, Retained: r.Retained, Written: r.Written}
}

// handoverReply carries the checkpoint the successor restores and the
// session's new epoch.
type handoverReply struct {
	Record []byte `msgpack:"rec"`
	Epoch  uint64 `msgpack:"e"`
}

// handoversRequest asks for several sessions (KindHandovers), at most
// maxHandoverBatch.
type handoversRequest struct {
	List []HandoverRequest `msgpack:"l"`
}

// handoversReply answers each request of a handoversRequest: its
// handoverReply, or its error's code and message.
type handoversReply struct {
	List []handoverAnswer `msgpack:"l"`
}

type handoverAnswer struct {
	Reply   handoverReply `msgpack:"r"`
	Code    string        `msgpack:"c"`
	Message string        `msgpack:"m"`
}

// batchRequest carries several requests for one member (KindBatch), at
// most maxBatch.
type batchRequest struct {
	List []batchItem `msgpack:"l"`
}

// batchItem is one request of a batch: its kind, its body as a call of
// that kind carries it, and how long its caller waits for the answer
// (milliseconds from when the batch was sent; 0: as long as the batch).
// Bodies, here and in answers, are checked when they are decoded
// (transport.DecodeBody), each alone, as a call of their kind would be.
type batchItem struct {
	Kind      string `msgpack:"k"`
	Body      []byte `msgpack:"b"`
	TimeoutMS uint32 `msgpack:"t"`
}

// batchReply answers each request of a batchRequest: its answer's body as
// a call of its kind would carry it, or its error's code and message.
type batchReply struct {
	List []batchAnswer `msgpack:"l"`
}

type batchAnswer struct {
	Body    []byte `msgpack:"b"`
	Code    string `msgpack:"c"`
	Message string `msgpack:"m"`
}

// settleRequest confirms that the successor restored a session handed over
// at epoch.
type settleRequest struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
	Epoch   uint64                  `msgpack:"e"`
}

type copyRequest struct {
	Record []byte   `msgpack:"rec"`
	Keep   []uint64 `msgpack:"keep"` // the checkpoints (seq) the member may still restore from
}

// fetchReply carries every checkpoint a member holds of a session, and the
// newest epoch it knows of the session.
type fetchReply struct {
	Records [][]byte `msgpack:"recs"`
	Epoch   uint64   `msgpack:"e"`
}

type claimRequest struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
	Epoch   uint64                  `msgpack:"e"`
}

// epochQuery asks for the newest epoch a member knows of a session.
type epochQuery struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
}

type epochReply struct {
	Epoch uint64 `msgpack:"e"`
}

type forgetRequest struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
	Epoch   uint64                  `msgpack:"e"`
}

// ControlError is a control-plane handler's error with a code (Code*),
// which travels to the caller apart from the message.
type ControlError struct {
	Code    string // a Code* (or a code of the kind's own)
	Message string // what the caller reads
}

// Error returns the message.
func (e *ControlError) Error() string { return e.Message }

// TransportCode is the code the transport sends.
func (e *ControlError) TransportCode() string { return e.Code }
