// Package msgpackcheck checks untrusted msgpack before it is decoded.
//
// A msgpack header declares the length of what follows it: a string, a
// binary or an extension of up to 4 GiB, an array or a map of up to 2^32
// elements. A decoder given such a header sizes its buffers by it before
// it learns that the input ends a few bytes later, so a few hostile bytes
// can cost gigabytes. WellFormed walks the encoding first, without
// allocating, and accepts it only if it is exactly one value whose every
// declared length fits in the bytes that follow and whose containers nest
// at most MaxDepth deep. Decoding what it accepts then costs memory and
// time in proportion to the input's length.
//
// Every decoding of msgpack that comes from a peer (snapshot records,
// control-plane request and response bodies, member metadata) goes
// through WellFormed first.
package msgpackcheck
